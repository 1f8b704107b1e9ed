// Hostile input never throws: random blocks and mutated real blocks give a result code (0, -1, -2), and a decoder
// that returned 0 on a mutated block keeps a table within its limit. Bounded: fixed seeds and counts.
import { describe, expect, test } from 'bun:test';
import { decodeHeaderBlock, decoderTableSize, encodeHeaderBlock, encodedSizeBound, newHpackDecoder, newHpackEncoder } from '../../../src/proxy/h2/hpack.ts';

function rng(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s % n;
  };
}

const CHROMIUM_FIRST = Buffer.from(
  '82418cf1e3c2e5f23a6ba0ab9ec9bf878440874148b1275ad1ffa3fe6f4f61e935b4ff3f7de0fe42c87f9fa53f9d274c50a976c1d527f3f7de0fe44d' +
    '7f3f408b4148b1275ad1ad49e33505023f30408d4148b1275ad1ad5d034ca7b29f07224c696e7578224092b6b9ac1c8558d520a4b6c2ad617b5a54',
  'hex',
);

describe('the decoder on hostile input', () => {
  test('20000 random blocks (half of them made of static indexes, to reach the list limit) return a code and never throw', () => {
    const next = rng(1);
    const codes = new Set<number>();
    for (let i = 0; i < 20000; i++) {
      const d = newHpackDecoder(next(2) === 0 ? 4096 : 64);
      const block = Buffer.alloc(1 + next(64));
      const indexesOnly = i % 2 === 0;
      for (let k = 0; k < block.length; k++) block[k] = indexesOnly ? 0x81 + next(61) : next(256);
      const out: string[] = [];
      const rc = decodeHeaderBlock(d, block, 0, block.length, out, 1 + next(400));
      codes.add(rc);
      expect([0, -1, -2]).toContain(rc);
      expect(decoderTableSize(d)).toBeLessThanOrEqual(d.maxSize);
    }
    expect([...codes].sort()).toEqual([-1, -2, 0]);
  });
  test('5000 single-octet mutations and truncations of a real Chromium block return a code and never throw', () => {
    const next = rng(2);
    for (let i = 0; i < 5000; i++) {
      const block = Buffer.from(CHROMIUM_FIRST);
      block[next(block.length)] = next(256);
      const end = next(4) === 0 ? next(block.length) : block.length;
      const d = newHpackDecoder();
      const rc = decodeHeaderBlock(d, block, 0, end, [], 1 << 16);
      expect([0, -1, -2]).toContain(rc);
      expect(decoderTableSize(d)).toBeLessThanOrEqual(4096);
    }
  });
});

describe('the encoder on odd input', () => {
  test('random latin1 names and values round-trip, Huffman or not', () => {
    const next = rng(3);
    for (const huffman of [true, false]) {
      const e = newHpackEncoder({ huffman });
      const d = newHpackDecoder();
      for (let i = 0; i < 500; i++) {
        const fields: string[] = [':status', String(100 + next(500))];
        for (let f = next(8); f > 0; f--) {
          let name = '';
          for (let k = 1 + next(12); k > 0; k--) name += String.fromCharCode(97 + next(26));
          let value = '';
          for (let k = next(40); k > 0; k--) value += String.fromCharCode(next(256));
          fields.push(name, value);
        }
        const buf = Buffer.alloc(encodedSizeBound(fields));
        const end = encodeHeaderBlock(e, fields, buf, 0);
        const out: string[] = [];
        expect(decodeHeaderBlock(d, buf, 0, end, out, 1 << 20)).toBe(0);
        expect(out).toEqual(fields);
      }
    }
  });
});
