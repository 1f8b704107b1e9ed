// The response leniencies docs/compat.md lists, checked against the peers they are claimed from: the same loose
// backend answers through HAProxy 2.6, nginx 1.22 and tsbal. Each proxy's outcome is classed as served (a clean
// 200 with the body), 502, or passed through raw (nginx's HTTP/0.9 fallback); tsbal must serve only what a peer
// serves and refuse what both refuse.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import net from 'node:net';
import { startHaproxy, type Haproxy } from '../harness/haproxy.ts';
import { startNginxProxy, type Nginx } from '../harness/nginx.ts';
import { LOOPBACK } from '../harness/ports.ts';
import { stopAll } from '../harness/procs.ts';
import type { ProxyHandle } from '../../src/proxy/index.ts';
import { startTestProxy } from './helpers.ts';

type Outcome = 'served' | '502' | 'raw' | string;

/** [backend bytes, HAProxy, nginx, tsbal], observed on this machine. The body served is always `ok`. */
const CASES: Record<string, [string, Outcome, Outcome, Outcome]> = {
  'bare LF everywhere': ['HTTP/1.0 200 OK\nContent-Length: 2\nConnection: keep-alive\n\nok', 'served', 'served', 'served'],
  'mixed CRLF and LF': ['HTTP/1.1 200 OK\r\nContent-Length: 2\nX-A: 1\r\n\nok', 'served', 'served', 'served'],
  'two spaces around the code': ['HTTP/1.1  200  OK\r\nContent-Length: 2\r\n\r\nok', 'served', 'served', 'served'],
  'a tab after the version': ['HTTP/1.1\t200 OK\r\nContent-Length: 2\r\n\r\nok', 'served', 'raw', 'served'],
  'an empty line before the status line': ['\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'served', 'raw', 'served'],
  'obs-fold in an ordinary field': ['HTTP/1.1 200 OK\r\nX-Foo: a\r\n b\r\nContent-Length: 2\r\n\r\nok', 'served', '502', 'served'],
  'bare-LF chunk framing': ['HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n', 'served', 'served', 'served'],
  'obs-fold in Content-Length': ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 3\r\n\r\nokEXTRA', '502', '502', '502'],
  'whitespace before a colon': ['HTTP/1.1 200 OK\r\nX-Foo : bar\r\nContent-Length: 2\r\n\r\nok', '502', '502', '502'],
  'whitespace right after the status line': ['HTTP/1.1 200 OK\r\n X-Junk: 1\r\nContent-Length: 2\r\n\r\nok', '502', '502', '502'],
  'a bare CR': ['HTTP/1.1 200 OK\rContent-Length: 2\r\n\r\nok', '502', 'raw', '502'],
  'a lowercase version': ['http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', '502', 'raw', '502'],
};
const PATHS = Object.keys(CASES).map((name, i) => [`/c${i}`, name] as const);

let backend: net.Server;
let haproxy: Haproxy | undefined;
let nginx: Nginx | undefined;
let tsbal: { proxy: ProxyHandle; port: number } | undefined;

beforeAll(async () => {
  backend = net.createServer((s) => {
    let head = '';
    s.on('error', () => {});
    s.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = head.split(' ')[1] ?? '';
      const name = PATHS.find(([p]) => p === path)?.[1];
      s.end(name === undefined ? 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n' : CASES[name]![0]);
      head = '';
    });
  });
  await new Promise<void>((r) => backend.listen(0, LOOPBACK, r));
  const bport = (backend.address() as net.AddressInfo).port;
  [haproxy, nginx, tsbal] = await Promise.all([startHaproxy([bport]), startNginxProxy([bport]), startTestProxy([bport])]);
}, 30_000);

afterAll(async () => {
  await stopAll([haproxy, nginx]);
  await tsbal?.proxy.close({ graceful: false });
  await new Promise<void>((r) => backend.close(() => r()));
});

/** One request on its own connection, read until the proxy closes (bounded). */
function fetchRaw(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, LOOPBACK);
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => s.destroy(), 3000);
    s.on('data', (d) => (got = Buffer.concat([got, d])));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got.toString('latin1'));
    });
    s.write(`GET ${path} HTTP/1.1\r\nHost: peers.test\r\nConnection: close\r\n\r\n`);
  });
}

function classify(raw: string, backendBytes: string): Outcome {
  if (raw === backendBytes || (raw.length > 0 && !raw.startsWith('HTTP/1.'))) return 'raw';
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1];
  const headEnd = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, headEnd);
  let body = raw.slice(headEnd + 4);
  if (/\r\ntransfer-encoding: chunked/i.test(head)) body = body.replace(/^2\r\nok\r\n0\r\n(?:[^\r\n]*\r\n)*\r\n$/, 'ok');
  if (status === '200' && body === 'ok' && !/[^\r]\n/.test(head)) return 'served';
  if (status === '502') return '502';
  return `unexpected: ${JSON.stringify(raw)}`;
}

describe('lenient responses: tsbal serves what HAProxy or nginx serves, and refuses what both refuse', () => {
  for (const [path, name] of PATHS) {
    test(name, async () => {
      const [bytes, ...expected] = CASES[name]!;
      const got = await Promise.all([haproxy!.port, nginx!.port, tsbal!.port].map(async (p) => classify(await fetchRaw(p, path), bytes)));
      expect(got, 'HAProxy, nginx, tsbal').toEqual(expected);
    });
  }
});
