// HPACK (RFC 7541) header block decoding for tsbal's own HTTP/2 server connection: pure, no I/O. Every request's
// header block goes through decodeHeaderBlock, so it allocates nothing but the strings it returns: fields go flat
// into the caller's array (name, value, name, value...), indexed fields hand out the interned static-table strings
// or the dynamic table's stored strings, Huffman strings decode into a reused scratch buffer.
// The encoder (responses) is in hpack-encoder.ts, re-exported here.
import { huffmanDecode, huffmanDecodedBound } from './huffman.ts';
import { growRing, newHeaderRing, type HeaderRing, STATIC_COUNT, STATIC_NAMES, STATIC_VALUES } from './hpack-static.ts';

export { encodeHeaderBlock, encodedSizeBound, newHpackEncoder, setEncoderLimit, type HpackEncoder } from './hpack-encoder.ts';

/** decodeHeaderBlock results. */
export const HPACK_OK = 0;
/** Malformed block: a connection error of type COMPRESSION_ERROR (RFC 9113 4.3). */
export const HPACK_COMPRESSION_ERROR = -1;
/** The decoded header list is larger than maxListSize (the dynamic table is still in sync). */
export const HPACK_LIST_TOO_LARGE = -2;

/** RFC 7541 4.1: an entry's size is its name and value lengths in octets plus 32. */
export const ENTRY_OVERHEAD = 32;

/** Integers above this are refused: no HPACK integer of a sane peer comes near (lengths are bounded by frames). */
const MAX_INTEGER = 0x7fffffff;
/** At most this many continuation octets after a full prefix (RFC 7541 5.1 leaves the bound to implementations). */
const MAX_CONTINUATION_OCTETS = 4;

interface Latin1Buffer {
  latin1Slice(start: number, end: number): string;
}

/** The dynamic table is the ring: entry k (0 the newest) is at (first + count - 1 - k) & mask. */
export interface HpackDecoder extends HeaderRing {
  /** Sum of the entries' sizes, in octets. */
  size: number;
  /** The table's current maximum size (the last dynamic table size update, or the initial limit). */
  maxSize: number;
  /** Our SETTINGS_HEADER_TABLE_SIZE: no size update may exceed it. */
  limit: number;
  /** The limit went below maxSize: the next block must start with a size update (RFC 7541 4.2). */
  updateRequired: boolean;
  /** Where readInteger/readString left off (saves returning pairs). */
  pos: number;
  /** Huffman output, reused across strings and blocks. */
  scratch: Buffer;
}

export function newHpackDecoder(maxTableSize = 4096): HpackDecoder {
  return {
    ...newHeaderRing(),
    size: 0,
    maxSize: maxTableSize,
    limit: maxTableSize,
    updateRequired: false,
    pos: 0,
    scratch: Buffer.allocUnsafe(256),
  };
}

/**
 * Sets our SETTINGS_HEADER_TABLE_SIZE (call when the peer has acknowledged the SETTINGS carrying it). Below the
 * table's current maximum, the peer must open its next block with a size update within the new limit.
 */
export function setDecoderLimit(d: HpackDecoder, limit: number): void {
  d.limit = limit;
  if (limit < d.maxSize) d.updateRequired = true;
}

/** The dynamic table's entries, newest first, as [name, value] pairs (for tests and debugging, not the hot path). */
export function decoderTableEntries(d: HpackDecoder): Array<[string, string]> {
  const entries: Array<[string, string]> = [];
  for (let k = 0; k < d.count; k++) {
    const at = (d.first + d.count - 1 - k) & d.mask;
    entries.push([d.names[at]!, d.values[at]!]);
  }
  return entries;
}

/** The dynamic table's size in octets. */
export function decoderTableSize(d: HpackDecoder): number {
  return d.size;
}

/**
 * Decodes the header block buf[start, end) and appends its fields flat to `out` (name, value, ...). Returns HPACK_OK,
 * HPACK_COMPRESSION_ERROR (the connection must end: the table is out of sync), or HPACK_LIST_TOO_LARGE when the
 * list's size (RFC 9113 6.5.2: name + value + 32 per field) exceeds maxListSize: the block is then still decoded to
 * its end to keep the table in sync, but fields stop being appended (those already appended stay: discard them).
 */
export function decodeHeaderBlock(d: HpackDecoder, buf: Buffer, start: number, end: number, out: string[], maxListSize: number): number {
  let pos = start;
  let listSize = 0;
  let appending = true;
  let fieldSeen = false;
  if (d.updateRequired && (pos >= end || (buf[pos]! & 0xe0) !== 0x20)) return HPACK_COMPRESSION_ERROR;
  while (pos < end) {
    const b = buf[pos]!;
    let name: string;
    let value: string;
    if (b >= 0x80) {
      // Indexed field (6.1).
      let index = b & 0x7f;
      pos++;
      if (index === 0x7f) {
        index = readIntegerTail(d, buf, pos, end, 0x7f);
        if (index < 0) return HPACK_COMPRESSION_ERROR;
        pos = d.pos;
      }
      if (index === 0) return HPACK_COMPRESSION_ERROR;
      if (index <= STATIC_COUNT) {
        name = STATIC_NAMES[index]!;
        value = STATIC_VALUES[index]!;
      } else {
        const k = index - STATIC_COUNT - 1;
        if (k >= d.count) return HPACK_COMPRESSION_ERROR;
        const at = (d.first + d.count - 1 - k) & d.mask;
        name = d.names[at]!;
        value = d.values[at]!;
      }
    } else if (b >= 0x20 && b < 0x40) {
      // Dynamic table size update (6.3): only before the block's first field.
      if (fieldSeen) return HPACK_COMPRESSION_ERROR;
      let size = b & 0x1f;
      pos++;
      if (size === 0x1f) {
        size = readIntegerTail(d, buf, pos, end, 0x1f);
        if (size < 0) return HPACK_COMPRESSION_ERROR;
        pos = d.pos;
      }
      if (size > d.limit) return HPACK_COMPRESSION_ERROR;
      d.maxSize = size;
      d.updateRequired = false;
      evictDown(d, size);
      continue;
    } else {
      // Literal field: with incremental indexing (01xxxxxx, 6-bit index), or without / never indexed (0000xxxx,
      // 0001xxxx, 4-bit index). Never-indexed decodes like without-indexing here; re-encoding is not our job.
      const incremental = b >= 0x40;
      const prefixMask = incremental ? 0x3f : 0x0f;
      let index = b & prefixMask;
      pos++;
      if (index === prefixMask) {
        index = readIntegerTail(d, buf, pos, end, prefixMask);
        if (index < 0) return HPACK_COMPRESSION_ERROR;
        pos = d.pos;
      }
      d.pos = pos;
      if (index === 0) {
        const literalName = readString(d, buf, pos, end, 0);
        if (literalName === null) return HPACK_COMPRESSION_ERROR;
        name = literalName;
      } else if (index <= STATIC_COUNT) {
        name = STATIC_NAMES[index]!;
      } else {
        const k = index - STATIC_COUNT - 1;
        if (k >= d.count) return HPACK_COMPRESSION_ERROR;
        name = d.names[(d.first + d.count - 1 - k) & d.mask]!;
      }
      // Static entries 2..16 have values: a literal equal to one of its name's comes out as the interned string.
      const literalValue = readString(d, buf, d.pos, end, index <= 16 ? index : 0);
      if (literalValue === null) return HPACK_COMPRESSION_ERROR;
      value = literalValue;
      pos = d.pos;
      if (incremental) insert(d, name, value);
    }
    fieldSeen = true;
    if (appending) {
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > maxListSize) appending = false;
      else out.push(name, value);
    }
  }
  return appending ? HPACK_OK : HPACK_LIST_TOO_LARGE;
}

/**
 * The rest of a prefixed integer (5.1) whose prefix bits were all ones, the continuation octets starting at pos.
 * Returns the value (d.pos after it) or -1: truncated, more than MAX_CONTINUATION_OCTETS octets, or too large.
 */
function readIntegerTail(d: HpackDecoder, buf: Buffer, pos: number, end: number, prefix: number): number {
  let value = prefix;
  let shift = 0;
  for (let octets = 0; octets < MAX_CONTINUATION_OCTETS; octets++) {
    if (pos >= end) return -1;
    const b = buf[pos++]!;
    value += (b & 0x7f) * 2 ** shift;
    if (value > MAX_INTEGER) return -1;
    if (b < 0x80) {
      d.pos = pos;
      return value;
    }
    shift += 7;
  }
  return -1;
}

/**
 * A string literal (5.2) at pos: returns it (d.pos after it) or null when truncated or badly Huffman-coded.
 * staticIndex > 0: the string is a value of that static entry's name; if it equals one of the static values of that
 * name, that interned string is returned instead of a new one.
 */
function readString(d: HpackDecoder, buf: Buffer, pos: number, end: number, staticIndex: number): string | null {
  if (pos >= end) return null;
  const first = buf[pos]!;
  let length = first & 0x7f;
  pos++;
  if (length === 0x7f) {
    length = readIntegerTail(d, buf, pos, end, 0x7f);
    if (length < 0) return null;
    pos = d.pos;
  }
  if (length > end - pos) return null;
  d.pos = pos + length;
  if (first < 0x80) {
    if (staticIndex > 0) {
      const interned = staticValueMatching(staticIndex, buf, pos, pos + length);
      if (interned !== null) return interned;
    }
    return (buf as unknown as Latin1Buffer).latin1Slice(pos, pos + length);
  }
  const bound = huffmanDecodedBound(length);
  if (d.scratch.length < bound) d.scratch = Buffer.allocUnsafe(Math.max(bound, d.scratch.length * 2));
  const n = huffmanDecode(buf, pos, pos + length, d.scratch);
  if (n < 0) return null;
  if (staticIndex > 0) {
    const interned = staticValueMatching(staticIndex, d.scratch, 0, n);
    if (interned !== null) return interned;
  }
  return (d.scratch as unknown as Latin1Buffer).latin1Slice(0, n);
}

/** The static value of static entry `index`'s name equal to bytes[start, end), or null. */
function staticValueMatching(index: number, bytes: Uint8Array, start: number, end: number): string | null {
  const name = STATIC_NAMES[index]!;
  // Entries with the same name are adjacent; start from the first of them.
  let k = index;
  while (k > 1 && STATIC_NAMES[k - 1] === name) k--;
  const length = end - start;
  for (; k <= STATIC_COUNT && STATIC_NAMES[k] === name; k++) {
    const candidate = STATIC_VALUES[k]!;
    if (candidate.length !== length || length === 0) continue;
    let i = 0;
    while (i < length && candidate.charCodeAt(i) === bytes[start + i]) i++;
    if (i === length) return candidate;
  }
  return null;
}

/** Adds an entry (4.4): evicts the oldest until it fits; an entry larger than the table empties it and is dropped. */
function insert(d: HpackDecoder, name: string, value: string): void {
  const size = name.length + value.length + ENTRY_OVERHEAD;
  if (size > d.maxSize) {
    evictDown(d, 0);
    return;
  }
  evictDown(d, d.maxSize - size);
  if (d.count === d.mask + 1) growRing(d);
  const at = (d.first + d.count) & d.mask;
  d.names[at] = name;
  d.values[at] = value;
  d.count++;
  d.size += size;
}

/** Evicts the oldest entries until the table's size is at most `target`. */
function evictDown(d: HpackDecoder, target: number): void {
  while (d.size > target && d.count > 0) {
    const at = d.first;
    d.size -= d.names[at]!.length + d.values[at]!.length + ENTRY_OVERHEAD;
    d.names[at] = '';
    d.values[at] = '';
    d.first = (at + 1) & d.mask;
    d.count--;
  }
}
