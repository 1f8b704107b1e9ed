// Assembling outgoing heads: one buffer per head, sized by an upper bound and filled in place; field lines the
// proxy does not change are copied from the incoming buffer as raw runs of consecutive lines.
import { COLON, LINE_END, LINE_START, STRIDE, fieldName, writeLatin1, type Fields } from './fields.ts';

/**
 * Where a head is assembled: a buffer allocated per head with an upper bound of its size (plus whatever body goes
 * out in the same write), filled in place, and handed to the socket as is. One per engine, used synchronously.
 */
export interface HeadWriter {
  buf: Buffer;
  pos: number;
}

export function newHeadWriter(): HeadWriter {
  return { buf: Buffer.alloc(0), pos: 0 };
}

/** Starts a head of at most about `upperBound` bytes (more still fits, at the cost of a copy). */
export function beginHead(w: HeadWriter, upperBound: number): void {
  w.buf = Buffer.allocUnsafe(upperBound);
  w.pos = 0;
}

function ensure(w: HeadWriter, more: number): void {
  if (w.pos + more <= w.buf.length) return;
  const grown = Buffer.allocUnsafe(Math.max(w.buf.length * 2, w.pos + more));
  w.buf.copy(grown, 0, 0, w.pos);
  w.buf = grown;
}

/** Below this, a JS loop beats a native copy (each native call costs ~80 ns). */
const SHORT = 64;

export function putRange(w: HeadWriter, src: Uint8Array, start: number, end: number): void {
  const n = end - start;
  if (n <= 0) return;
  ensure(w, n);
  const out = w.buf;
  let p = w.pos;
  if (n < SHORT) for (let i = start; i < end; i++) out[p++] = src[i]!;
  else out.set(src.subarray(start, end), p);
  w.pos += n;
}

export function putString(w: HeadWriter, s: string): void {
  const n = s.length;
  ensure(w, n);
  if (n < SHORT) {
    const out = w.buf;
    let p = w.pos;
    for (let i = 0; i < n; i++) out[p++] = s.charCodeAt(i);
    w.pos = p;
  } else {
    w.pos += writeLatin1(w.buf, s, w.pos);
  }
}

/** The assembled bytes; the writer lets go of them. */
export function takeWritten(w: HeadWriter): Buffer {
  const out = w.pos === w.buf.length ? w.buf : w.buf.subarray(0, w.pos);
  w.buf = EMPTY;
  w.pos = 0;
  return out;
}

const EMPTY = Buffer.alloc(0);

export const CRLF = '\r\n';

/** Copies runs of consecutive kept field lines in one go. */
export interface Run {
  start: number;
  end: number;
}

export function keepLine(w: HeadWriter, f: Fields, i: number, run: Run): void {
  const s = f.offs[i * STRIDE + LINE_START]!;
  if (run.start !== -1 && run.end === s) {
    run.end = f.offs[i * STRIDE + LINE_END]! + 2;
    return;
  }
  flush(w, f, run);
  run.start = s;
  run.end = f.offs[i * STRIDE + LINE_END]! + 2;
}

export function flush(w: HeadWriter, f: Fields, run: Run): void {
  if (run.start === -1) return;
  putRange(w, f.buf, run.start, run.end);
  run.start = -1;
}

/** Field i with a new value: its name as sent, then `: value`. */
export function replaceLine(w: HeadWriter, f: Fields, i: number, value: string, run: Run): void {
  flush(w, f, run);
  putRange(w, f.buf, f.offs[i * STRIDE + LINE_START]!, f.offs[i * STRIDE + COLON]!);
  putString(w, ': ' + value + CRLF);
}

/** Field i is named in the Connection field (so it is hop-by-hop and not forwarded). */
export function isExtraConnectionToken(f: Fields, i: number, extra: string[] | null): boolean {
  return extra !== null && extra.includes(fieldName(f, i).toLowerCase());
}
