// Request heads from clients (RFC 9112 section 3): the request line, Host, framing (Content-Length or chunked,
// never both), Expect and Upgrade. Strict: anything a backend could read differently is refused with a status.
import { TOKEN } from './chars.ts';
import { F, STRIDE, VALUE_END, VALUE_START, latin1, type Fields } from './fields.ts';
import {
  CHUNKED,
  NONE,
  connectionInfo,
  contentLength,
  listTokens,
  parseFields,
  value,
  type ConnectionInfo,
  type Framing,
  withCrlfCrlf,
  type HeadLimits,
} from './parser.ts';

/** Why a request was refused: the status the client gets and a short reason for logs and the body. */
export interface HeadError {
  kind: 'error';
  status: 400 | 405 | 413 | 414 | 417 | 431 | 501 | 505;
  reason: string;
}

export interface RequestHead {
  kind: 'request';
  method: string;
  /**
   * The target when it was rewritten (an absolute-form target reduced to its path); null when the request line's
   * target is used as is (read it with requestTarget()).
   */
  target: string | null;
  /** The request line in fields.buf: `METHOD SP target SP` is [lineStart, versionStart). */
  lineStart: number;
  targetStart: number;
  targetEnd: number;
  versionStart: number;
  /** 0 or 1 (HTTP/1.x, x > 1 is treated as 1). */
  minor: number;
  fields: Fields;
  /** Host from an absolute-form target (lowercased, without port, as Perlbal); null otherwise. */
  host: string | null;
  /** Index of the Host field, or -1. */
  hostIndex: number;
  hostFromTarget: boolean;
  framing: Framing;
  connection: ConnectionInfo;
  expectContinue: boolean;
  /** Upgrade protocol list when the client asked for one (HTTP/1.1 with `Connection: upgrade`). */
  upgrade: string | null;
  /** The request has fields the forwarding rules rewrite in place (XFF, X-Host, X-Real-IP, ...). */
  hasForwardingFields: boolean;
  /** Bytes of the head on the wire, CRLFs included. */
  size: number;
}

const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?$/;

/** Bytes a Host value may contain (reg-name, IP literals, port); the structure is checked only if one is odd. */
const HOST_BYTES = new Uint8Array(256);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:") {
  HOST_BYTES[ch.charCodeAt(0)] = 1;
}

/** Common methods without allocating a string for them. */
function methodName(buf: Buffer, start: number, end: number): string {
  const n = end - start;
  const a = buf[start];
  if (n === 3 && a === 0x47 && buf[start + 1] === 0x45 && buf[start + 2] === 0x54) return 'GET';
  if (n === 4 && a === 0x50 && buf[start + 1] === 0x4f && buf[start + 2] === 0x53 && buf[start + 3] === 0x54) return 'POST';
  if (n === 4 && a === 0x48 && buf[start + 1] === 0x45 && buf[start + 2] === 0x41 && buf[start + 3] === 0x44) return 'HEAD';
  return latin1(buf, start, end);
}

/** The request target as the client sent it (or as rewritten from absolute-form). */
export function requestTarget(req: RequestHead): string {
  return req.target ?? latin1(req.fields.buf, req.targetStart, req.targetEnd);
}

function validHost(f: Fields, i: number): boolean {
  const s = f.offs[i * STRIDE + VALUE_START]!;
  const e = f.offs[i * STRIDE + VALUE_END]!;
  for (let k = s; k < e; k++) if (HOST_BYTES[f.buf[k]!] !== 1) return f.buf[s] === 0x5b && HOST_RE.test(latin1(f.buf, s, e));
  return true;
}
const ABSOLUTE_RE = /^https?:\/\/([^/?#]*)([^#]*)/i;

const fail = (status: HeadError['status'], reason: string): HeadError => ({ kind: 'error', status, reason });

/**
 * Parses a complete request head: buf[start, end) where `end` is the offset of the final CRLFCRLF.
 * `fields`: the record to put the head's fields in (a connection's own, reused from request to request: its previous
 * request must be done with); a new record when null.
 */
export function parseRequestHead(
  buf: Buffer,
  start: number,
  end: number,
  limits: HeadLimits,
  fields: Fields | null = null,
): RequestHead | HeadError {
  const size = end + 4 - start;
  if (size > limits.maxHeaderSize) {
    // The request line alone may be what is too large (a 70 kB URL arriving in one read): that is a 414.
    const lineEnd = buf.indexOf(0x0d, start);
    const urlTooLong = lineEnd === -1 || lineEnd >= end || lineEnd - start > limits.maxUrlLength + 16;
    return urlTooLong ? fail(414, 'request target too long') : fail(431, 'request header block too large');
  }
  if (end >= buf.length || buf[end] !== 0x0d) return parseRequestHead(withCrlfCrlf(buf, start, end), 0, end - start, limits, fields);
  // method SP request-target SP HTTP-version CRLF, single spaces, validated as we split. The CR at `end` stops each
  // loop at the latest, so none checks a bound, and the line is read once: its first CR is where a loop stops on one.
  let i = start;
  let c = buf[i]!;
  while (TOKEN[c] === 1) c = buf[++i]!;
  if (i === start || c !== 0x20) return fail(400, i === start ? 'malformed request line' : 'bad method');
  const method = methodName(buf, start, i);
  const ts = ++i;
  c = buf[i]!;
  while (c > 0x20 && c !== 0x7f) c = buf[++i]!;
  if (i === ts || c !== 0x20) {
    return fail(400, c !== 0x20 && c !== 0x0d ? 'control character in the request line' : 'malformed request line');
  }
  if (i - ts > limits.maxUrlLength) return fail(414, 'request target too long');
  const te0 = i;
  const vs = i + 1;
  const lineEnd = vs + 8;
  if (
    lineEnd > end ||
    buf[lineEnd] !== 0x0d ||
    buf[vs] !== 0x48 || // H
    buf[vs + 1] !== 0x54 || // T
    buf[vs + 2] !== 0x54 || // T
    buf[vs + 3] !== 0x50 || // P
    buf[vs + 4] !== 0x2f || // /
    buf[vs + 6] !== 0x2e // .
  ) {
    return fail(400, 'malformed HTTP version');
  }
  // A CR among the digits is caught here (the line would end before lineEnd).
  const major = buf[vs + 5]! - 0x30;
  const minorDigit = buf[vs + 7]! - 0x30;
  if (major < 0 || major > 9 || minorDigit < 0 || minorDigit > 9) return fail(400, 'malformed HTTP version');
  if (major !== 1) return fail(505, 'HTTP version not supported');
  const minor = minorDigit === 0 ? 0 : 1;
  if (lineEnd < end && buf[lineEnd + 1] !== 0x0a) return fail(400, 'bare CR in the request line');

  const fieldsOrError = parseFields(buf, lineEnd + 2, end, limits.maxHeaderCount, fields);
  if (typeof fieldsOrError === 'string') {
    return fail(fieldsOrError === 'too many header fields' ? 431 : 400, fieldsOrError);
  }
  const f = fieldsOrError;

  let hostIndex = -1;
  let contentLen = -1;
  let clSeen = false;
  let te: string[] | null = null;
  let expect: string | null = null;
  let upgradeValue: string | null = null;
  let hasForwardingFields = false;
  for (let k = 0; k < f.count; k++) {
    switch (f.codes[k]) {
      case F.HOST:
        if (hostIndex !== -1) return fail(400, 'more than one Host header');
        hostIndex = k;
        break;
      case F.CONTENT_LENGTH:
        if (clSeen) return fail(400, 'more than one Content-Length header');
        clSeen = true;
        contentLen = contentLength(f, k);
        if (contentLen === -1) return fail(400, 'invalid Content-Length');
        break;
      case F.TRANSFER_ENCODING:
        (te ??= []).push(...listTokens(value(f, k)));
        break;
      case F.EXPECT:
        if (expect !== null) return fail(417, 'more than one Expect header');
        expect = value(f, k).toLowerCase();
        break;
      case F.UPGRADE:
        upgradeValue = upgradeValue === null ? value(f, k) : `${upgradeValue}, ${value(f, k)}`;
        break;
      case F.X_FORWARDED_FOR:
      case F.X_HOST:
      case F.X_FORWARDED_HOST:
      case F.X_REAL_IP:
      case F.X_FORWARDED_PROTO:
        hasForwardingFields = true;
        break;
    }
  }

  if (hostIndex !== -1 && !validHost(f, hostIndex)) return fail(400, 'invalid Host header');
  let host: string | null = null;
  let target: string | null = null;
  let hostFromTarget = false;
  const first = buf[ts];
  if (first === 0x2f /* / */) {
    // origin-form
  } else if (first === 0x2a /* * */ && te0 === ts + 1) {
    if (method !== 'OPTIONS') return fail(400, 'asterisk-form is only valid for OPTIONS');
  } else if (method === 'CONNECT') {
    return fail(405, 'CONNECT is not supported by a reverse proxy');
  } else {
    const m = ABSOLUTE_RE.exec(latin1(buf, ts, te0));
    if (m === null) return fail(400, 'unsupported request target form');
    const authority = m[1]!;
    if (authority.length === 0 || authority.indexOf('@') !== -1 || !HOST_RE.test(authority)) {
      return fail(400, 'invalid authority in the request target');
    }
    // RFC 9112 3.2.2: the target's authority replaces any Host field. Like Perlbal, the host is lowercased and
    // the port dropped (backends see the same Host as behind Perlbal).
    const colon = authority.lastIndexOf(':');
    host = (colon > authority.lastIndexOf(']') ? authority.slice(0, colon) : authority).toLowerCase();
    hostFromTarget = true;
    target = m[2]!.length === 0 ? '/' : m[2]!;
    if (target.charCodeAt(0) !== 0x2f) target = `/${target}`;
  }
  if (minor === 1 && hostIndex === -1 && !hostFromTarget) return fail(400, 'HTTP/1.1 request without Host');

  let framing: Framing = NONE;
  if (te !== null) {
    // RFC 9112 6.1: TE in HTTP/1.0 means faulty framing; CL+TE is how smuggling starts. nginx answers 400/501.
    if (minor === 0) return fail(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (clSeen) return fail(400, 'both Content-Length and Transfer-Encoding');
    if (te.length !== 1 || te[0] !== 'chunked') return fail(501, 'unsupported Transfer-Encoding');
    framing = CHUNKED;
  } else if (contentLen > 0) {
    framing = { kind: 'length', length: contentLen };
  }

  let expectContinue = false;
  if (expect !== null && minor === 1) {
    if (expect !== '100-continue') return fail(417, 'unsupported expectation');
    expectContinue = true;
  }

  const connection = connectionInfo(f);
  const upgrade = minor === 1 && connection.upgrade && upgradeValue !== null ? upgradeValue : null;
  return {
    kind: 'request',
    method,
    target,
    lineStart: start,
    targetStart: ts,
    targetEnd: te0,
    versionStart: vs,
    minor,
    fields: f,
    host,
    hostIndex,
    hostFromTarget,
    framing,
    connection,
    expectContinue,
    upgrade,
    hasForwardingFields,
    size,
  };
}
