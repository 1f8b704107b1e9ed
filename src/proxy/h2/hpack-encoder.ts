// HPACK (RFC 7541) encoding of response heads, pure. Strategy, per field:
// - :status 200/204/206/304/400/404/500 are the static indexed fields 0x88..0x8e; other statuses a literal with the
//   static name :status, without indexing;
// - names of headers whose values repeat across responses (server, content-type, cache-control, vary...) are
//   indexed: the first response adds (name, value) to the dynamic table, later ones send one octet;
// - values that change every response (date, content-length, etag, last-modified, location...) go as literals
//   without indexing, so they do not push the repeating entries out; set-cookie, cookie, authorization never
//   indexed (RFC 7541 7.1.3);
// - any other name is indexed on second sight: the first time a (name, value) is seen it goes without indexing, if
//   the next response repeats the value it is added to the table.
// Names found in the static table go as indexes (one Map lookup); other names as literals.
// Literals are sent plain by default: Huffman would save ~16 octets on a 90-octet nginx head (the date and
// last-modified literals, sent every response) but doubles the encoding time on Node (bench/h2/hpack.ts: 976 against
// 440 ns per head on Node 22; 316 against 213 on Bun), and CPU per request is what tsbal is short of. HAProxy does
// not Huffman-code either. `newHpackEncoder({ huffman: true })` codes a literal when that is shorter.
import { huffmanEncode, huffmanEncodedLength } from './huffman.ts';
import { growRing, newHeaderRing, type HeaderRing, STATIC_COUNT, STATIC_NAME_INDEX } from './hpack-static.ts';

const ENTRY_OVERHEAD = 32;
/** Our own cap on the table we keep for a peer (the RFC 9113 default; a bigger peer setting is not used). */
const PREFERRED_TABLE_SIZE = 4096;

const INDEX = 1;
const WITHOUT_INDEXING = 2;
const NEVER_INDEXED = 3;
const POLICY: ReadonlyMap<string, number> = new Map([
  ...['server', 'content-type', 'cache-control', 'vary', 'accept-ranges', 'content-encoding', 'content-language',
    'access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers',
    'x-content-type-options', 'x-frame-options', 'x-xss-protection', 'strict-transport-security', 'referrer-policy',
    'content-security-policy', 'alt-svc', 'via', 'x-powered-by', 'allow', 'pragma', 'expect-ct', 'permissions-policy',
  ].map((n): [string, number] => [n, INDEX]),
  ...['date', 'content-length', 'etag', 'last-modified', 'location', 'age', 'expires', 'content-range',
    'content-disposition', 'content-location', 'link', 'retry-after', 'x-request-id', 'keep-alive',
  ].map((n): [string, number] => [n, WITHOUT_INDEXING]),
  ...['set-cookie', 'cookie', 'authorization', 'proxy-authorization', 'www-authenticate', 'proxy-authenticate',
  ].map((n): [string, number] => [n, NEVER_INDEXED]),
]);
/** Bound on the names remembered for indexing on second sight. */
const MAX_REMEMBERED_NAMES = 64;

interface Latin1Writable {
  latin1Write(s: string, offset: number, length: number): number;
}

/** The dynamic table is the ring (oldest at `first`), mirrored by the peer's decoder. */
export interface HpackEncoder extends HeaderRing {
  size: number;
  maxSize: number;
  /** Entries ever inserted: the entry with absolute id a has HPACK index 62 + (inserted - 1 - a). */
  inserted: number;
  /** name -> value -> absolute id of the table entry holding that pair. */
  byName: Map<string, Map<string, number>>;
  /** The peer's SETTINGS_HEADER_TABLE_SIZE, capped by PREFERRED_TABLE_SIZE, not yet announced by a size update. */
  pendingMaxSize: number;
  /** The smallest size the limit went through since the last announcement (RFC 7541 4.2: signal it first). */
  pendingMinSize: number;
  /** Last value sent for names without a policy (indexing on second sight). */
  lastValues: Map<string, string>;
  /** Huffman-code literals when shorter (default false, see the top of the file). */
  huffman: boolean;
}

export function newHpackEncoder(options: { huffman?: boolean } = {}): HpackEncoder {
  return {
    ...newHeaderRing(),
    size: 0,
    maxSize: PREFERRED_TABLE_SIZE,
    inserted: 0,
    byName: new Map(),
    pendingMaxSize: -1,
    pendingMinSize: -1,
    lastValues: new Map(),
    huffman: options.huffman ?? false,
  };
}

/**
 * The peer's SETTINGS_HEADER_TABLE_SIZE. The table we use is min(limit, 4096); when that changes, the next block
 * starts with the dynamic table size update(s) announcing it.
 */
export function setEncoderLimit(e: HpackEncoder, limit: number): void {
  const size = Math.min(limit, PREFERRED_TABLE_SIZE);
  const current = e.pendingMaxSize >= 0 ? e.pendingMaxSize : e.maxSize;
  if (size === current && e.pendingMaxSize < 0) return;
  e.pendingMaxSize = size;
  e.pendingMinSize = e.pendingMinSize < 0 ? size : Math.min(size, e.pendingMinSize);
}

/** An upper bound of the encoded size of `fields` (flat name, value): size the output buffer with it. */
export function encodedSizeBound(fields: readonly string[]): number {
  let bound = 12; // two dynamic table size updates of up to 6 octets
  for (let i = 0; i < fields.length; i++) bound += fields[i]!.length + 6; // literal (never longer than plain) + length
  return bound + (fields.length >>> 1); // the representation's first octet
}

/**
 * Encodes `fields` (flat name, value; names lowercase) into out at offset; returns the new offset, or -1 without
 * touching the encoder's state when out has fewer than encodedSizeBound(fields) bytes from offset (grow and retry).
 */
export function encodeHeaderBlock(e: HpackEncoder, fields: readonly string[], out: Buffer, offset: number): number {
  if (out.length - offset < encodedSizeBound(fields)) return -1;
  let pos = offset;
  if (e.pendingMaxSize >= 0) {
    if (e.pendingMinSize < e.pendingMaxSize) {
      pos = writeInteger(out, pos, e.pendingMinSize, 0x1f, 0x20);
      evictDown(e, e.pendingMinSize);
    }
    pos = writeInteger(out, pos, e.pendingMaxSize, 0x1f, 0x20);
    e.maxSize = e.pendingMaxSize;
    evictDown(e, e.maxSize);
    e.pendingMaxSize = -1;
    e.pendingMinSize = -1;
  }
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name === ':status') {
      const code = STATUS_INDEX[value];
      if (code !== undefined) out[pos++] = code;
      else {
        out[pos++] = 0x08; // literal without indexing, static name 8 (:status)
        pos = writeString(e, out, pos, value);
      }
      continue;
    }
    const staticIndex = STATIC_NAME_INDEX.get(name) ?? 0;
    let policy = POLICY.get(name) ?? 0;
    if (policy === 0) {
      // Second sight: index a value this name had in the previous response.
      policy = e.lastValues.get(name) === value ? INDEX : WITHOUT_INDEXING;
      if (policy === WITHOUT_INDEXING) {
        if (e.lastValues.size >= MAX_REMEMBERED_NAMES && !e.lastValues.has(name)) e.lastValues.clear();
        e.lastValues.set(name, value);
      }
    }
    if (policy === INDEX) {
      const values = e.byName.get(name);
      const id = values === undefined ? undefined : values.get(value);
      if (id !== undefined) {
        pos = writeInteger(out, pos, STATIC_COUNT + e.inserted - id, 0x7f, 0x80);
        continue;
      }
      if (name.length + value.length + ENTRY_OVERHEAD <= e.maxSize) {
        pos = staticIndex > 0 ? writeInteger(out, pos, staticIndex, 0x3f, 0x40) : writeLiteralName(e, out, pos, 0x40, name);
        pos = writeString(e, out, pos, value);
        insert(e, name, value);
        continue;
      }
      policy = WITHOUT_INDEXING;
    }
    const flags = policy === NEVER_INDEXED ? 0x10 : 0x00;
    pos = staticIndex > 0 ? writeInteger(out, pos, staticIndex, 0x0f, flags) : writeLiteralName(e, out, pos, flags, name);
    pos = writeString(e, out, pos, value);
  }
  return pos;
}

/** The static indexed field octet for the statuses the static table holds (entries 8..14). */
const STATUS_INDEX: Readonly<Record<string, number>> = { '200': 0x88, '204': 0x89, '206': 0x8a, '304': 0x8b, '400': 0x8c, '404': 0x8d, '500': 0x8e };

function writeLiteralName(e: HpackEncoder, out: Buffer, pos: number, flags: number, name: string): number {
  out[pos++] = flags; // name index 0: a literal name follows
  return writeString(e, out, pos, name);
}

/** A prefixed integer (RFC 7541 5.1): `prefixMask` is 2^N - 1, `flags` the representation's high bits. */
function writeInteger(out: Buffer, pos: number, value: number, prefixMask: number, flags: number): number {
  if (value < prefixMask) {
    out[pos++] = flags | value;
    return pos;
  }
  out[pos++] = flags | prefixMask;
  value -= prefixMask;
  while (value >= 0x80) {
    out[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  out[pos++] = value;
  return pos;
}

/** A string literal (5.2), Huffman-coded when enabled and shorter. */
function writeString(e: HpackEncoder, out: Buffer, pos: number, s: string): number {
  const length = s.length;
  if (e.huffman && length > 0) {
    const huffmanLength = huffmanEncodedLength(s);
    if (huffmanLength < length) {
      pos = writeInteger(out, pos, huffmanLength, 0x7f, 0x80);
      return huffmanEncode(s, out, pos);
    }
  }
  pos = writeInteger(out, pos, length, 0x7f, 0x00);
  if (length < 32) {
    for (let i = 0; i < length; i++) out[pos + i] = s.charCodeAt(i);
    return pos + length;
  }
  return pos + (out as unknown as Latin1Writable).latin1Write(s, pos, length);
}

function insert(e: HpackEncoder, name: string, value: string): void {
  const size = name.length + value.length + ENTRY_OVERHEAD;
  evictDown(e, e.maxSize - size);
  if (e.count === e.mask + 1) growRing(e);
  const at = (e.first + e.count) & e.mask;
  e.names[at] = name;
  e.values[at] = value;
  e.count++;
  e.size += size;
  let values = e.byName.get(name);
  if (values === undefined) {
    values = new Map();
    e.byName.set(name, values);
  }
  values.set(value, e.inserted++);
}

function evictDown(e: HpackEncoder, target: number): void {
  while (e.size > target && e.count > 0) {
    const at = e.first;
    const name = e.names[at]!;
    const value = e.values[at]!;
    e.size -= name.length + value.length + ENTRY_OVERHEAD;
    const id = e.inserted - e.count;
    const values = e.byName.get(name);
    if (values !== undefined && values.get(value) === id) {
      values.delete(value);
      if (values.size === 0) e.byName.delete(name); // names come and go with backends: keep the map bounded
    }
    e.names[at] = '';
    e.values[at] = '';
    e.first = (at + 1) & e.mask;
    e.count--;
  }
}
