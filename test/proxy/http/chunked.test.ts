import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { ChunkState, decodeChunked, newChunkedDecoder } from '../../../src/proxy/http/chunked.ts';

/** Runs the decoder over `input` split at `splits`; returns the payload, where the body ended, and any error. */
function run(input: string, splits: number[] = []) {
  const d = newChunkedDecoder(1024);
  const buf = Buffer.from(input, 'latin1');
  const cuts = [...new Set([0, ...splits.filter((s) => s > 0 && s < buf.length), buf.length])].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let end = -1;
  for (let i = 0; i + 1 < cuts.length; i++) {
    const piece = buf.subarray(cuts[i], cuts[i + 1]);
    const stop = decodeChunked(d, piece, 0, piece.length, (b, s, e) => parts.push(Buffer.from(b.subarray(s, e))));
    if (stop === -1) return { payload: null, end: -1, error: d.error };
    if (d.state === ChunkState.Done) {
      end = cuts[i]! + stop;
      break;
    }
  }
  return { payload: Buffer.concat(parts).toString('latin1'), end, error: d.error, done: d.state === ChunkState.Done };
}

describe('chunked decoding', () => {
  test('decodes chunks, extensions and trailers, and stops at the end of the body', () => {
    const body = '5\r\nhello\r\n6;name=val;q="x y"\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n';
    const r = run(body + 'GET /next');
    expect(r.payload).toBe('hello world');
    expect(r.end).toBe(body.length);
  });

  test('gives the same result for every split of the input', () => {
    const body = 'a\r\n0123456789\r\n1;x\r\nZ\r\n0\r\nT: 1\r\n\r\n';
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: body.length - 1 }), { maxLength: 6 }), (splits) => {
        const r = run(body, splits);
        expect(r.payload).toBe('0123456789Z');
        expect(r.end).toBe(body.length);
      }),
    );
  });

  test('accepts uppercase hex and whitespace before an extension', () => {
    expect(run('A \t;ext\r\n0123456789\r\n0\r\n\r\n').payload).toBe('0123456789');
  });

  const bad: Array<[string, string]> = [
    ['no digits', '\r\nhello\r\n0\r\n\r\n'],
    ['0x prefix', '0x5\r\nhello\r\n0\r\n\r\n'],
    ['sign', '+5\r\nhello\r\n0\r\n\r\n'],
    ['negative', '-5\r\nhello\r\n0\r\n\r\n'],
    ['space inside the size', '5 5\r\nhello\r\n0\r\n\r\n'],
    ['trailing space without extension', '5 \r\nhello\r\n0\r\n\r\n'],
    ['bare LF after size', '5\nhello\r\n0\r\n\r\n'],
    ['bare CR after size', '5\rhello\r\n0\r\n\r\n'],
    ['data longer than size', '3\r\nhello\r\n0\r\n\r\n'],
    ['missing CRLF after data', '5\r\nhello0\r\n\r\n'],
    ['LF only after data', '5\r\nhello\n0\r\n\r\n'],
    ['oversized size (overflow)', 'fffffffffffffffff\r\n'],
    ['NUL in extension', '5;a\x00b\r\nhello\r\n0\r\n\r\n'],
    ['obs-fold in trailer', '0\r\nA: b\r\n c\r\n\r\n'],
    ['trailer without colon', '0\r\nnocolon\r\n\r\n'],
    ['space before colon in trailer', '0\r\nA : b\r\n\r\n'],
    ['bare LF ending the trailers', '0\r\nA: b\r\n\n'],
    ['bare LF as the last line', '0\r\n\n'],
  ];
  for (const [name, input] of bad) {
    test(`refuses ${name}`, () => {
      const r = run(input);
      expect(r.error).not.toBeNull();
      expect(r.payload).toBeNull();
    });
  }

  test('caps trailer and extension sizes', () => {
    expect(run(`0\r\nA: ${'x'.repeat(2000)}\r\n\r\n`).error).toBe('trailer section too large');
    expect(run(`1;${'x'.repeat(2000)}\r\nA\r\n0\r\n\r\n`).error).toBe('chunk extension too long');
  });

  test('never throws and never reads past the input, on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(200), { maxLength: 4 }), (bytes, splits) => {
        const r = run(Buffer.from(bytes).toString('latin1'), splits);
        if (r.error === null && r.end !== -1) expect(r.end).toBeLessThanOrEqual(bytes.length);
      }),
      { numRuns: 2000 },
    );
  });
});
