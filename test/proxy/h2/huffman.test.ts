// The HPACK Huffman code (RFC 7541 Appendix B): the rebuilt codes match the RFC's, every byte round-trips, the RFC
// examples encode and decode, and the three malformed cases are refused.
import { describe, expect, test } from 'bun:test';
import {
  HUFFMAN_CODES,
  HUFFMAN_LENGTHS,
  huffmanDecode,
  huffmanDecodedBound,
  huffmanEncode,
  huffmanEncodedLength,
} from '../../../src/proxy/h2/huffman.ts';

function encode(s: string): Buffer {
  const out = Buffer.alloc(huffmanEncodedLength(s) + 8, 0xaa);
  const end = huffmanEncode(s, out, 0);
  expect(end).toBe(huffmanEncodedLength(s));
  return out.subarray(0, end);
}

function decode(bytes: Buffer): string | null {
  const out = Buffer.alloc(huffmanDecodedBound(bytes.length));
  const n = huffmanDecode(bytes, 0, bytes.length, out);
  return n < 0 ? null : out.toString('latin1', 0, n);
}

describe('the code table', () => {
  test('codes rebuilt from the lengths equal Appendix B (a sample across every length, and EOS)', () => {
    // symbol: [hex code, length] as printed in Appendix B.
    const appendixB: Array<[number, number, number]> = [
      [0, 0x1ff8, 13], [1, 0x7fffd8, 23], [9, 0xffffea, 24], [10, 0x3ffffffc, 30], [32, 0x14, 6], [33, 0x3f8, 10],
      [35, 0xffa, 12], [39, 0x7fa, 11], [48, 0x0, 5], [58, 0x5c, 7], [38, 0xf8, 8], [60, 0x7ffc, 15], [92, 0x7fff0, 19],
      [94, 0x3ffc, 14], [116, 0x9, 5], [122, 0x7b, 7], [127, 0xffffffc, 28], [128, 0xfffe6, 20], [129, 0x3fffd2, 22],
      [153, 0x1fffdc, 21], [192, 0x3ffffe0, 26], [199, 0x1ffffec, 25], [203, 0x7ffffde, 27], [220, 0xffffffd, 28],
      [227, 0x1fffe6, 21], [249, 0xffffffe, 28], [254, 0x7fffff0, 27], [255, 0x3ffffee, 26], [256, 0x3fffffff, 30],
    ];
    for (const [sym, code, len] of appendixB) expect([sym, HUFFMAN_CODES[sym], HUFFMAN_LENGTHS[sym]]).toEqual([sym, code, len]);
  });
  test('the lengths make a complete prefix code (Kraft sum exactly 1)', () => {
    let sum = 0;
    for (let sym = 0; sym <= 256; sym++) sum += 2 ** (30 - HUFFMAN_LENGTHS[sym]!);
    expect(sum).toBe(2 ** 30);
  });
});

describe('round trips', () => {
  test('every byte value alone, and all 256 in one string', () => {
    for (let b = 0; b < 256; b++) {
      const s = String.fromCharCode(b);
      expect(decode(encode(s))).toBe(s);
    }
    let all = '';
    for (let b = 0; b < 256; b++) all += String.fromCharCode(b);
    expect(decode(encode(all))).toBe(all);
    const reversed = all.split('').reverse().join('');
    expect(decode(encode(reversed))).toBe(reversed);
  });
  test('every pair of a short and a long code, in both orders (padding and carries across octets)', () => {
    for (let b = 0; b < 256; b++) {
      for (const other of [0x30, 0x0a, 0xfe, 0x5c]) {
        const s = String.fromCharCode(b, other, b);
        expect(decode(encode(s))).toBe(s);
      }
    }
  });
  test('the empty string encodes to nothing and decodes from nothing', () => {
    expect(encode('').length).toBe(0);
    expect(decode(Buffer.alloc(0))).toBe('');
  });
});

describe('RFC 7541 examples', () => {
  const examples: Array<[string, string]> = [
    ['www.example.com', 'f1e3c2e5f23a6ba0ab90f4ff'],
    ['no-cache', 'a8eb10649cbf'],
    ['custom-key', '25a849e95ba97d7f'],
    ['custom-value', '25a849e95bb8e8b4bf'],
    ['302', '6402'],
    ['307', '640eff'],
    ['private', 'aec3771a4b'],
    ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07abe941054d444a8200595040b8166e082a62d1bff'],
    ['https://www.example.com', '9d29ad171863c78f0b97c8e9ae82ae43d3'],
    ['gzip', '9bd9ab'],
    ['foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1', '94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007'],
  ];
  for (const [plain, hex] of examples) {
    test(`"${plain.slice(0, 24)}" encodes to and decodes from the RFC's bytes`, () => {
      expect(encode(plain).toString('hex')).toBe(hex);
      expect(decode(Buffer.from(hex, 'hex'))).toBe(plain);
    });
  }
});

describe('malformed strings are refused (COMPRESSION_ERROR)', () => {
  test('EOS inside the string', () => {
    // '0' (00000) then EOS (30 ones) then padding: 00000111 11111111 11111111 11111111 11111000 -> last 3 bits 0s
    // would also be bad padding, so make the padding ones: EOS then 1-bits to the octet boundary.
    expect(decode(Buffer.from('07ffffffff', 'hex'))).toBeNull();
    expect(decode(Buffer.from('ffffffff', 'hex'))).toBeNull();
  });
  test('padding longer than 7 bits', () => {
    expect(decode(Buffer.from('ff', 'hex'))).toBeNull();
    expect(decode(Buffer.from('07ff', 'hex'))).toBeNull(); // '0' then 3 + 8 one-bits
    expect(decode(Buffer.from('07', 'hex'))).toBe('0');
  });
  test('padding that is not all ones', () => {
    expect(decode(Buffer.from('00', 'hex'))).toBeNull(); // '0' then 000
    expect(decode(Buffer.from('06', 'hex'))).toBeNull(); // '0' then 110
    expect(decode(Buffer.from('f1e3c2e5f23a6ba0ab90f4fe', 'hex'))).toBeNull(); // www.example.com, last pad bit 0
  });
  test('a string cut inside a code whose bits so far are all ones but 8 or more', () => {
    // The first 8 bits of a 13-bit code (0x1ff8 = 11111111 11000): eight ones, too long to be padding.
    expect(decode(Buffer.from('ff', 'hex'))).toBeNull();
  });
});
