import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { beginHead, newHeadWriter, putRange, putString, takeWritten } from '../../../src/proxy/http/writer.ts';

describe('head writer', () => {
  test('a taken head keeps its bytes while later heads are assembled (small, grown past the bound, large)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ text: fc.string({ minLength: 0, maxLength: 6000 }), bound: fc.integer({ min: 0, max: 9000 }) }), {
          minLength: 1,
          maxLength: 40,
        }),
        (heads) => {
          const w = newHeadWriter();
          const taken: Array<{ buf: Buffer; text: string }> = [];
          for (const { text, bound } of heads) {
            const ascii = text.replace(/[^\x20-\x7e]/g, 'x');
            beginHead(w, bound);
            const half = ascii.length >> 1;
            putString(w, ascii.slice(0, half));
            const rest = Buffer.from(ascii.slice(half), 'latin1');
            putRange(w, rest, 0, rest.length);
            taken.push({ buf: takeWritten(w), text: ascii });
          }
          for (const t of taken) expect(t.buf.toString('latin1')).toBe(t.text);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('small heads share one slab instead of a buffer each', () => {
    const w = newHeadWriter();
    beginHead(w, 100);
    putString(w, 'HTTP/1.1 200 OK\r\n\r\n');
    const a = takeWritten(w);
    beginHead(w, 100);
    putString(w, 'GET / HTTP/1.1\r\n\r\n');
    const b = takeWritten(w);
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + a.length);
    expect(a.toString('latin1')).toBe('HTTP/1.1 200 OK\r\n\r\n');
    expect(b.toString('latin1')).toBe('GET / HTTP/1.1\r\n\r\n');
  });
});
