import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { ChunkState, decodeChunked, newChunkedDecoder } from '../../../src/proxy/http/chunked.ts';
import { filterTrailerSection, frameChunk } from '../../../src/proxy/http/trailers.ts';

/**
 * Decodes `input` split at `splits` the way the proxy relays it: bytes before `relayEnd` as they came, then the
 * filtered trailer section. Returns what would be forwarded, the de-chunked payload, and any error.
 */
function relay(input: string, splits: number[] = [], opts: { lenientLf?: boolean; hopByHop?: string[] } = {}) {
  const d = newChunkedDecoder(1024);
  d.lenientLf = opts.lenientLf ?? false;
  d.hopByHop = opts.hopByHop ?? null;
  const buf = Buffer.from(input, 'latin1');
  const cuts = [...new Set([0, ...splits.filter((s) => s > 0 && s < buf.length), buf.length])].sort((a, b) => a - b);
  let forwarded = '';
  let payload = '';
  for (let i = 0; i + 1 < cuts.length; i++) {
    const piece = buf.subarray(cuts[i], cuts[i + 1]);
    const stop = decodeChunked(d, piece, 0, piece.length, (b, s, e) => (payload += b.toString('latin1', s, e)));
    if (stop === -1) return { forwarded, payload, error: d.error, done: false };
    forwarded += piece.toString('latin1', 0, d.relayEnd);
    if (d.trailerOut !== null) forwarded += d.trailerOut.toString('latin1');
    if (d.state === ChunkState.Done) break;
  }
  return { forwarded, payload, error: d.error, done: d.state === ChunkState.Done };
}

const WITH_TRAILERS =
  '5\r\nhello\r\n0\r\nX-Checksum: abc\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\nHost: evil.example\r\n' +
  'Connection: x-secret\r\nX-Secret: 1\r\nTE: trailers\r\nTrailer: X-Checksum\r\nKeep-Alive: timeout=1\r\n' +
  'Upgrade: h2c\r\nProxy-Connection: close\r\nServer-Timing: db;dur=53\r\n\r\n';

describe('chunked trailers on their way through (RFC 9110 6.5.1)', () => {
  test('drops framing, routing and hop-by-hop fields (and what Connection names) and forwards the rest', () => {
    expect(filterTrailerSection(Buffer.from(WITH_TRAILERS.slice(WITH_TRAILERS.indexOf('X-Checksum'))), null).toString()).toBe(
      'X-Checksum: abc\r\nServer-Timing: db;dur=53\r\n\r\n',
    );
  });

  test('also drops fields the message head listed in its Connection field', () => {
    expect(filterTrailerSection(Buffer.from('X-A: 1\r\nX-Hop: 2\r\n\r\n'), ['x-hop']).toString()).toBe('X-A: 1\r\n\r\n');
  });

  test('relays the body as it came and the filtered trailers in its place, for every split', () => {
    const expected = '5\r\nhello\r\n0\r\nX-Checksum: abc\r\nServer-Timing: db;dur=53\r\n\r\n';
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: WITH_TRAILERS.length - 1 }), { maxLength: 6 }), (splits) => {
        const r = relay(WITH_TRAILERS, splits);
        expect([r.forwarded, r.payload, r.done]).toEqual([expected, 'hello', true]);
      }),
    );
  });

  test('relays a body without trailers byte for byte, holding nothing back', () => {
    const body = 'a\r\n0123456789\r\n1;x\r\nZ\r\n0\r\n\r\n';
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: body.length - 1 }), { maxLength: 6 }), (splits) => {
        expect(relay(body, splits).forwarded).toBe(body);
      }),
    );
  });

  test('sends only the final CRLF when every trailer field is dropped', () => {
    expect(relay('0\r\nContent-Length: 5\r\n\r\n').forwarded).toBe('0\r\n\r\n');
  });

  test('reads bare-LF chunk framing only when lenient (a backend whose head needed the lenient rewrite)', () => {
    const lf = '5\nhello\n3;ext\nabc\n0\nX-T: 1\nContent-Length: 9\n\n';
    expect(relay(lf).error).not.toBeNull();
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: lf.length - 1 }), { maxLength: 6 }), (splits) => {
        const r = relay(lf, splits, { lenientLf: true });
        expect([r.payload, r.done, r.error]).toEqual(['helloabc', true, null]);
        // Only the trailers are passed on; the framing is the caller's to write again (frameChunk).
        expect(r.forwarded.endsWith('X-T: 1\r\n\r\n')).toBe(true);
      }),
    );
    expect(relay('2\r\nok\r\n0\n\n', [], { lenientLf: true }).done).toBe(true);
  });

  test('frames a chunk of the transfer coding', () => {
    expect(frameChunk(Buffer.from('xxhello world!yy'), 2, 14).toString()).toBe('c\r\nhello world!\r\n');
  });
});
