// Reads one health-check answer on a connection the checker keeps for the next check (health_check_reuse = on):
// the status decides the check; the framing (Content-Length, chunked, none) says where the answer ends, so the
// connection can carry the next check. Pure: bytes in, state out. An answer this cannot frame (read until close,
// bare-LF heads, bytes after the end) makes the connection unfit for reuse: the checker closes it, which is always
// correct, only a connect more.
import { newBodyReader, readBody, type BodyReader } from '../http/body.ts';
import { newHeadReader, resetHeadReader, scanHead, type HeadReader } from '../http/head-reader.ts';
import { parseResponseHead } from '../http/response.ts';
import type { HeadLimits } from '../http/parser.ts';

const CHECK_HEAD_LIMITS: HeadLimits = { maxHeaderSize: 16 * 1024, maxHeaderCount: 100, maxUrlLength: 16 * 1024 };

export interface CheckResponseReader {
  method: string;
  head: HeadReader;
  /** The answer's status once its head is read; -1 before; -2 when it is not an HTTP answer. */
  status: number;
  body: BodyReader | null;
  /** The answer is over (its body read, or it was not HTTP). */
  complete: boolean;
  /** Once complete: the connection may carry the next check. */
  reusable: boolean;
}

export function newCheckResponseReader(method: string): CheckResponseReader {
  return { method, head: newHeadReader(), status: -1, body: null, complete: false, reusable: false };
}

/** Ready for the next answer on the same connection. */
export function resetCheckResponse(r: CheckResponseReader): void {
  resetHeadReader(r.head);
  r.status = -1;
  r.body = null;
  r.complete = false;
  r.reusable = false;
}

function unfit(r: CheckResponseReader, status: number): void {
  r.status = status;
  r.complete = true;
  r.reusable = false;
  resetHeadReader(r.head);
}

/** Feeds chunk[0, n) of the answer. Read `status`, `complete` and `reusable` after. */
export function feedCheckResponse(r: CheckResponseReader, chunk: Buffer, n: number): void {
  if (r.complete) {
    if (n > 0) r.reusable = false; // bytes nobody asked for: do not guess where the next answer starts
    return;
  }
  const data = n === chunk.length ? chunk : chunk.subarray(0, n);
  if (r.body !== null) {
    readRest(r, data, 0);
    return;
  }
  const scan = scanHead(r.head, data, 0, CHECK_HEAD_LIMITS.maxHeaderSize, CHECK_HEAD_LIMITS.maxUrlLength, false, false);
  if (scan.kind === 'incomplete') return;
  if (scan.kind !== 'head') {
    unfit(r, -2);
    return;
  }
  const head = parseResponseHead(scan.buf, scan.start, scan.end, r.method, CHECK_HEAD_LIMITS);
  if (head.kind === 'error') {
    unfit(r, -2);
    return;
  }
  r.status = head.status;
  if (head.status < 200) {
    // An interim answer (100 Continue, 103) to a check is odd enough not to follow: judge by it, then close.
    unfit(r, head.status);
    return;
  }
  const framing = head.framing.kind;
  if (framing === 'close' || head.connection.close || (head.minor === 0 && !head.connection.keepAlive) || head.conflictingLength) {
    unfit(r, head.status);
    return;
  }
  r.body = newBodyReader(head.framing);
  r.reusable = true;
  readRest(r, scan.buf, scan.end + 4);
}

function readRest(r: CheckResponseReader, buf: Buffer, start: number): void {
  const body = r.body!;
  const stop = readBody(body, buf, start, buf.length, null);
  if (stop === -1) {
    unfit(r, r.status);
    return;
  }
  if (!body.done) return;
  r.complete = true;
  if (stop !== buf.length) r.reusable = false;
}
