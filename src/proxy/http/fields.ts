// Header fields as byte offsets into the buffer they arrived in. Nothing is copied or decoded while parsing:
// the fields the proxy acts on are recognised by a numeric code, the others are relayed as raw byte ranges, and
// strings are made only when something asks for one (logs, HEADER rules, tests).
// Imported, not the global: Node's globalThis.Buffer is a getter.
import { Buffer } from 'node:buffer';

/** Fields the proxy acts on; anything else is OTHER. */
export const F = {
  OTHER: 0,
  HOST: 1,
  CONTENT_LENGTH: 2,
  TRANSFER_ENCODING: 3,
  CONNECTION: 4,
  KEEP_ALIVE: 5,
  PROXY_CONNECTION: 6,
  TE: 7,
  UPGRADE: 8,
  EXPECT: 9,
  X_FORWARDED_FOR: 10,
  X_HOST: 11,
  X_FORWARDED_HOST: 12,
  X_REAL_IP: 13,
  X_FORWARDED_PROTO: 14,
  REFERER: 15,
  USER_AGENT: 16,
  /** X-Reproxy-URL, -File, -Cache-For, -Expected-Size, -Service: a backend's reproxy instructions, never for a client. */
  X_REPROXY: 17,
} as const;
export type FieldCode = (typeof F)[keyof typeof F];

const KNOWN: Array<[string, FieldCode]> = [
  ['host', F.HOST],
  ['content-length', F.CONTENT_LENGTH],
  ['transfer-encoding', F.TRANSFER_ENCODING],
  ['connection', F.CONNECTION],
  ['keep-alive', F.KEEP_ALIVE],
  ['proxy-connection', F.PROXY_CONNECTION],
  ['te', F.TE],
  ['upgrade', F.UPGRADE],
  ['expect', F.EXPECT],
  ['x-forwarded-for', F.X_FORWARDED_FOR],
  ['x-host', F.X_HOST],
  ['x-forwarded-host', F.X_FORWARDED_HOST],
  ['x-real-ip', F.X_REAL_IP],
  ['x-forwarded-proto', F.X_FORWARDED_PROTO],
  ['referer', F.REFERER],
  ['user-agent', F.USER_AGENT],
  ['x-reproxy-url', F.X_REPROXY],
  ['x-reproxy-file', F.X_REPROXY],
  ['x-reproxy-cache-for', F.X_REPROXY],
  ['x-reproxy-expected-size', F.X_REPROXY],
  ['x-reproxy-service', F.X_REPROXY],
];

/** Longest known name: a longer name is OTHER without a lookup. */
const MAX_KNOWN_LENGTH = Math.max(...KNOWN.map(([name]) => name.length));
/** A name's shape: its length and first letter (any case). Known names of one shape are few (at most 2). */
const shapeOf = (length: number, first: number): number => (length << 5) | (first & 31);
/** The known names of each shape, as lowercase bytes: BY_SHAPE[SHAPE_INDEX[shape] - 1]; 0 in SHAPE_INDEX: none. */
const BY_SHAPE: Array<Array<{ bytes: Uint8Array; code: FieldCode }>> = [];
const SHAPE_INDEX = new Uint8Array(shapeOf(MAX_KNOWN_LENGTH + 1, 0));
for (const [name, code] of KNOWN) {
  const shape = shapeOf(name.length, name.charCodeAt(0));
  if (SHAPE_INDEX[shape] === 0) SHAPE_INDEX[shape] = BY_SHAPE.push([]);
  BY_SHAPE[SHAPE_INDEX[shape]! - 1]!.push({ bytes: Uint8Array.from(name, (ch) => ch.charCodeAt(0)), code });
}

/**
 * The code of the field name in buf[start, end) (already validated as a token). `| 0x20` folds ASCII letters to
 * lowercase; the known names contain only letters and `-`, and no other token byte folds onto those. Most names in
 * a head (Date, Server, Content-Type, Accept) are known by their length and first letter to be none of ours, so one
 * table read decides them; the others are compared byte by byte from the second byte.
 */
export function nameCode(buf: Uint8Array, start: number, end: number): FieldCode {
  const n = end - start;
  if (n > MAX_KNOWN_LENGTH) return F.OTHER;
  const index = SHAPE_INDEX[shapeOf(n, buf[start]!)]!;
  if (index === 0) return F.OTHER;
  const candidates = BY_SHAPE[index - 1]!;
  outer: for (let c = 0; c < candidates.length; c++) {
    const bytes = candidates[c]!.bytes;
    for (let k = 0; k < n; k++) if ((buf[start + k]! | 0x20) !== bytes[k]) continue outer;
    return candidates[c]!.code;
  }
  return F.OTHER;
}

/** Five offsets per field in `offs`. */
export const LINE_START = 0;
export const COLON = 1;
export const VALUE_START = 2;
export const VALUE_END = 3;
/** Offset of the CR ending the line (== next line start - 2). */
export const LINE_END = 4;
export const STRIDE = 5;

export interface Fields {
  buf: Buffer;
  count: number;
  /**
   * STRIDE numbers per field: LINE_START, COLON, VALUE_START, VALUE_END (OWS trimmed), LINE_END. A reused record
   * keeps what it grew to: only the first count * STRIDE are this head's.
   */
  offs: number[];
  /** The FieldCode of each field: the first `count` are this head's (as offs). */
  codes: FieldCode[];
}

/**
 * An empty record. Parsing into a reused one (the engine's for responses, a connection's for its requests) stores
 * into arrays that already have the room, instead of growing new arrays for every head.
 */
export function newFields(): Fields {
  return { buf: EMPTY, count: 0, offs: [], codes: [] };
}
const EMPTY = Buffer.alloc(0);

// Buffer#latin1Slice exists on Node, Bun and Deno and skips toString's encoding dispatch; not in @types/node.
type Latin1Buffer = { latin1Slice(start: number, end: number): string; latin1Write(s: string, offset: number): number };
export const latin1 = (buf: Buffer, start: number, end: number): string =>
  (buf as unknown as Latin1Buffer).latin1Slice(start, end);
export const writeLatin1 = (buf: Buffer, s: string, offset: number): number =>
  (buf as unknown as Latin1Buffer).latin1Write(s, offset);

export function fieldName(f: Fields, i: number): string {
  return latin1(f.buf, f.offs[i * STRIDE + LINE_START]!, f.offs[i * STRIDE + COLON]!);
}

export function fieldValue(f: Fields, i: number): string {
  return latin1(f.buf, f.offs[i * STRIDE + VALUE_START]!, f.offs[i * STRIDE + VALUE_END]!);
}

/** Index of the first field with `code`, or -1. */
export function findField(f: Fields, code: FieldCode, from = 0): number {
  for (let i = from; i < f.count; i++) if (f.codes[i] === code) return i;
  return -1;
}

/** The value of the first field named `lowerName` (any case), or undefined. */
export function getField(f: Fields, lowerName: string): string | undefined {
  for (let i = 0; i < f.count; i++) if (fieldName(f, i).toLowerCase() === lowerName) return fieldValue(f, i);
  return undefined;
}

/** All fields as strings, in order (for tests, logs and the rare paths that rewrite by name). */
export function fieldList(f: Fields): { names: string[]; lower: string[]; values: string[] } {
  const names: string[] = [];
  const lower: string[] = [];
  const values: string[] = [];
  for (let i = 0; i < f.count; i++) {
    const n = fieldName(f, i);
    names.push(n);
    lower.push(n.toLowerCase());
    values.push(fieldValue(f, i));
  }
  return { names, lower, values };
}
