// enable_reproxy against real Perlbal 1.80 on the same config: a backend answers with X-Reproxy-File or
// X-Reproxy-URL (its first URL dead) and both proxies must give the client the same answer (status, fields, body),
// ranges included, over one kept-alive client connection, with the backend's connection reused.
import { afterAll, beforeAll, describe, expect } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOOPBACK, freePort } from '../harness/ports.ts';
import { header } from '../harness/httpwire.ts';
import { connectRaw, describeOutcome, type ReadOutcome } from '../harness/rawclient.ts';
import type { RecordedRequest, Reply } from '../harness/rawbackend.ts';
import { KINDS, type ProxyKind, type Rig, comparableResponse, lazyRigs, observe, startRigWithConf, testFor } from './diffkit.ts';

const CONTENT = 'reproxied content 0123456789\n';
let dir = '';
let file = '';
let deadPort = 0;
/** The URL target's port, known once the backends are up (set by the conf function). */
let targetPort = 0;

function app(req: RecordedRequest): Reply {
  const common = 'HTTP/1.0 200 OK\r\nContent-Type: image/png\r\nX-App: yes\r\nContent-Length: 0\r\nConnection: keep-alive\r\n';
  if (req.target === '/file') return { bytes: `${common}X-Reproxy-File: ${file}\r\n\r\n` };
  if (req.target === '/sized') return { bytes: `${common}X-Reproxy-File: ${file}\r\nX-Reproxy-Expected-Size: 5\r\n\r\n` };
  if (req.target === '/missing') return { bytes: `${common}X-Reproxy-File: ${dir}/nothing-here\r\n\r\n` };
  if (req.target === '/url') {
    return { bytes: `${common}X-Reproxy-URL: http://${LOOPBACK}:${deadPort}/dead http://${LOOPBACK}:${targetPort}/content\r\n\r\n` };
  }
  if (req.target === '/allbad') return { bytes: `${common}X-Reproxy-URL: http://${LOOPBACK}:${deadPort}/dead http://${LOOPBACK}:${targetPort}/404\r\n\r\n` };
  const body = 'plain\n';
  return { bytes: `HTTP/1.0 200 OK\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}` };
}

/** A plain web server for X-Reproxy-URL: 206 for `Range: bytes=a-b`, 404 for /404. */
function target(req: RecordedRequest): Reply {
  if (req.target === '/404') return { bytes: 'HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n', close: true };
  const range = /^bytes=(\d+)-(\d+)$/.exec(header(req.head.headers, 'range') ?? '');
  if (range !== null) {
    const [a, b] = [Number(range[1]), Number(range[2])];
    const part = CONTENT.slice(a, b + 1);
    return { bytes: `HTTP/1.0 206 Partial Content\r\nContent-Range: bytes ${a}-${b}/${CONTENT.length}\r\nContent-Length: ${part.length}\r\n\r\n${part}`, close: true };
  }
  const body = req.method === 'HEAD' ? '' : CONTENT;
  return { bytes: `HTTP/1.0 200 OK\r\nContent-Type: text/x-target\r\nContent-Length: ${CONTENT.length}\r\n\r\n${body}`, close: true };
}

const conf = (port: number, [appPort, tPort]: number[]): string => {
  targetPort = tPort!;
  return (
    `CREATE POOL p\n  POOL p ADD ${LOOPBACK}:${appPort}\nCREATE SERVICE s\n  SET listen = ${LOOPBACK}:${port}\n  SET role = reverse_proxy\n` +
    '  SET pool = p\n  SET persist_client = on\n  SET persist_backend = on\n  SET enable_reproxy = on\nENABLE s\n'
  );
};

const rigs = lazyRigs((kind) => startRigWithConf(kind, conf, [{ name: 'app', reply: app }, { name: 'target', reply: target }]));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsbal-reproxy-'));
  file = join(dir, 'f.bin');
  writeFileSync(file, CONTENT);
  deadPort = await freePort();
});
afterAll(async () => {
  await rigs.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

/** Less the declared difference of generated pages (docs/compat.md): `Server: Perlbal` or `Server: tsbal`. */
const comparable = (o: ReadOutcome): string[] => comparableResponse(o).map((l) => (l === 'Server: Perlbal' || l === 'Server: tsbal' ? 'Server: <proxy>' : l));

interface Case {
  name: string;
  request: string;
  status: number;
  body: string;
  /** Perlbal closes the client connection after this answer (tsbal keeps it: docs/compat.md). */
  perlbalCloses?: boolean;
  /** Removes a difference docs/compat.md declares, from both sides, before comparing. */
  declared?: (line: string) => string | null;
}

const CASES: Case[] = [
  { name: 'X-Reproxy-File: the file under the backend fields, Content-Length of the file, Accept-Ranges', request: 'GET /file HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', status: 200, body: CONTENT },
  { name: 'X-Reproxy-File with a Range: 206 with Content-Range', request: 'GET /file HTTP/1.0\r\nConnection: keep-alive\r\nRange: bytes=3-9\r\n\r\n', status: 206, body: CONTENT.slice(3, 10) },
  { name: 'X-Reproxy-File naming a missing file: 404', request: 'GET /missing HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', status: 404, body: '<h1>404 - Not Found</h1>\n' },
  { name: 'X-Reproxy-URL with a dead first URL: the second one serves', request: 'GET /url HTTP/1.0\r\nConnection: keep-alive\r\nHost: site\r\n\r\n', status: 200, body: CONTENT },
  { name: 'X-Reproxy-URL with a Range: the target 206 wins', request: 'GET /url HTTP/1.0\r\nConnection: keep-alive\r\nRange: bytes=2-5\r\n\r\n', status: 206, body: CONTENT.slice(2, 6) },
  { name: 'X-Reproxy-URL where no URL answers 2xx: 503', request: 'GET /allbad HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', status: 503, body: '<h1>503 - Service Unavailable</h1>\n' },
  { name: 'HEAD on X-Reproxy-File: the file head, no body', request: 'HEAD /file HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', status: 200, body: '' },
  {
    name: 'X-Reproxy-File with an unsatisfiable Range: 416 with Content-Range */size',
    request: 'GET /file HTTP/1.0\r\nConnection: keep-alive\r\nRange: bytes=100-200\r\n\r\n',
    status: 416,
    body: '',
    // Perlbal sends no length and closes; tsbal says Content-Length: 0 and keeps the connection, with RFC 9110's phrase.
    perlbalCloses: true,
    declared: (l) => (l === 'Content-Length: 0' ? null : l.startsWith('416 ') ? '416' : l),
  },
  { name: 'X-Reproxy-File of another size than X-Reproxy-Expected-Size: 404', request: 'GET /sized HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', status: 404, body: '<h1>404 - Not Found</h1>\n' },
];

const results = new Map<string, string[]>();

describe.each(KINDS)('%s', (kind: ProxyKind) => {
  for (const c of CASES) {
    testFor(kind)(c.name, async () => {
      const rig: Rig = await rigs.get(kind);
      const obs = await observe(rig, c.request);
      const got = comparable(obs.outcome).flatMap((l) => {
        const d = c.declared === undefined ? l : c.declared(l);
        return d === null ? [] : [d];
      });
      expect(obs.outcome.kind, describeOutcome(obs.outcome)).toBe('response');
      if (obs.outcome.kind === 'response') {
        expect(obs.outcome.response.status).toBe(c.status);
        expect(obs.outcome.response.body.toString('latin1')).toBe(c.body);
      }
      results.set(`${kind} ${c.name}`, got);
      if (kind === 'tsbal') {
        const perl = results.get(`perlbal ${c.name}`);
        if (perl !== undefined) expect(got).toEqual(perl);
      }
      expect(obs.closedAfter, 'client connection closed after the answer').toBe(kind === 'perlbal' && c.perlbalCloses === true);
      const toApp = obs.seen.filter((r) => r.method !== 'OPTIONS' && !r.target.startsWith('/content') && !r.target.startsWith('/404'));
      expect(toApp.map((r) => header(r.head.headers, 'x-proxy-capabilities')), 'backends are told they may reproxy').toEqual(toApp.map(() => 'reproxy-file'));
    });
  }

  testFor(kind)('one client connection carries file, URL and ranged answers in turn; the backend connection is reused', async () => {
    const rig = await rigs.get(kind);
    const conns = rig.backends[0]!.connectionCount();
    const conn = await connectRaw(rig.proxy.port);
    const got: string[][] = [];
    try {
      for (const path of ['/file', '/url', '/plain', '/file', '/url']) {
        conn.send(`GET ${path} HTTP/1.0\r\nConnection: keep-alive\r\nRange: bytes=1-4\r\n\r\n`);
        const o = await conn.read();
        expect(o.kind, `${path}: ${describeOutcome(o)}`).toBe('response');
        got.push(comparable(o));
      }
      expect(conn.isClosed()).toBe(false);
    } finally {
      conn.close();
    }
    results.set(`${kind} keep-alive`, got.flat());
    if (kind === 'tsbal' && results.has('perlbal keep-alive')) expect(got.flat()).toEqual(results.get('perlbal keep-alive')!);
    expect(rig.backends[0]!.connectionCount() - conns, 'new connections to the application backend').toBeLessThanOrEqual(1);
  });
});
