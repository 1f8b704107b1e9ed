// Response heads from backends (RFC 9112 section 4 and 6.3): the status line (a missing reason phrase is
// accepted), framing by status, method, Transfer-Encoding and Content-Length, and Keep-Alive hints.
import { FIELD_VALUE } from './chars.ts';
import { F, latin1, type Fields } from './fields.ts';
import {
  CHUNKED,
  CLOSE,
  NONE,
  connectionInfo,
  contentLength,
  listTokens,
  parseFields,
  value,
  withCrlfCrlf,
  type ConnectionInfo,
  type Framing,
  type HeadLimits,
} from './parser.ts';

const DIGITS_RE = /^[0-9]{1,15}$/;

/**
 * A backend's response head. Its `fields.buf` may be the engine's shared read buffer: read fields (and the lazy
 * reason) only while handling the read that carried the head; the parsed values stay valid.
 */
export interface ResponseHead {
  kind: 'response';
  minor: number;
  status: number;
  /** The reason phrase, decoded only when the status line is not relayed as is (see responseReason()). */
  reason: string;
  /** The status line can be relayed as is (`HTTP/1.1 NNN reason`). */
  statusLineReusable: boolean;
  lineStart: number;
  lineEnd: number;
  fields: Fields;
  framing: Framing;
  connection: ConnectionInfo;
  /** A Content-Length that was dropped because Transfer-Encoding overrides it; the connection is then not reused. */
  conflictingLength: boolean;
  /** Content-Length came more than once or as a list of equal values: that value, which the client gets once; else -1. */
  repeatedLength: number;
  /** `Keep-Alive: timeout=N` from the backend, in ms, or -1. */
  keepAliveTimeoutMs: number;
  /** `Keep-Alive: max=N` from the backend, or -1. */
  keepAliveMax: number;
  size: number;
  /** Where the body (or the next message) starts in `fields.buf`. */
  bodyStart: number;
  /** The head was rewritten into strict form (lenient.ts): its lines did not all end in CRLF, or similar. */
  normalised: boolean;
}

/** The backend's reason phrase ('' if it sent none). */
export function responseReason(res: ResponseHead): string {
  if (!res.statusLineReusable) return res.reason;
  return latin1(res.fields.buf, res.lineStart + 13, res.lineEnd);
}

export interface ResponseError {
  kind: 'error';
  reason: string;
}

/** Module-level rather than a closure in parseResponseHead: a closure would be allocated for every response. */
function bad(reason: string): ResponseError {
  return { kind: 'error', reason };
}

function parseKeepAlive(v: string, out: { timeoutMs: number; max: number }): void {
  for (const part of v.split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    const n = Number(part.slice(eq + 1).trim());
    if (!Number.isFinite(n) || n < 0) continue;
    if (key === 'timeout') out.timeoutMs = n * 1000;
    else if (key === 'max') out.max = n;
  }
}

/**
 * Parses a complete response head, buf[start, end) with `end` the offset of the final CRLFCRLF, for a request
 * with `method`. Lenient only where it cannot change framing: a missing reason phrase is accepted (Perlbal hangs).
 * `fields`: where to put the head's fields (reused scratch: the proxy reads them only while handling the read that
 * carried the head, which is already all the shared read buffer allows); a new record when null.
 */
export function parseResponseHead(
  buf: Buffer,
  start: number,
  end: number,
  method: string,
  limits: HeadLimits,
  fields: Fields | null = null,
): ResponseHead | ResponseError {
  const size = end + 4 - start;
  if (size > limits.maxHeaderSize) return bad('response header block too large');
  if (end >= buf.length || buf[end] !== 0x0d) return parseResponseHead(withCrlfCrlf(buf, start, end), 0, end - start, method, limits, fields);
  // The line's end, found with its bytes checked (the CR at `end` stops the loop at the latest): when all before the
  // first CR may stand in a status line (the usual case), the reason phrase needs no second look below.
  let lineEnd = start;
  let c = buf[lineEnd]!;
  while (FIELD_VALUE[c] === 1) c = buf[++lineEnd]!;
  const clean = c === 0x0d;
  if (!clean) while (lineEnd < end && buf[lineEnd] !== 0x0d) lineEnd++;
  if (lineEnd < end && buf[lineEnd + 1] !== 0x0a) return bad('bare CR in the status line');
  // HTTP/1.x SP 3DIGIT [SP reason]
  const s = start;
  if (
    lineEnd - s < 12 ||
    buf[s] !== 0x48 ||
    buf[s + 1] !== 0x54 ||
    buf[s + 2] !== 0x54 ||
    buf[s + 3] !== 0x50 ||
    buf[s + 4] !== 0x2f ||
    buf[s + 5] !== 0x31 ||
    buf[s + 6] !== 0x2e ||
    buf[s + 8] !== 0x20
  ) {
    return bad('malformed status line');
  }
  const minorDigit = buf[s + 7]! - 0x30;
  if (minorDigit < 0 || minorDigit > 9) return bad('malformed status line');
  const d1 = buf[s + 9]! - 0x30;
  const d2 = buf[s + 10]! - 0x30;
  const d3 = buf[s + 11]! - 0x30;
  if (d1 < 1 || d1 > 5 || d2 < 0 || d2 > 9 || d3 < 0 || d3 > 9) return bad('malformed status code');
  if (lineEnd > s + 12 && buf[s + 12] !== 0x20) return bad('malformed status line');
  if (!clean) for (let i = s + 13; i < lineEnd; i++) if (FIELD_VALUE[buf[i]!] !== 1) return bad('control character in the status line');
  const status = d1 * 100 + d2 * 10 + d3;
  const minor = minorDigit === 0 ? 0 : 1;
  const reusable = minor === 1 && lineEnd > s + 13;
  // The reason phrase is only decoded when the status line cannot be relayed as is.
  const reason = reusable || lineEnd <= s + 13 ? '' : latin1(buf, s + 13, lineEnd);

  const fieldsOrError = parseFields(buf, lineEnd + 2, end, limits.maxHeaderCount, fields);
  if (typeof fieldsOrError === 'string') return bad(fieldsOrError);
  const f = fieldsOrError;

  let contentLen = -1;
  let repeated = false;
  let te: string[] | null = null;
  // Only a head with a Keep-Alive field gets the record (no object per response otherwise).
  let ka: { timeoutMs: number; max: number } | null = null;
  for (let i = 0; i < f.count; i++) {
    const code = f.codes[i];
    if (code === F.CONTENT_LENGTH) {
      let n = contentLength(f, i);
      if (n === -1 || contentLen !== -1) repeated = true;
      if (n === -1) {
        // Identical repeats as a list are tolerated from backends (RFC 9110 8.6); differing ones are not.
        for (const part of value(f, i).split(',')) {
          const t = part.trim();
          if (!DIGITS_RE.test(t)) return bad('invalid Content-Length');
          if (n !== -1 && n !== Number(t)) return bad('differing Content-Length values');
          n = Number(t);
        }
      }
      if (contentLen !== -1 && contentLen !== n) return bad('differing Content-Length values');
      contentLen = n;
    } else if (code === F.TRANSFER_ENCODING) {
      (te ??= []).push(...listTokens(value(f, i)));
    } else if (code === F.KEEP_ALIVE) {
      parseKeepAlive(value(f, i), (ka ??= { timeoutMs: -1, max: -1 }));
    }
  }

  let framing: Framing;
  let conflictingLength = false;
  if (method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304) {
    framing = NONE;
  } else if (te !== null) {
    // RFC 9112 6.3: TE overrides CL; a chunked final coding frames the body, anything else reads to close.
    conflictingLength = contentLen !== -1;
    framing = te[te.length - 1] === 'chunked' ? CHUNKED : CLOSE;
  } else if (contentLen >= 0) {
    framing = contentLen === 0 ? NONE : { kind: 'length', length: contentLen };
  } else {
    framing = CLOSE;
  }
  return {
    kind: 'response',
    minor,
    status,
    reason,
    statusLineReusable: reusable,
    lineStart: s,
    lineEnd,
    fields: f,
    framing,
    connection: connectionInfo(f),
    conflictingLength,
    repeatedLength: repeated ? contentLen : -1,
    keepAliveTimeoutMs: ka === null ? -1 : ka.timeoutMs,
    keepAliveMax: ka === null ? -1 : ka.max,
    size,
    bodyStart: end + 4,
    normalised: false,
  };
}
