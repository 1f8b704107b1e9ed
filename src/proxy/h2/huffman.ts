// The HPACK static Huffman code (RFC 7541 5.2 and Appendix B), pure. The code is canonical: every symbol's code
// follows from the code lengths alone (shorter codes first, ties by symbol value), so the table below is just the
// 257 lengths of Appendix B and the codes are rebuilt from them at load (test/proxy/h2/huffman.test.ts checks them
// against Appendix B's hex codes and the Kraft sum).
//
// Decoding is a 4-bit state machine (the technique of nghttp2's decoder): the states are the 256 internal nodes of
// the code tree; each (state, nibble) entry gives the next state and at most one emitted symbol (the shortest code
// is 5 bits, so a nibble never completes two). No allocation per string: the caller passes the output buffer.

/** Appendix B code lengths in bits, symbols 0..255 then EOS (256). */
const CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28,
  28, 28, 28, 28, // 0..31
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 32..63
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 64..95
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 96..127
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23,
  22, 23, 23, 24, // 128..159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22,
  23, 22, 22, 23, // 160..191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26,
  28, 27, 27, 27, // 192..223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27,
  27, 27, 27, 26, // 224..255
  30, // EOS
];

const EOS = 256;
/** Right-aligned code of each symbol (index 256: EOS). */
export const HUFFMAN_CODES = new Uint32Array(257);
/** Length in bits of each symbol's code. */
export const HUFFMAN_LENGTHS = Uint8Array.from(CODE_LENGTHS);

// Canonical code assignment (RFC 1951 3.2.2's algorithm).
{
  const countPerLength = new Uint32Array(31);
  for (const len of CODE_LENGTHS) countPerLength[len]!++;
  const nextCode = new Uint32Array(31);
  let code = 0;
  for (let len = 1; len <= 30; len++) {
    code = (code + countPerLength[len - 1]!) * 2;
    nextCode[len] = code;
  }
  // countPerLength[0] is 0, so the loop above starts at code 0 for the shortest length.
  for (let sym = 0; sym <= EOS; sym++) {
    const len = CODE_LENGTHS[sym]!;
    HUFFMAN_CODES[sym] = nextCode[len]!;
    nextCode[len]!++;
  }
}

// Decoder tables. Entry (state * 16 + nibble): bits 0..7 the symbol, bit 8 "a symbol was emitted", bit 9 "failure"
// (EOS decoded), bits 16..23 the next state. ACCEPT[state]: ending the string in this state is valid padding (the
// bits since the last symbol are fewer than 8 and all ones, or there are none).
const EMIT = 0x100;
const FAIL = 0x200;
const TRANSITIONS = new Uint32Array(256 * 16);
const ACCEPT = new Uint8Array(256);
{
  // The tree: internal nodes 0..255 (0 the root); child[node*2 + bit] is an internal node id, or -(sym+1) for a leaf.
  const child = new Int32Array(512);
  const depth = new Uint8Array(256);
  const allOnes = new Uint8Array(256);
  let nodes = 1;
  allOnes[0] = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const len = CODE_LENGTHS[sym]!;
    const code = HUFFMAN_CODES[sym]!;
    let node = 0;
    for (let i = len - 1; i > 0; i--) {
      const bit = (code >>> i) & 1;
      let next = child[node * 2 + bit]!;
      if (next === 0) {
        next = nodes++;
        child[node * 2 + bit] = next;
        depth[next] = depth[node]! + 1;
        allOnes[next] = allOnes[node]! & bit;
      }
      node = next;
    }
    child[node * 2 + (code & 1)] = -(sym + 1);
  }
  if (nodes !== 256) throw new Error(`huffman: the code tree has ${nodes} internal nodes, not 256`);
  for (let state = 0; state < 256; state++) {
    ACCEPT[state] = state === 0 || (allOnes[state] === 1 && depth[state]! < 8) ? 1 : 0;
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let i = 3; i >= 0; i--) {
        const next = child[node * 2 + ((nibble >>> i) & 1)]!;
        if (next < 0) {
          const sym = -next - 1;
          if (sym === EOS) entry |= FAIL;
          else entry |= EMIT | sym;
          node = 0;
        } else {
          node = next;
        }
      }
      TRANSITIONS[state * 16 + nibble] = entry | (node << 16);
    }
  }
}

/**
 * Decodes the Huffman string src[start, end) into out from offset 0; returns the decoded length, or -1 on a
 * COMPRESSION_ERROR (EOS in the string, padding longer than 7 bits or not all ones). `out` must hold at least
 * huffmanDecodedBound(end - start) bytes.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let state = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    let entry = TRANSITIONS[(state << 4) | (byte >>> 4)]!;
    if ((entry & (EMIT | FAIL)) !== 0) {
      if ((entry & FAIL) !== 0) return -1;
      out[n++] = entry & 0xff;
    }
    entry = TRANSITIONS[((entry >>> 16) << 4) | (byte & 0xf)]!;
    if ((entry & (EMIT | FAIL)) !== 0) {
      if ((entry & FAIL) !== 0) return -1;
      out[n++] = entry & 0xff;
    }
    state = entry >>> 16;
  }
  return ACCEPT[state] === 1 ? n : -1;
}

/** The most bytes `encodedLength` Huffman octets can decode to (the shortest code is 5 bits). */
export function huffmanDecodedBound(encodedLength: number): number {
  return Math.ceil((encodedLength * 8) / 5);
}

/** The Huffman-encoded length in octets of the latin1 string s (padding included). */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/**
 * Huffman-encodes the latin1 string s into out at offset, padded with ones (EOS's leading bits); returns the new
 * offset. The caller makes room for huffmanEncodedLength(s) bytes.
 */
export function huffmanEncode(s: string, out: Uint8Array, offset: number): number {
  // acc holds the pending bits (fewer than 8 between symbols), so acc << len stays within 32 bits for len <= 24;
  // the rare longer codes go in two steps.
  let acc = 0;
  let nbits = 0;
  let pos = offset;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let len = HUFFMAN_LENGTHS[sym]!;
    let code = HUFFMAN_CODES[sym]!;
    if (len > 24) {
      const high = len - 24;
      acc = (acc << high) | (code >>> 24);
      nbits += high;
      code &= 0xffffff;
      len = 24;
      while (nbits >= 8) {
        nbits -= 8;
        out[pos++] = (acc >>> nbits) & 0xff;
      }
      acc &= (1 << nbits) - 1;
    }
    acc = ((acc << len) | code) >>> 0;
    nbits += len;
    while (nbits >= 8) {
      nbits -= 8;
      out[pos++] = (acc >>> nbits) & 0xff;
    }
    acc &= (1 << nbits) - 1;
  }
  if (nbits > 0) out[pos++] = ((acc << (8 - nbits)) | (0xff >>> nbits)) & 0xff;
  return pos;
}
