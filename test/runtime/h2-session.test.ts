// Both ways of opening an HTTP/2 server session on a TLS socket tsbal accepted itself (src/runtime/h2-session.ts),
// in this test runner's runtime (Bun), each against real clients (curl --http2, nghttp): the default way for this
// runtime and the fallback for a runtime without http2.performServerHandshake.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import type { ServerHttp2Stream } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { DEFAULT_SESSION_WAY, serverSessionOpener, type SessionWay } from '../../src/runtime/h2-session.ts';
import { makePki, type TestPki } from '../harness/certs.ts';
import { execProc } from '../harness/proc.ts';

let pki: TestPki;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => pki?.cleanup());

test('Bun 1.4 has http2.performServerHandshake, so it is the default way here as on Node', () => {
  expect(DEFAULT_SESSION_WAY).toBe('handshake');
});

describe.each(['handshake', 'server-emit'] as SessionWay[])('a session opened by %p', (way) => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    const leaf = pki.issue(`h2-${way}`, ['127.0.0.1']);
    const tls = createTlsServer({ cert: readFileSync(leaf.crt), key: readFileSync(leaf.key), ALPNProtocols: ['h2', 'http/1.1'] });
    const open = serverSessionOpener({ settings: { maxConcurrentStreams: 3, enablePush: false }, maxHeaderListPairs: 64 }, way);
    tls.on('secureConnection', (socket: TLSSocket) => {
      const session = open(socket);
      session.on('error', () => {});
      session.on('stream', (stream: ServerHttp2Stream, headers) => {
        stream.respond({ ':status': 200, 'x-way': way });
        stream.end(`${way} ${String(headers[':path'])}\n`);
      });
    });
    // As tsbal does it: a plain listener hands each connection to the TLS server.
    server = createNetServer((socket) => tls.emit('connection', socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('curl --http2 gets HTTP/2 answers, several on one connection', async () => {
    const r = await execProc(['curl', '-sS', '-k', '--max-time', '10', '--http2', '-w', '%{http_version}\n', `https://127.0.0.1:${port}/a`, `https://127.0.0.1:${port}/b`], { timeoutMs: 15_000 });
    expect(r.stdout).toBe(`${way} /a\n2\n${way} /b\n2\n`);
  });

  test('nghttp sees the SETTINGS it was opened with', async () => {
    const r = await execProc(['nghttp', '-v', '--timeout=10', `https://127.0.0.1:${port}/settings`], { timeoutMs: 15_000 });
    expect(r.stdout).toContain('[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):3]');
    expect(r.stdout).toMatch(/recv \(stream_id=\d+\) x-way: /);
  });
});
