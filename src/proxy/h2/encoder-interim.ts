// Interim HPACK encoder for responses until s3-hpack's hpack-encoder.ts lands: every field a literal without
// indexing, no Huffman, no dynamic table (valid HPACK, only larger than it could be). Same signatures.

export interface HpackEncoder {
  limit: number;
}

export function newHpackEncoder(): HpackEncoder {
  return { limit: 4096 };
}

/** The peer's SETTINGS_HEADER_TABLE_SIZE: no table is used here, so nothing to do. */
export function setEncoderLimit(e: HpackEncoder, limit: number): void {
  e.limit = limit;
}

function writeInt(out: Buffer, at: number, prefixBits: number, first: number, value: number): number {
  const max = (1 << prefixBits) - 1;
  if (at >= out.length) return -1;
  if (value < max) {
    out[at] = first | value;
    return at + 1;
  }
  out[at++] = first | max;
  value -= max;
  while (value >= 128) {
    if (at >= out.length) return -1;
    out[at++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  if (at >= out.length) return -1;
  out[at++] = value;
  return at;
}

/** Encodes the flat list `fields` at `offset` of `out`; the new offset, or -1 when `out` is too small. */
export function encodeHeaderBlock(_e: HpackEncoder, fields: readonly string[], out: Buffer, offset: number): number {
  let at = offset;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (at + 2 + name.length + value.length + 10 > out.length) return -1;
    at = writeInt(out, at, 4, 0x00, 0);
    at = writeInt(out, at, 7, 0x00, Buffer.byteLength(name, 'latin1'));
    at += out.write(name, at, 'latin1');
    at = writeInt(out, at, 7, 0x00, Buffer.byteLength(value, 'latin1'));
    at += out.write(value, at, 'latin1');
  }
  return at;
}
