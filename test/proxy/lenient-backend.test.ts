// Backends that answer loosely (bare LF line ends, HTTP/1.0 bodies read until close, odd whitespace) are served
// as HAProxy and nginx serve them, and the client gets a clean CRLF response with one framing header. Real raw
// TCP backends; the proxy in process on real sockets.
import { afterEach, describe, expect, test } from 'bun:test';
import { type RawBackend, type RecordedRequest, type Reply, startRawBackend } from '../harness/rawbackend.ts';
import { connectRaw, describeOutcome, exchange, type RawResponse } from '../harness/rawclient.ts';
import { startTestProxy } from './helpers.ts';
import type { ProxyHandle } from '../../src/proxy/index.ts';

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanup.map((f) => f()));
  cleanup = [];
});

/** The issue-9 reproduction, byte for byte. */
const REPRO = 'HTTP/1.0 200 OK\nContent-Length: 6\nConnection: keep-alive\n\nhello\n';

/** A backend answering each request path from `answers` (OPTIONS probes get a plain keep-alive 200). */
async function rig(answers: Record<string, Reply>, options: Record<string, string> = {}): Promise<{ backend: RawBackend; port: number; proxy: ProxyHandle }> {
  const reply = (req: RecordedRequest): Reply => {
    if (req.method === 'OPTIONS') return { bytes: 'HTTP/1.0 200 OK\nContent-Length: 0\nConnection: keep-alive\n\n' };
    return answers[req.target] ?? { bytes: 'HTTP/1.1 404 Not Here\r\nContent-Length: 0\r\n\r\n' };
  };
  const backend = await startRawBackend({ name: 'lf', reply });
  const { proxy, port } = await startTestProxy([backend.port], { persist_client: 'on', persist_backend: 'on', ...options });
  cleanup.push(() => proxy.close({ graceful: false }), () => backend.close());
  return { backend, port, proxy };
}

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: lf.test\r\n${extra}\r\n`;

function response(outcome: Awaited<ReturnType<typeof exchange>>['outcome']): RawResponse {
  if (outcome.kind !== 'response') throw new Error(`expected a response, got ${describeOutcome(outcome)}`);
  return outcome.response;
}

/** The client's head: CRLF line ends only, never a bare LF. */
function expectCleanHead(r: RawResponse): void {
  const head = r.raw.subarray(0, r.head.length).toString('latin1');
  expect(head.replace(/\r\n/g, ''), `bare LF or CR in the client head: ${JSON.stringify(head)}`).not.toMatch(/[\r\n]/);
}

describe('backend responses: lenient where it is safe', () => {
  test('serves the issue-9 bare-LF backend on a kept-alive client and keeps reusing the backend connection', async () => {
    const { backend, port } = await rig({ '/': { bytes: REPRO } });
    const conn = await connectRaw(port);
    try {
      for (let i = 0; i < 3; i++) {
        conn.send(GET('/'));
        const r = response(await conn.read());
        expect([r.status, r.body.toString('latin1')]).toEqual([200, 'hello\n']);
        expect(r.raw.toString('latin1')).toBe('HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\nhello\n');
      }
      expect(conn.isClosed()).toBe(false);
    } finally {
      conn.close();
    }
    expect(backend.proxied().length).toBe(3);
    expect(backend.connectionCount(), 'one backend connection, kept alive across the three').toBe(1);
  });

  test('verifies a backend that answers OPTIONS with bare LF (verify_backend on)', async () => {
    const { backend, port } = await rig({ '/': { bytes: REPRO } }, { verify_backend: 'on' });
    const r = response((await exchange(port, GET('/'))).outcome);
    expect([r.status, r.body.toString('latin1')]).toEqual([200, 'hello\n']);
    expect(backend.requests().map((q) => q.method)).toEqual(['OPTIONS', 'GET']);
  });

  test('reads an HTTP/1.0 body without a length until the backend closes, and tells the client close', async () => {
    const body = 'x'.repeat(70_000) + 'end';
    const { port } = await rig({
      '/crlf': { bytes: `HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n${body}`, close: true },
      '/lf': { bytes: `HTTP/1.0 200 OK\nContent-Type: text/plain\n\n${body}`, close: true },
      '/ka': { bytes: `HTTP/1.0 200 OK\nConnection: keep-alive\n\n${body}`, close: true },
    });
    for (const path of ['/crlf', '/lf', '/ka']) {
      const { outcome, closedAfter } = await exchange(port, GET(path));
      const r = response(outcome);
      expectCleanHead(r);
      expect([path, r.status, r.body.length, r.body.subarray(-3).toString()]).toEqual([path, 200, body.length, 'end']);
      expect(r.head.headers.find(([n]) => n.toLowerCase() === 'connection')?.[1]).toBe('close');
      expect(closedAfter).toBe(true);
    }
  });

  test('takes extra spaces and tabs in the status line, leading empty lines, mixed line ends and obs-fold', async () => {
    const answers: Record<string, Reply> = {
      '/spaces': { bytes: 'HTTP/1.1  200  OK\r\nContent-Length: 2\r\n\r\nok' },
      '/tab': { bytes: 'HTTP/1.1\t200 OK\r\nContent-Length: 2\r\n\r\nok' },
      '/lead': { bytes: '\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' },
      '/mixed': { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2\nX-A: 1\r\n\nok' },
      '/fold': { bytes: 'HTTP/1.1 200 OK\r\nX-Foo: a\r\n  b\r\nContent-Length: 2\r\n\r\nok' },
      '/repeat': { bytes: 'HTTP/1.1 200 OK\nContent-Length: 2\nContent-Length: 2, 2\n\nok' },
    };
    const { backend, port } = await rig(answers);
    const conn = await connectRaw(port);
    try {
      for (const path of Object.keys(answers)) {
        conn.send(GET(path));
        const r = response(await conn.read());
        expectCleanHead(r);
        expect([path, r.statusLine, r.body.toString()]).toEqual([path, 'HTTP/1.1 200 OK', 'ok']);
        expect(r.head.headers.filter(([n]) => n.toLowerCase() === 'content-length'), `one framing header for ${path}`).toEqual([['Content-Length', '2']]);
        if (path === '/fold') expect(r.head.headers).toContainEqual(['X-Foo', 'a  b']);
      }
    } finally {
      conn.close();
    }
    expect(backend.connectionCount(), 'none of these cost the backend connection').toBe(1);
  });

  test('still answers 502 for what HAProxy and nginx both refuse, whatever the line ends', async () => {
    const answers: Record<string, Reply> = {
      '/colon': { bytes: 'HTTP/1.1 200 OK\nX-Foo : bar\nContent-Length: 2\n\nok' },
      '/cl-colon': { bytes: 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nokEXTRA' },
      '/cl-fold': { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 3\r\n\r\nokEXTRA' },
      '/first-ws': { bytes: 'HTTP/1.1 200 OK\r\n X-Junk: 1\r\nContent-Length: 2\r\n\r\nok' },
      '/bare-cr': { bytes: 'HTTP/1.1 200 OK\rContent-Length: 2\r\n\r\nok' },
      '/differ': { bytes: 'HTTP/1.1 200 OK\nContent-Length: 2\nContent-Length: 3\n\nok' },
    };
    const { port } = await rig(answers);
    for (const path of Object.keys(answers)) {
      const r = response((await exchange(port, GET(path))).outcome);
      expect([path, r.status]).toEqual([path, 502]);
    }
  });
});
