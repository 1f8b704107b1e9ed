// Incremental collection of a message head from socket chunks: finds the CRLFCRLF that ends it, enforces the size
// caps before the head is complete (so a slow or endless head costs bounded memory and linear time), and hands
// back the head text plus the offset where the body (or the next message) starts.

// Imported, not the global: Node's globalThis.Buffer is a getter, which every per-request use would run.
import { Buffer } from 'node:buffer';

export interface HeadReader {
  /** Bytes of an incomplete head carried over from earlier chunks: `pending[0, pendingLength)`. */
  pending: Buffer | null;
  pendingLength: number;
}

export type HeadScan =
  | { kind: 'incomplete' }
  /** The head is buf[start, end) plus the CRLFCRLF at `end`; what follows starts at end + 4. */
  | { kind: 'head'; buf: Buffer; start: number; end: number }
  /**
   * Only when `lfEnds`: a complete head that ends with a bare-LF empty line (or uses bare LF before its CRLFCRLF)
   * starts at buf[start]; lenient.ts finds its end and normalises it.
   */
  | { kind: 'head-lf'; buf: Buffer; start: number }
  | { kind: 'too-large'; urlTooLong: boolean }
  | { kind: 'bare-lf' };

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const INCOMPLETE: HeadScan = { kind: 'incomplete' };
const BARE_LF: HeadScan = { kind: 'bare-lf' };

export function newHeadReader(): HeadReader {
  return { pending: null, pendingLength: 0 };
}

export function resetHeadReader(reader: HeadReader): void {
  reader.pending = null;
  reader.pendingLength = 0;
}

/**
 * The offset of the first CRLFCRLF in buf[from, end), or -1: Buffer#indexOf's answer, found in JavaScript because a
 * native search costs more than the scan for a head of a few hundred bytes (bench/proxy/instr.ts). It reads every
 * fourth byte: any 4-byte window holds exactly one of them. A CR there can only be byte 0 or 2 of a CRLFCRLF, an
 * LF byte 1 or 3, so two windows are tried per hit, the left one first; and a window found at an earlier probe
 * lies wholly before the later probes' windows, so the first occurrence is the one found.
 */
export function findCrlfCrlf(buf: Uint8Array, from: number, end: number): number {
  for (let i = from + 3; i < end; i += 4) {
    const c = buf[i]!;
    if (c === 0x0a) {
      // i - 3 >= from always (i starts at from + 3).
      if (buf[i - 3] === 0x0d && buf[i - 2] === 0x0a && buf[i - 1] === 0x0d) return i - 3;
      if (i + 2 < end && buf[i - 1] === 0x0d && buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i - 1;
    } else if (c === 0x0d) {
      if (i + 1 < end && buf[i - 2] === 0x0d && buf[i - 1] === 0x0a && buf[i + 1] === 0x0a) return i - 2;
      if (i + 3 < end && buf[i + 1] === 0x0a && buf[i + 2] === 0x0d && buf[i + 3] === 0x0a) return i;
    }
  }
  return -1;
}

/** A line feed without a CR before it, in buf[from, end). */
function hasBareLf(buf: Buffer, from: number, end: number): boolean {
  let i = buf.indexOf(0x0a, from);
  while (i !== -1 && i < end) {
    if (i === 0 || buf[i - 1] !== 0x0d) return true;
    i = buf.indexOf(0x0a, i + 1);
  }
  return false;
}

/** Empty lines (CRLF or bare LF) a backend may send before its status line; more than this is not a response. */
const MAX_LEADING_EMPTY_LINES = 8;

/** The offset after at most MAX_LEADING_EMPTY_LINES empty lines (CRLF or LF) at buf[from]. */
export function skipEmptyLines(buf: Buffer, from: number, end: number): number {
  let i = from;
  for (let n = 0; n < MAX_LEADING_EMPTY_LINES && i < end; n++) {
    if (buf[i] === 0x0a) i += 1;
    else if (buf[i] === 0x0d && i + 1 < end && buf[i + 1] === 0x0a) i += 2;
    else break;
  }
  return i;
}

/**
 * The offset of the LF that ends the last line of a head whose lines may end in bare LF: the first LF in
 * buf[from, end) followed by an empty line (LF or CRLF). -1 while there is none (yet).
 */
export function findLfHeadEnd(buf: Buffer, from: number, end: number): number {
  let i = buf.indexOf(0x0a, from);
  while (i !== -1 && i + 1 < end) {
    const next = buf[i + 1];
    if (next === 0x0a) return i;
    if (next === 0x0d && i + 2 < end && buf[i + 2] === 0x0a) return i;
    i = buf.indexOf(0x0a, i + 1);
  }
  return -1;
}

/** Where the body starts after the head whose last line ends with the LF at `lfAt` (see findLfHeadEnd). */
export function bodyStartAfter(buf: Buffer, lfAt: number): number {
  return buf[lfAt + 1] === 0x0a ? lfAt + 2 : lfAt + 3;
}

function tooLarge(buf: Buffer, from: number, end: number, maxUrlLength: number): HeadScan {
  const lineEnd = buf.indexOf(0x0d, from);
  return { kind: 'too-large', urlTooLong: lineEnd === -1 || lineEnd >= end || lineEnd - from > maxUrlLength + 16 };
}

/**
 * Feeds `chunk[start..]`. When the head is complete, returns where it is: in `chunk` itself on the fast path, or
 * in the joined carry-over buffer when it spanned chunks (the rest of the data follows it there too).
 * `skipLeadingCrlf`: a request may be preceded by empty lines (RFC 9112 2.2), e.g. a stray CRLF after a body.
 * `lfEnds` (backend responses only): bare LF line ends are read as HAProxy and nginx read them, reporting
 * 'head-lf' instead of 'bare-lf'. Requests never get this: a bare LF there is a smuggling vector.
 */
export function scanHead(
  reader: HeadReader,
  chunk: Buffer,
  start: number,
  maxHeaderSize: number,
  maxUrlLength: number,
  skipLeadingCrlf: boolean,
  lfEnds = false,
): HeadScan {
  if (reader.pending === null) {
    let from = start;
    if (skipLeadingCrlf) {
      for (let n = 0; n < 4 && from + 1 < chunk.length && chunk[from] === 0x0d && chunk[from + 1] === 0x0a; n++) {
        from += 2;
      }
    }
    const end = findCrlfCrlf(chunk, from, chunk.length);
    if (end !== -1) return { kind: 'head', buf: chunk, start: from, end };
    const have = chunk.length - from;
    if (have === 0) return INCOMPLETE;
    if (hasBareLf(chunk, from, chunk.length)) {
      if (!lfEnds) return BARE_LF;
      if (findLfHeadEnd(chunk, skipEmptyLines(chunk, from, chunk.length), chunk.length) !== -1) {
        return { kind: 'head-lf', buf: chunk, start: from };
      }
    }
    if (have > maxHeaderSize) return tooLarge(chunk, from, chunk.length, maxUrlLength);
    const pending = Buffer.allocUnsafe(Math.max(1024, Math.min(have * 2, maxHeaderSize + 4)));
    chunk.copy(pending, 0, from);
    reader.pending = pending;
    reader.pendingLength = have;
    return INCOMPLETE;
  }

  // Slow path: the head spans chunks. Append into a doubling buffer; scan only the new bytes.
  const add = chunk.length - start;
  const oldLength = reader.pendingLength;
  const total = oldLength + add;
  let pending = reader.pending;
  if (total > pending.length) {
    const grown = Buffer.allocUnsafe(Math.min(Math.max(total, pending.length * 2), maxHeaderSize + 4 + add));
    pending.copy(grown, 0, 0, oldLength);
    pending = grown;
    reader.pending = grown;
  }
  chunk.copy(pending, oldLength, start);
  reader.pendingLength = total;
  const searchFrom = oldLength > 3 ? oldLength - 3 : 0;
  const end = pending.indexOf(CRLFCRLF, searchFrom);
  if (end !== -1 && end + 4 <= total) {
    resetHeadReader(reader);
    return { kind: 'head', buf: pending.subarray(0, total), start: 0, end };
  }
  if (lfEnds) {
    // Only the new bytes (and the two before them) can complete an empty line; leading empty lines are skipped
    // from the start, which is bounded by MAX_LEADING_EMPTY_LINES.
    const from = Math.max(skipEmptyLines(pending, 0, total), oldLength > 2 ? oldLength - 2 : 0);
    if (findLfHeadEnd(pending, from, total) !== -1) {
      resetHeadReader(reader);
      return { kind: 'head-lf', buf: pending.subarray(0, total), start: 0 };
    }
  } else if (hasBareLf(pending, oldLength > 0 ? oldLength - 1 : 0, total)) {
    return BARE_LF;
  }
  if (total > maxHeaderSize) return tooLarge(pending, 0, total, maxUrlLength);
  return INCOMPLETE;
}
