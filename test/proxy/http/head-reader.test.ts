import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { findCrlfCrlf, newHeadReader, scanHead, type HeadScan } from '../../../src/proxy/http/head-reader.ts';

const CRLFCRLF_BYTES = Buffer.from('\r\n\r\n', 'latin1');

function feed(pieces: string[], max = 1024, maxUrl = 256): HeadScan {
  const reader = newHeadReader();
  let last: HeadScan = { kind: 'incomplete' };
  for (const p of pieces) {
    last = scanHead(reader, Buffer.from(p, 'latin1'), 0, max, maxUrl, true);
    if (last.kind !== 'incomplete') return last;
  }
  return last;
}

describe('head reader', () => {
  test('finds the head in one chunk and points at the rest', () => {
    const r = feed(['GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY']);
    if (r.kind !== 'head') throw new Error(`expected a head, got ${r.kind}`);
    expect(r.buf.toString('latin1', r.start, r.end)).toBe('GET / HTTP/1.1\r\nHost: a');
    expect(r.end + 4 - r.start).toBe(27);
    expect(r.buf.subarray(r.end + 4).toString()).toBe('BODY');
  });

  test('finds the same head across any split, including a split inside CRLFCRLF', () => {
    const raw = 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nBODY';
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: raw.length - 1 }), { maxLength: 8 }), (splits) => {
        const cuts = [...new Set([0, ...splits, raw.length])].sort((a, b) => a - b);
        const pieces = cuts.slice(1).map((c, i) => raw.slice(cuts[i], c));
        const r = feed(pieces);
        if (r.kind !== 'head') throw new Error(`expected a head, got ${r.kind}`);
        expect(r.buf.toString('latin1', r.start, r.end)).toBe('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4');
        expect(r.buf.subarray(r.end + 4).toString()).toBe(raw.slice(raw.indexOf('BODY')).slice(0, r.buf.length - r.end - 4));
      }),
    );
  });

  test('skips empty lines before a request', () => {
    const r = feed(['\r\n', '\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n']);
    expect(r.kind === 'head' && r.buf.toString('latin1', r.start, r.start + 3)).toBe('GET');
  });

  test('reports a bare LF before the head is complete, so it does not wait for a timeout', () => {
    expect(feed(['GET / HTTP/1.1\nHost: a\n\n']).kind).toBe('bare-lf');
    expect(feed(['GET / HTTP/1.1\r\nHost: a\r', '\n\n']).kind).toBe('bare-lf');
  });

  test('gives up on an endless head at the cap, telling a long URL from long headers', () => {
    const longUrl = feed([`GET /${'a'.repeat(2000)}`]);
    expect(longUrl).toEqual({ kind: 'too-large', urlTooLong: true });
    const longHeaders = feed(['GET / HTTP/1.1\r\n', ...Array.from({ length: 100 }, () => 'X-A: 0123456789\r\n')]);
    expect(longHeaders).toEqual({ kind: 'too-large', urlTooLong: false });
  });

  test('stays linear for a head sent one byte at a time', () => {
    const raw = `GET / HTTP/1.1\r\n${'X-A: b\r\n'.repeat(4000)}\r\n`;
    const reader = newHeadReader();
    const t0 = performance.now();
    let r: HeadScan = { kind: 'incomplete' };
    for (let i = 0; i < raw.length && r.kind === 'incomplete'; i++) {
      r = scanHead(reader, Buffer.from(raw[i]!, 'latin1'), 0, 65536, 8192, true);
    }
    expect(r.kind).toBe('head');
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('findCrlfCrlf', () => {
  test('finds the same first CRLFCRLF as Buffer#indexOf, for any bytes, start and end', () => {
    const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => a.map((b) => [0x0d, 0x0a, 0x41][b % 3]!));
    fc.assert(
      fc.property(bytes, fc.nat(70), fc.nat(70), (a, from, cut) => {
        const buf = Buffer.from(a);
        const end = Math.min(cut, buf.length);
        const expected = buf.subarray(0, end).indexOf(CRLFCRLF_BYTES, from);
        expect(findCrlfCrlf(buf, from, end)).toBe(expected);
      }),
      { numRuns: 20_000 },
    );
  });
});
