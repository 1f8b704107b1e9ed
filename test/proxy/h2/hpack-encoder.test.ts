// HPACK encoding of response heads: what each kind of header becomes on the wire, the dynamic table kept in sync
// with a decoder across many responses (with evictions), size updates after SETTINGS, and the "does not fit" path.
import { describe, expect, test } from 'bun:test';
import {
  HPACK_OK,
  decodeHeaderBlock,
  decoderTableEntries,
  encodeHeaderBlock,
  encodedSizeBound,
  newHpackDecoder,
  newHpackEncoder,
  setDecoderLimit,
  setEncoderLimit,
  type HpackDecoder,
  type HpackEncoder,
} from '../../../src/proxy/h2/hpack.ts';

function encode(e: HpackEncoder, fields: string[]): Buffer {
  const out = Buffer.alloc(encodedSizeBound(fields));
  const end = encodeHeaderBlock(e, fields, out, 0);
  expect(end).toBeGreaterThanOrEqual(0);
  return out.subarray(0, end);
}

function decodeAll(d: HpackDecoder, block: Buffer): string[] {
  const out: string[] = [];
  expect(decodeHeaderBlock(d, block, 0, block.length, out, 1 << 20)).toBe(HPACK_OK);
  return out;
}

const NGINX_HEAD = (date: string, length: string): string[] => [
  ':status', '200', 'server', 'nginx/1.22.1', 'date', date, 'content-type', 'text/html', 'content-length', length,
  'last-modified', 'Mon, 07 Dec 2026 18:00:00 GMT', 'etag', '"6756a1f0-267"', 'accept-ranges', 'bytes',
];

describe('representations chosen per header', () => {
  for (const huffman of [true, false]) {
    test(`nginx-like heads round-trip through the decoder, repeated values become one-octet indexes (huffman ${huffman})`, () => {
      const e = newHpackEncoder({ huffman });
      const d = newHpackDecoder();
      const first = NGINX_HEAD('Mon, 07 Dec 2026 19:00:00 GMT', '615');
      const second = NGINX_HEAD('Mon, 07 Dec 2026 19:00:01 GMT', '616');
      const b1 = encode(e, first);
      const b2 = encode(e, second);
      expect(decodeAll(d, b1)).toEqual(first);
      expect(decodeAll(d, b2)).toEqual(second);
      // server, content-type, accept-ranges were added by the first head; date, content-length, etag, last-modified
      // were not.
      expect(decoderTableEntries(d)).toEqual([['accept-ranges', 'bytes'], ['content-type', 'text/html'], ['server', 'nginx/1.22.1']]);
      expect(b2.length).toBeLessThan(b1.length);
      expect(b2[0]).toBe(0x88); // :status 200
      expect(b2[1]).toBe(0x80 | 64); // server: the oldest of three entries
    });
  }
  test(':status of the static table is one octet; another status is a literal with the static name', () => {
    const e = newHpackEncoder({ huffman: false });
    expect([...encode(e, [':status', '204'])]).toEqual([0x89]);
    expect([...encode(e, [':status', '500'])]).toEqual([0x8e]);
    expect([...encode(e, [':status', '302'])]).toEqual([0x08, 0x03, 0x33, 0x30, 0x32]);
  });
  test('date goes without indexing under its static name; set-cookie never indexed; cookie, authorization too', () => {
    const e = newHpackEncoder({ huffman: false });
    const date = encode(e, ['date', 'x']);
    expect([...date]).toEqual([0x0f, 33 - 15, 0x01, 0x78]);
    const cookie = encode(e, ['set-cookie', 'a=b']);
    expect([...cookie.subarray(0, 2)]).toEqual([0x1f, 55 - 15]);
    expect(encode(e, ['authorization', 'x'])[0]).toBe(0x1f);
    expect(encode(e, ['x-secret-token', 'x'])[0]).toBe(0x00); // unknown, first sight: without indexing, literal name
    expect(e.count).toBe(0);
  });
  test('an unknown header is indexed on second sight of the same value, then sent as an index', () => {
    const e = newHpackEncoder({ huffman: false });
    const d = newHpackDecoder();
    const b1 = encode(e, ['x-cache', 'HIT']);
    const b2 = encode(e, ['x-cache', 'HIT']);
    const b3 = encode(e, ['x-cache', 'HIT']);
    expect(b1[0]).toBe(0x00);
    expect(b2[0]).toBe(0x40);
    expect([...b3]).toEqual([0x80 | 62]);
    for (const b of [b1, b2, b3]) expect(decodeAll(d, b)).toEqual(['x-cache', 'HIT']);
  });
});

describe('the dynamic table stays in sync with the decoder', () => {
  test('2000 heads whose repeating headers cycle through many values (evictions every few heads)', () => {
    const e = newHpackEncoder({ huffman: true });
    const d = newHpackDecoder();
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      const fields = [
        ':status', ['200', '404', '302', '201'][next(4)]!,
        'content-type', `type/${next(50)}${'x'.repeat(next(200))}`,
        'server', `srv${next(3)}`,
        'vary', 'accept-encoding',
        'x-custom', `v${next(2)}`,
        'date', `d${i}`,
      ];
      expect(decodeAll(d, encode(e, fields))).toEqual(fields);
      expect(d.size).toBe(e.size);
    }
    expect(decoderTableEntries(d).length).toBe(e.count);
    // The lookup holds exactly the table's entries (nothing left behind by evictions).
    let mapped = 0;
    for (const values of e.byName.values()) mapped += values.size;
    expect(mapped).toBe(e.count);
    expect([...e.byName.values()].every((values) => values.size > 0)).toBe(true);
  });
  test('literals are plain by default, Huffman-coded when asked and shorter', () => {
    expect([...encode(newHpackEncoder(), ['date', 'aaaa'])]).toEqual([0x0f, 33 - 15, 0x04, 0x61, 0x61, 0x61, 0x61]);
    expect([...encode(newHpackEncoder({ huffman: true }), ['date', 'aaaa'])]).toEqual([0x0f, 33 - 15, 0x83, 0x18, 0xc6, 0x3f]);
    expect([...encode(newHpackEncoder({ huffman: true }), ['date', '\x00'])]).toEqual([0x0f, 33 - 15, 0x01, 0x00]); // 13 bits > 8
  });
  test('an entry larger than the table is sent without indexing and the table is left alone', () => {
    const e = newHpackEncoder();
    const d = newHpackDecoder();
    const fields = ['content-type', 'x'.repeat(5000)];
    expect(decodeAll(d, encode(e, fields))).toEqual(fields);
    expect(e.count).toBe(0);
    expect(decoderTableEntries(d)).toEqual([]);
  });
});

describe('SETTINGS_HEADER_TABLE_SIZE from the peer', () => {
  test('a limit of 0: the next block starts with a size update to 0 and nothing is indexed after', () => {
    const e = newHpackEncoder({ huffman: false });
    const d = newHpackDecoder();
    decodeAll(d, encode(e, ['server', 'a']));
    setEncoderLimit(e, 0);
    setDecoderLimit(d, 0);
    const block = encode(e, ['server', 'a', 'content-type', 'b']);
    expect(block[0]).toBe(0x20);
    expect(decodeAll(d, block)).toEqual(['server', 'a', 'content-type', 'b']);
    expect(decoderTableEntries(d)).toEqual([]);
    expect(encode(e, ['server', 'a'])[0]).toBe(0x0f); // no size update any more; without indexing, static name 54
  });
  test('4096 -> 0 -> 4096 before a block signals 0 then 4096 (the table is flushed)', () => {
    const e = newHpackEncoder({ huffman: false });
    const d = newHpackDecoder();
    decodeAll(d, encode(e, ['server', 'a']));
    setEncoderLimit(e, 0);
    setEncoderLimit(e, 4096);
    const block = encode(e, [':status', '200']);
    expect([...block]).toEqual([0x20, 0x3f, 0xe1, 0x1f, 0x88]);
    expect(decodeAll(d, block)).toEqual([':status', '200']);
    expect(decoderTableEntries(d)).toEqual([]);
  });
  test('a peer limit above 4096 changes nothing (we keep 4096) and sends no update', () => {
    const e = newHpackEncoder();
    setEncoderLimit(e, 65536);
    expect([...encode(e, [':status', '200'])]).toEqual([0x88]);
  });
  test('a smaller limit evicts down to it; the decoder (limited the same) agrees', () => {
    const e = newHpackEncoder({ huffman: false });
    const d = newHpackDecoder();
    decodeAll(d, encode(e, ['server', 'a'.repeat(40), 'content-type', 'b'.repeat(40)]));
    setEncoderLimit(e, 100);
    setDecoderLimit(d, 100);
    decodeAll(d, encode(e, [':status', '200']));
    expect(decoderTableEntries(d)).toEqual([['content-type', 'b'.repeat(40)]]);
    expect(e.size).toBe(d.size);
  });
});

describe('output buffer', () => {
  test('-1 when the buffer is smaller than the bound, with the encoder state untouched', () => {
    const e = newHpackEncoder();
    const fields = NGINX_HEAD('Mon, 07 Dec 2026 19:00:00 GMT', '615');
    expect(encodeHeaderBlock(e, fields, Buffer.alloc(10), 0)).toBe(-1);
    expect(e.count).toBe(0);
    const reference = encode(newHpackEncoder(), fields);
    expect(encode(e, fields)).toEqual(reference);
  });
  test('writes at the given offset and returns the end offset', () => {
    const e = newHpackEncoder();
    const out = Buffer.alloc(64, 0xee);
    expect(encodeHeaderBlock(e, [':status', '200'], out, 9)).toBe(10);
    expect(out[9]).toBe(0x88);
    expect(out[8]).toBe(0xee);
  });
  test('the bound holds for long, non-Huffman-friendly values and long names', () => {
    const e = newHpackEncoder();
    let binary = '';
    for (let i = 0; i < 3000; i++) binary += String.fromCharCode(i % 256);
    const fields = [':status', '299', 'x-'.padEnd(300, 'n'), binary, 'server', binary.slice(0, 200)];
    const block = encode(e, fields);
    expect(block.length).toBeLessThanOrEqual(encodedSizeBound(fields));
    expect(decodeAll(newHpackDecoder(), block)).toEqual(fields);
  });
});
