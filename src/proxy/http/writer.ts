// Assembling outgoing heads: one buffer per head, sized by an upper bound and filled in place; field lines the
// proxy does not change are copied from the incoming buffer as raw runs of consecutive lines.
// Imported, not the global: Node's globalThis.Buffer is a getter, which every per-request use would run.
import { Buffer } from 'node:buffer';
import { COLON, LINE_END, LINE_START, STRIDE, fieldName, writeLatin1, type Fields } from './fields.ts';

/**
 * Where a head is assembled: `buf[start, pos)`, with room up to `buf.length`. Small heads are assembled in a slab
 * shared by successive heads (bump allocation, never reused: a taken head keeps its bytes however long a socket
 * holds it), so a head costs one Buffer object, the view takeWritten hands out, instead of an allocUnsafe plus that
 * view. One per engine, used synchronously.
 */
const EMPTY = Buffer.alloc(0);

/** Copies `source[sourceStart, sourceEnd)` into `target` at `targetStart`; always called with ranges that fit. */
export type CopyBytes = (source: Buffer, target: Buffer, targetStart: number, sourceStart: number, sourceEnd: number) => void;

const bufferCopy: CopyBytes = (source, target, targetStart, sourceStart, sourceEnd) => {
  source.copy(target, targetStart, sourceStart, sourceEnd);
};

export interface HeadWriter {
  /** How ranges of 16 bytes and more are copied: Buffer#copy, or a cheaper one the runtime has (runtime/buffer-copy.ts). */
  copy: CopyBytes;
  buf: Buffer;
  /** Where the head being assembled starts in `buf`. */
  start: number;
  pos: number;
}

export function newHeadWriter(copy: CopyBytes = bufferCopy): HeadWriter {
  return { copy, buf: EMPTY, start: 0, pos: 0 };
}

/** The slab size and the largest head taken from it: Node's own Buffer pool sizes, so memory is held as before. */
const SLAB_SIZE = 8 * 1024;
const SLAB_MAX_HEAD = SLAB_SIZE >>> 1;

/** Starts a head of at most about `upperBound` bytes (more still fits, at the cost of a copy). */
export function beginHead(w: HeadWriter, upperBound: number): void {
  if (upperBound > SLAB_MAX_HEAD) {
    w.buf = Buffer.allocUnsafe(upperBound);
    w.start = 0;
    w.pos = 0;
    return;
  }
  // Continue the current slab where the last taken head ended (kept 8-aligned), or start a new one.
  let at = (w.pos + 7) & ~7;
  if (w.buf.length < SLAB_SIZE || at + upperBound > w.buf.length) {
    w.buf = Buffer.allocUnsafeSlow(SLAB_SIZE);
    at = 0;
  }
  w.start = at;
  w.pos = at;
}

function ensure(w: HeadWriter, more: number): void {
  if (w.pos + more <= w.buf.length) return;
  const have = w.pos - w.start;
  const grown = Buffer.allocUnsafe(Math.max(have * 2, have + more, 64));
  w.buf.copy(grown, 0, w.start, w.pos);
  w.buf = grown;
  w.start = 0;
  w.pos = have;
}

/** Below this, a JS loop beats a native call (latin1Write: ~80 ns a call). */
const SHORT = 64;

/**
 * Below this many bytes a JS loop beats a copy call. Measured under callgrind (Node 22): the loop costs ~15
 * instructions a byte, Buffer#copy ~200-400 a call, `set(subarray())` ~600 (subarray makes a Buffer through its
 * species constructor); the runtime's copy skips Buffer#copy's checks on Node (runtime/buffer-copy.ts).
 */
const SHORT_COPY = 16;

export function putRange(w: HeadWriter, src: Buffer, start: number, end: number): void {
  const n = end - start;
  if (n <= 0) return;
  ensure(w, n);
  const out = w.buf;
  let p = w.pos;
  if (n < SHORT_COPY) for (let i = start; i < end; i++) out[p++] = src[i]!;
  else w.copy(src, out, p, start, end);
  w.pos += n;
}

/**
 * All of `src` (pre-encoded lines). `set` of a whole Buffer skips Buffer#copy's argument checks and its dispatch
 * to TypedArray#set for a whole source (~70 instructions a call, callgrind).
 */
export function putBytes(w: HeadWriter, src: Buffer): void {
  const n = src.length;
  ensure(w, n);
  w.buf.set(src, w.pos);
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

/** The assembled bytes; the writer lets go of them (the next head starts after them). */
export function takeWritten(w: HeadWriter): Buffer {
  const buf = w.buf;
  const out = w.start === 0 && w.pos === buf.length ? buf : buf.subarray(w.start, w.pos);
  if (buf.length !== SLAB_SIZE) {
    // A head of its own (or one grown out of the slab): nothing follows it there.
    w.buf = EMPTY;
    w.pos = 0;
  }
  w.start = w.pos;
  return out;
}

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
