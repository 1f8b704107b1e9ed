// What requests and responses share when their heads are parsed (RFC 9112): limits, body framing, the
// Connection field, and the one-pass validation of field lines into offsets (fields.ts). Pure: bytes in, values out.
// Imported, not the global: Node's globalThis.Buffer is a getter.
import { Buffer } from 'node:buffer';
import { FIELD_VALUE, TOKEN } from './chars.ts';
import { COLON, F, LINE_END, LINE_START, STRIDE, VALUE_END, VALUE_START, latin1, nameCode, newFields, type Fields } from './fields.ts';

export type { Fields } from './fields.ts';

export interface HeadLimits {
  /** Whole head (request line + fields + CRLFs), bytes. Over it: 431 (requests) / 502 (responses). */
  maxHeaderSize: number;
  maxHeaderCount: number;
  /** Request target length, bytes. Over it: 414. */
  maxUrlLength: number;
}

/** Framing of a message body, decided from the head. */
export type Framing =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  | { kind: 'close' };

export const NONE: Framing = { kind: 'none' };
export const CHUNKED: Framing = { kind: 'chunked' };
export const CLOSE: Framing = { kind: 'close' };
/**
 * buf[start, end) followed by a CRLFCRLF, in a new buffer: for callers that hand over a head without the CRLFCRLF
 * after it (the proxy's own readers never do), so the parsers' loops can stop at a CR without checking a bound.
 */
export function withCrlfCrlf(buf: Buffer, start: number, end: number): Buffer {
  const copy = Buffer.allocUnsafe(end - start + 4);
  buf.copy(copy, 0, start, end);
  copy[end - start] = 0x0d;
  copy[end - start + 1] = 0x0a;
  copy[end - start + 2] = 0x0d;
  copy[end - start + 3] = 0x0a;
  return copy;
}

/** Read-only: the records without extra tokens are shared by every head (connectionInfo). */
export interface ConnectionInfo {
  readonly close: boolean;
  readonly keepAlive: boolean;
  readonly upgrade: boolean;
  /** Other tokens listed in Connection (lowercased): hop-by-hop fields to drop when forwarding. */
  readonly extra: string[] | null;
}

/**
 * Splits and validates the field lines in buf[pos, end) (lines separated by CRLF; `end` is where the final
 * CRLFCRLF starts) in one pass. Returns an error message instead of Fields when a line is not a valid field.
 * `into`: a Fields record to fill instead of a new one (its arrays are reused, so what it held before is gone).
 */
export function parseFields(buf: Buffer, pos: number, end: number, maxCount: number, into: Fields | null = null): Fields | string {
  const f: Fields = into ?? newFields();
  // The CR at `end` stops every byte loop below (it is neither a token, OWS nor a field-value byte), so they need
  // no bound check: the per-byte cost is what a kept-alive request pays most for in the head (bench/proxy/instr.ts).
  const count = end < buf.length && buf[end] === 0x0d ? splitFields(buf, pos, end, maxCount, f) : splitFieldsBounded(buf, pos, end, maxCount, f);
  if (typeof count === 'string') return count;
  f.buf = buf;
  f.count = count;
  return f;
}

/** parseFields' loop for buf[end] === CR: the field count, or an error message. */
function splitFields(buf: Buffer, pos: number, end: number, maxCount: number, f: Fields): number | string {
  const offs = f.offs;
  const codes = f.codes;
  let count = 0;
  while (pos < end) {
    let i = pos;
    let c = buf[i]!;
    for (;;) {
      if (TOKEN[c] !== 1) break;
      c = buf[++i]!;
      if (TOKEN[c] !== 1) break;
      c = buf[++i]!;
      if (TOKEN[c] !== 1) break;
      c = buf[++i]!;
      if (TOKEN[c] !== 1) break;
      c = buf[++i]!;
    }
    if (i === pos) return badNameStart(c);
    if (c !== 0x3a) return badNameEnd(c, i === end);
    const colon = i++;
    while ((c = buf[i]!) === 0x20 || c === 0x09) i++;
    const vs = i;
    // Four bytes per turn: the loop's own cost (the stack check V8 puts on each turn) is paid once per four.
    for (;;) {
      if (FIELD_VALUE[c] !== 1) break;
      c = buf[++i]!;
      if (FIELD_VALUE[c] !== 1) break;
      c = buf[++i]!;
      if (FIELD_VALUE[c] !== 1) break;
      c = buf[++i]!;
      if (FIELD_VALUE[c] !== 1) break;
      c = buf[++i]!;
    }
    if (c !== 0x0d) return badValueByte(c);
    if (i < end && buf[i + 1] !== 0x0a) return 'bare CR in a header line';
    let ve = i;
    while (ve > vs && ((c = buf[ve - 1]!) === 0x20 || c === 0x09)) ve--;
    if (count >= maxCount) return 'too many header fields';
    const o = count * STRIDE;
    offs[o + LINE_START] = pos;
    offs[o + COLON] = colon;
    offs[o + VALUE_START] = vs;
    offs[o + VALUE_END] = ve;
    offs[o + LINE_END] = i;
    codes[count] = nameCode(buf, pos, colon);
    count++;
    pos = i + 2;
  }
  return count;
}

/** The same for a head whose `end` is not a CR (callers outside the proxy's own readers, tests). */
function splitFieldsBounded(buf: Buffer, pos: number, end: number, maxCount: number, f: Fields): number | string {
  const offs = f.offs;
  const codes = f.codes;
  let count = 0;
  while (pos < end) {
    let i = pos;
    let c = buf[i]!;
    while (TOKEN[c] === 1 && ++i < end) c = buf[i]!;
    if (i === pos) return badNameStart(c);
    if (i === end || c !== 0x3a) return badNameEnd(c, i === end);
    const colon = i++;
    while (i < end && ((c = buf[i]!) === 0x20 || c === 0x09)) i++;
    const vs = i;
    let ve = i;
    while (i < end) {
      c = buf[i]!;
      if (c === 0x0d) break;
      if (FIELD_VALUE[c] !== 1) return badValueByte(c);
      i++;
      if (c !== 0x20 && c !== 0x09) ve = i;
    }
    if (i < end && buf[i + 1] !== 0x0a) return 'bare CR in a header line';
    if (count >= maxCount) return 'too many header fields';
    const o = count * STRIDE;
    offs[o + LINE_START] = pos;
    offs[o + COLON] = colon;
    offs[o + VALUE_START] = vs;
    offs[o + VALUE_END] = ve;
    offs[o + LINE_END] = i;
    codes[count] = nameCode(buf, pos, colon);
    count++;
    pos = i + 2;
  }
  return count;
}

function badNameStart(c: number): string {
  if (c === 0x20 || c === 0x09) return 'obs-fold (line folding) is not allowed';
  return c === 0x3a ? 'empty header name' : 'bad header name';
}

/** The name stopped at byte c (atEnd: at the end of the head) rather than at a colon. */
function badNameEnd(c: number, atEnd: boolean): string {
  if (c === 0x20 || c === 0x09) return 'whitespace before the colon in a header';
  return c === 0x0d || c === 0x0a || atEnd ? 'header line without a colon' : 'bad header name';
}

function badValueByte(c: number): string {
  return c === 0x0a ? 'bare LF in a header line' : 'control character or NUL in a header value';
}

export const value = (f: Fields, i: number): string => latin1(f.buf, f.offs[i * STRIDE + VALUE_START]!, f.offs[i * STRIDE + VALUE_END]!);

/** Comma-separated list members (RFC 9110 5.6.1), lowercased, empty members dropped. */
export function listTokens(v: string): string[] {
  const out: string[] = [];
  for (const part of v.split(',')) {
    const t = part.trim();
    if (t.length > 0) out.push(t.toLowerCase());
  }
  return out;
}

/** Case-insensitive compare of field i's value with a lowercase ASCII word. */
function valueIs(f: Fields, i: number, word: string): boolean {
  const s = f.offs[i * STRIDE + VALUE_START]!;
  if (f.offs[i * STRIDE + VALUE_END]! - s !== word.length) return false;
  for (let k = 0; k < word.length; k++) if ((f.buf[s + k]! | 0x20) !== word.charCodeAt(k)) return false;
  return true;
}

const connectionRecord = (close: boolean, keepAlive: boolean, upgrade: boolean, extra: string[] | null): ConnectionInfo => ({
  close,
  keepAlive,
  upgrade,
  extra,
});
/** The records without extra tokens, shared by every head (one object less per head): by close | keepAlive << 1 | upgrade << 2. */
const PLAIN_CONNECTIONS: readonly ConnectionInfo[] = Array.from({ length: 8 }, (_, k) => connectionRecord((k & 1) !== 0, (k & 2) !== 0, (k & 4) !== 0, null));

export function connectionInfo(f: Fields): ConnectionInfo {
  let close = false;
  let keepAlive = false;
  let upgrade = false;
  let extra: string[] | null = null;
  for (let i = 0; i < f.count; i++) {
    if (f.codes[i] !== F.CONNECTION) continue;
    // The common single-token values without decoding.
    if (valueIs(f, i, 'keep-alive')) {
      keepAlive = true;
      continue;
    }
    if (valueIs(f, i, 'close')) {
      close = true;
      continue;
    }
    for (const token of listTokens(value(f, i))) {
      if (token === 'close') close = true;
      else if (token === 'keep-alive') keepAlive = true;
      else if (token === 'upgrade') upgrade = true;
      else (extra ??= []).push(token);
    }
  }
  if (extra !== null) return connectionRecord(close, keepAlive, upgrade, extra);
  return PLAIN_CONNECTIONS[(close ? 1 : 0) | (keepAlive ? 2 : 0) | (upgrade ? 4 : 0)]!;
}

/** A Content-Length value (1*DIGIT, at most 15 digits) from the bytes of field i, or -1. */
export function contentLength(f: Fields, i: number): number {
  const s = f.offs[i * STRIDE + VALUE_START]!;
  const e = f.offs[i * STRIDE + VALUE_END]!;
  if (e === s || e - s > 15) return -1;
  let n = 0;
  for (let k = s; k < e; k++) {
    const d = f.buf[k]! - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}
