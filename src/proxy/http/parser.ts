// Strict HTTP/1.1 message-head parsing (RFC 9112), for requests from clients and responses from backends.
// Pure: bytes in, a parsed head or a refusal out. Works on the bytes as received (no decoding of the head);
// fields are kept as offsets (fields.ts). Framing (Content-Length / chunked) is decided here, once, so the proxy
// and the backend can never read a message's length differently.
import { FIELD_VALUE, TOKEN } from './chars.ts';
import {
  F,
  STRIDE,
  VALUE_END,
  VALUE_START,
  latin1,
  nameCode,
  type FieldCode,
  type Fields,
} from './fields.ts';

export type { Fields } from './fields.ts';

export interface HeadLimits {
  /** Whole head (request line + fields + CRLFs), bytes. Over it: 431 (requests) / 502 (responses). */
  maxHeaderSize: number;
  maxHeaderCount: number;
  /** Request target length, bytes. Over it: 414. */
  maxUrlLength: number;
}

/** Why a request was refused: the status the client gets and a short reason for logs and the body. */
export interface HeadError {
  kind: 'error';
  status: 400 | 405 | 413 | 414 | 417 | 431 | 501 | 505;
  reason: string;
}

/** Framing of a message body, decided from the head. */
export type Framing =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  | { kind: 'close' };

const NONE: Framing = { kind: 'none' };
const CHUNKED: Framing = { kind: 'chunked' };
const CLOSE: Framing = { kind: 'close' };

export interface ConnectionInfo {
  close: boolean;
  keepAlive: boolean;
  upgrade: boolean;
  /** Other tokens listed in Connection (lowercased): hop-by-hop fields to drop when forwarding. */
  extra: string[] | null;
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
  /** `Keep-Alive: timeout=N` from the backend, in ms, or -1. */
  keepAliveTimeoutMs: number;
  /** `Keep-Alive: max=N` from the backend, or -1. */
  keepAliveMax: number;
  size: number;
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
const DIGITS_RE = /^[0-9]{1,15}$/;

const fail = (status: HeadError['status'], reason: string): HeadError => ({ kind: 'error', status, reason });

/**
 * Splits and validates the field lines in buf[pos, end) (lines separated by CRLF; `end` is where the final
 * CRLFCRLF starts) in one pass. Returns an error message instead of Fields when a line is not a valid field.
 */
function parseFields(buf: Buffer, pos: number, end: number, maxCount: number): Fields | string {
  const offs: number[] = [];
  const codes: FieldCode[] = [];
  let count = 0;
  while (pos < end) {
    let i = pos;
    let c = buf[i]!;
    while (TOKEN[c] === 1 && ++i < end) c = buf[i]!;
    if (i === pos) {
      if (c === 0x20 || c === 0x09) return 'obs-fold (line folding) is not allowed';
      return c === 0x3a ? 'empty header name' : 'bad header name';
    }
    if (i === end || c !== 0x3a) {
      if (c === 0x20 || c === 0x09) return 'whitespace before the colon in a header';
      return c === 0x0d || c === 0x0a || i === end ? 'header line without a colon' : 'bad header name';
    }
    const colon = i++;
    while (i < end && ((c = buf[i]!) === 0x20 || c === 0x09)) i++;
    const vs = i;
    let ve = i;
    while (i < end) {
      c = buf[i]!;
      if (c === 0x0d) break;
      if (FIELD_VALUE[c] !== 1) return c === 0x0a ? 'bare LF in a header line' : 'control character or NUL in a header value';
      i++;
      if (c !== 0x20 && c !== 0x09) ve = i;
    }
    if (i < end && buf[i + 1] !== 0x0a) return 'bare CR in a header line';
    if (count >= maxCount) return 'too many header fields';
    offs.push(pos, colon, vs, ve, i);
    codes.push(nameCode(buf, pos, colon));
    count++;
    pos = i + 2;
  }
  return { buf, count, offs, codes };
}

const value = (f: Fields, i: number): string => latin1(f.buf, f.offs[i * STRIDE + VALUE_START]!, f.offs[i * STRIDE + VALUE_END]!);

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

function connectionInfo(f: Fields): ConnectionInfo {
  const info: ConnectionInfo = { close: false, keepAlive: false, upgrade: false, extra: null };
  for (let i = 0; i < f.count; i++) {
    if (f.codes[i] !== F.CONNECTION) continue;
    // The common single-token values without decoding.
    if (valueIs(f, i, 'keep-alive')) {
      info.keepAlive = true;
      continue;
    }
    if (valueIs(f, i, 'close')) {
      info.close = true;
      continue;
    }
    for (const token of listTokens(value(f, i))) {
      if (token === 'close') info.close = true;
      else if (token === 'keep-alive') info.keepAlive = true;
      else if (token === 'upgrade') info.upgrade = true;
      else (info.extra ??= []).push(token);
    }
  }
  return info;
}

/** A Content-Length value (1*DIGIT, at most 15 digits) from the bytes of field i, or -1. */
function contentLength(f: Fields, i: number): number {
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

/**
 * Parses a complete request head: buf[start, end) where `end` is the offset of the final CRLFCRLF.
 */
export function parseRequestHead(buf: Buffer, start: number, end: number, limits: HeadLimits): RequestHead | HeadError {
  const size = end + 4 - start;
  if (size > limits.maxHeaderSize) return fail(431, 'request header block too large');
  let lineEnd = start;
  while (lineEnd < end && buf[lineEnd] !== 0x0d) lineEnd++;
  // method SP request-target SP HTTP-version, single spaces, validated as we split.
  let i = start;
  while (i < lineEnd && TOKEN[buf[i]!] === 1) i++;
  if (i === start || i === lineEnd || buf[i] !== 0x20) return fail(400, i === start ? 'malformed request line' : 'bad method');
  const method = methodName(buf, start, i);
  const ts = ++i;
  let c = 0;
  while (i < lineEnd && (c = buf[i]!) > 0x20 && c !== 0x7f) i++;
  if (i === ts || i === lineEnd || c !== 0x20) {
    return fail(400, i < lineEnd && c !== 0x20 ? 'control character in the request line' : 'malformed request line');
  }
  if (i - ts > limits.maxUrlLength) return fail(414, 'request target too long');
  const te0 = i;
  const vs = i + 1;
  if (
    lineEnd - vs !== 8 ||
    buf[vs] !== 0x48 || // H
    buf[vs + 1] !== 0x54 || // T
    buf[vs + 2] !== 0x54 || // T
    buf[vs + 3] !== 0x50 || // P
    buf[vs + 4] !== 0x2f || // /
    buf[vs + 6] !== 0x2e // .
  ) {
    return fail(400, 'malformed HTTP version');
  }
  const major = buf[vs + 5]! - 0x30;
  const minorDigit = buf[vs + 7]! - 0x30;
  if (major < 0 || major > 9 || minorDigit < 0 || minorDigit > 9) return fail(400, 'malformed HTTP version');
  if (major !== 1) return fail(505, 'HTTP version not supported');
  const minor = minorDigit === 0 ? 0 : 1;
  if (lineEnd < end && buf[lineEnd + 1] !== 0x0a) return fail(400, 'bare CR in the request line');

  const fieldsOrError = parseFields(buf, lineEnd + 2, end, limits.maxHeaderCount);
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
 */
export function parseResponseHead(
  buf: Buffer,
  start: number,
  end: number,
  method: string,
  limits: HeadLimits,
): ResponseHead | ResponseError {
  const bad = (reason: string): ResponseError => ({ kind: 'error', reason });
  const size = end + 4 - start;
  if (size > limits.maxHeaderSize) return bad('response header block too large');
  let lineEnd = start;
  while (lineEnd < end && buf[lineEnd] !== 0x0d) lineEnd++;
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
  for (let i = s + 13; i < lineEnd; i++) if (FIELD_VALUE[buf[i]!] !== 1) return bad('control character in the status line');
  const status = d1 * 100 + d2 * 10 + d3;
  const minor = minorDigit === 0 ? 0 : 1;
  const reusable = minor === 1 && lineEnd > s + 13;
  // The reason phrase is only decoded when the status line cannot be relayed as is.
  const reason = reusable || lineEnd <= s + 13 ? '' : latin1(buf, s + 13, lineEnd);

  const fieldsOrError = parseFields(buf, lineEnd + 2, end, limits.maxHeaderCount);
  if (typeof fieldsOrError === 'string') return bad(fieldsOrError);
  const f = fieldsOrError;

  let contentLen = -1;
  let te: string[] | null = null;
  const ka = { timeoutMs: -1, max: -1 };
  for (let i = 0; i < f.count; i++) {
    const code = f.codes[i];
    if (code === F.CONTENT_LENGTH) {
      let n = contentLength(f, i);
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
      parseKeepAlive(value(f, i), ka);
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
    keepAliveTimeoutMs: ka.timeoutMs,
    keepAliveMax: ka.max,
    size,
  };
}

