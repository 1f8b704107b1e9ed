// Chunked trailers through the proxy, both ways, on real sockets: framing, routing and hop-by-hop fields are
// dropped (RFC 9110 6.5.1), the others forwarded; a backend's bare-LF chunk framing is framed again for the client.
import { afterEach, describe, expect, test } from 'bun:test';
import { type RecordedRequest, type Reply, startRawBackend } from '../harness/rawbackend.ts';
import { connectRaw, describeOutcome, exchange, type ReadOutcome, type RawResponse } from '../harness/rawclient.ts';
import { startTestProxy } from './helpers.ts';

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanup.map((f) => f()));
  cleanup = [];
});

async function rig(reply: (req: RecordedRequest) => Reply) {
  const backend = await startRawBackend({ name: 't', reply: (req) => (req.method === 'OPTIONS' ? { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n' } : reply(req)) });
  const { proxy, port } = await startTestProxy([backend.port], { persist_client: 'on', persist_backend: 'on' });
  cleanup.push(() => proxy.close({ graceful: false }), () => backend.close());
  return { backend, port };
}

function response(outcome: ReadOutcome): RawResponse {
  if (outcome.kind !== 'response') throw new Error(`expected a response, got ${describeOutcome(outcome)}`);
  return outcome.response;
}

const OK = { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' };
const BAD_TRAILERS =
  'Content-Length: 99\r\nTransfer-Encoding: chunked\r\nHost: evil.example\r\nConnection: x-secret\r\nX-Secret: 1\r\n' +
  'TE: trailers\r\nTrailer: X-Checksum\r\nKeep-Alive: timeout=1\r\nUpgrade: h2c\r\n';

describe('chunked trailers', () => {
  test('reach the backend without framing, routing or hop-by-hop fields; the others are forwarded', async () => {
    const { backend, port } = await rig(() => OK);
    const body = `5\r\nhello\r\n0\r\nX-Checksum: abc\r\n${BAD_TRAILERS}Server-Timing: db;dur=53\r\n\r\n`;
    const head = 'POST /up HTTP/1.1\r\nHost: t.test\r\nTransfer-Encoding: chunked\r\n\r\n';
    const conn = await connectRaw(port);
    try {
      conn.send(head + body);
      expect(response(await conn.read()).status).toBe(200);
      // The connection stays in step: a second request on it is answered too.
      conn.send('GET /next HTTP/1.1\r\nHost: t.test\r\n\r\n');
      expect(response(await conn.read()).status).toBe(200);
    } finally {
      conn.close();
    }
    const [up] = backend.proxied();
    const sent = up!.raw.subarray(up!.head.length).toString('latin1');
    expect(sent).toBe('5\r\nhello\r\n0\r\nX-Checksum: abc\r\nServer-Timing: db;dur=53\r\n\r\n');
    expect(backend.proxied().map((r) => r.target)).toEqual(['/up', '/next']);
  });

  test('reach an HTTP/1.1 client filtered the same way', async () => {
    const { port } = await rig(() => ({
      bytes: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Checksum: abc\r\n${BAD_TRAILERS}\r\n`,
    }));
    const r = response((await exchange(port, 'GET / HTTP/1.1\r\nHost: t.test\r\n\r\n')).outcome);
    expect(r.raw.toString('latin1').slice(r.head.length)).toBe('2\r\nok\r\n0\r\nX-Checksum: abc\r\n\r\n');
  });

  test('a bare-LF backend answering chunked with bare-LF framing: the client gets clean chunks and filtered trailers', async () => {
    const { backend, port } = await rig(() => ({
      bytes: 'HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhello\n6\n world\n0\nX-T: 1\nContent-Length: 3\n\n',
    }));
    const conn = await connectRaw(port);
    try {
      for (let i = 0; i < 2; i++) {
        conn.send('GET / HTTP/1.1\r\nHost: t.test\r\n\r\n');
        const r = response(await conn.read());
        expect(r.raw.toString('latin1')).toBe(
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n' +
            '5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n',
        );
      }
    } finally {
      conn.close();
    }
    expect(backend.connectionCount()).toBe(1);
    // An HTTP/1.0 client gets it de-chunked and close-delimited, as any chunked response.
    const { outcome, closedAfter } = await exchange(port, 'GET / HTTP/1.0\r\n\r\n', { closeWaitMs: 1000 });
    expect([response(outcome).body.toString(), closedAfter]).toEqual(['hello world', true]);
  });

  test('a backend with a strict head but bare-LF chunk framing in the first read gets a 502, nothing relayed', async () => {
    const { port } = await rig(() => ({ bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n' }));
    const { outcome } = await exchange(port, 'GET / HTTP/1.1\r\nHost: t.test\r\n\r\n');
    // Refused before the head went out: a 502.
    expect(outcome.kind === 'response' ? outcome.response.status : describeOutcome(outcome)).toBe(502);
  });
});
