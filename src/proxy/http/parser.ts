// Strict HTTP/1.1 message-head parsing (RFC 9112), for requests from clients and responses from backends.
// Pure: bytes in, a parsed head or a refusal out. Framing (Content-Length / chunked) is decided here, once, so
// the proxy and the backend can never read a message's length differently.
import { FIELD_VALUE, TOKEN } from './chars.ts';

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

/** Header fields as parsed: names keep their case; `lower` holds the lowercased names for lookups. */
export interface Fields {
  names: string[];
  lower: string[];
  values: string[];
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
  /** Origin-form (or `*`); an absolute-form target is reduced to its path here. */
  target: string;
  /** 0 or 1 (HTTP/1.x, x > 1 is treated as 1). */
  minor: number;
  fields: Fields;
  /** Host from the absolute-form target (lowercased, without port, as Perlbal) or the Host field; null if absent. */
  host: string | null;
  /** Index of the Host field in `fields`, or -1. */
  hostIndex: number;
  hostFromTarget: boolean;
  framing: Framing;
  connection: ConnectionInfo;
  expectContinue: boolean;
  /** Upgrade protocol list when the client asked for one (HTTP/1.1 with `Connection: upgrade`). */
  upgrade: string | null;
  /** Bytes of the head on the wire, CRLFs included. */
  size: number;
}

export interface ResponseHead {
  kind: 'response';
  minor: number;
  status: number;
  reason: string;
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

export interface ResponseError {
  kind: 'error';
  reason: string;
}

const DIGITS_RE = /^[0-9]{1,15}$/;
const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?$/;
const ABSOLUTE_RE = /^https?:\/\/([^/?#]*)([^#]*)/i;

const fail = (status: HeadError['status'], reason: string): HeadError => ({ kind: 'error', status, reason });

/**
 * Splits and validates the field lines of a head (`text` from `pos` to its end: lines separated by CRLF, no final
 * blank line) in one pass. Returns an error message instead of Fields when a line is not a valid field.
 */
function parseFields(text: string, pos: number, maxCount: number): Fields | string {
  const names: string[] = [];
  const lower: string[] = [];
  const values: string[] = [];
  const end = text.length;
  while (pos < end) {
    let i = pos;
    let c = text.charCodeAt(i);
    while (TOKEN[c] === 1 && ++i < end) c = text.charCodeAt(i);
    if (i === pos) {
      if (c === 0x20 || c === 0x09) return 'obs-fold (line folding) is not allowed';
      return c === 0x3a ? 'empty header name' : 'bad header name';
    }
    if (i === end || c !== 0x3a) {
      if (c === 0x20 || c === 0x09) return 'whitespace before the colon in a header';
      return c === 0x0d || c === 0x0a || i === end ? 'header line without a colon' : 'bad header name';
    }
    const name = text.slice(pos, i);
    i++;
    // OWS, value, OWS, CRLF.
    while (i < end && ((c = text.charCodeAt(i)) === 0x20 || c === 0x09)) i++;
    const vs = i;
    let ve = i;
    while (i < end) {
      c = text.charCodeAt(i);
      if (c === 0x0d) break;
      if (FIELD_VALUE[c] !== 1) return c === 0x0a ? 'bare LF in a header line' : 'control character or NUL in a header value';
      i++;
      if (c !== 0x20 && c !== 0x09) ve = i;
    }
    if (i < end) {
      if (i + 1 >= end || text.charCodeAt(i + 1) !== 0x0a) return 'bare CR in a header line';
      i += 2;
    }
    if (names.length >= maxCount) return 'too many header fields';
    names.push(name);
    lower.push(name.toLowerCase());
    values.push(text.slice(vs, ve));
    pos = i;
  }
  return { names, lower, values };
}

/** Comma-separated list members (RFC 9110 5.6.1), lowercased, empty members dropped. */
export function listTokens(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const t = part.trim();
    if (t.length > 0) out.push(t.toLowerCase());
  }
  return out;
}

function connectionInfo(fields: Fields): ConnectionInfo {
  const info: ConnectionInfo = { close: false, keepAlive: false, upgrade: false, extra: null };
  const { lower, values } = fields;
  for (let i = 0; i < lower.length; i++) {
    if (lower[i] !== 'connection') continue;
    const v = values[i]!.toLowerCase();
    // The common single-token values without the list machinery.
    if (v === 'keep-alive') {
      info.keepAlive = true;
      continue;
    }
    if (v === 'close') {
      info.close = true;
      continue;
    }
    for (const token of listTokens(v)) {
      if (token === 'close') info.close = true;
      else if (token === 'keep-alive') info.keepAlive = true;
      else if (token === 'upgrade') info.upgrade = true;
      else (info.extra ??= []).push(token);
    }
  }
  return info;
}

/**
 * Parses a complete request head: `text` is the head decoded as latin1, without the final CRLFCRLF
 * (i.e. request line and field lines separated by CRLF). `size` is its length on the wire.
 */
export function parseRequestHead(text: string, size: number, limits: HeadLimits): RequestHead | HeadError {
  if (size > limits.maxHeaderSize) return fail(431, 'request header block too large');
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd === -1) lineEnd = text.length;
  // method SP request-target SP HTTP-version, single spaces, validated as we split.
  let i = 0;
  while (i < lineEnd && TOKEN[text.charCodeAt(i)] === 1) i++;
  if (i === 0 || i === lineEnd || text.charCodeAt(i) !== 0x20) return fail(400, i === 0 ? 'malformed request line' : 'bad method');
  const method = text.slice(0, i);
  const ts = ++i;
  let c = 0;
  while (i < lineEnd && (c = text.charCodeAt(i)) > 0x20 && c !== 0x7f) i++;
  if (i === ts || i === lineEnd || c !== 0x20) {
    return fail(400, i < lineEnd && c !== 0x20 ? 'control character in the request line' : 'malformed request line');
  }
  let target = text.slice(ts, i);
  if (target.length > limits.maxUrlLength) return fail(414, 'request target too long');
  const vs = i + 1;
  if (
    lineEnd - vs !== 8 ||
    text.charCodeAt(vs) !== 0x48 || // H
    text.charCodeAt(vs + 1) !== 0x54 || // T
    text.charCodeAt(vs + 2) !== 0x54 || // T
    text.charCodeAt(vs + 3) !== 0x50 || // P
    text.charCodeAt(vs + 4) !== 0x2f || // /
    text.charCodeAt(vs + 6) !== 0x2e // .
  ) {
    return fail(400, 'malformed HTTP version');
  }
  const major = text.charCodeAt(vs + 5) - 0x30;
  const minorDigit = text.charCodeAt(vs + 7) - 0x30;
  if (major < 0 || major > 9 || minorDigit < 0 || minorDigit > 9) return fail(400, 'malformed HTTP version');
  if (major !== 1) return fail(505, 'HTTP version not supported');
  const minor = minorDigit === 0 ? 0 : 1;

  const fieldsOrError = parseFields(text, lineEnd + 2, limits.maxHeaderCount);
  if (typeof fieldsOrError === 'string') {
    return fail(fieldsOrError === 'too many header fields' ? 431 : 400, fieldsOrError);
  }
  const fields = fieldsOrError;
  const { lower, values } = fields;

  let hostIndex = -1;
  let contentLength = -1;
  let clSeen = false;
  let te: string[] | null = null;
  let expect: string | null = null;
  let upgradeValue: string | null = null;
  for (let i = 0; i < lower.length; i++) {
    const name = lower[i]!;
    switch (name) {
      case 'host':
        if (hostIndex !== -1) return fail(400, 'more than one Host header');
        hostIndex = i;
        break;
      case 'content-length': {
        if (clSeen) return fail(400, 'more than one Content-Length header');
        clSeen = true;
        const v = values[i]!;
        if (!DIGITS_RE.test(v)) return fail(400, 'invalid Content-Length');
        contentLength = Number(v);
        break;
      }
      case 'transfer-encoding':
        (te ??= []).push(...listTokens(values[i]!));
        break;
      case 'expect':
        if (expect !== null) return fail(417, 'more than one Expect header');
        expect = values[i]!.toLowerCase();
        break;
      case 'upgrade':
        upgradeValue = upgradeValue === null ? values[i]! : `${upgradeValue}, ${values[i]!}`;
        break;
    }
  }

  let host: string | null = hostIndex === -1 ? null : values[hostIndex]!;
  if (host !== null && !HOST_RE.test(host)) return fail(400, 'invalid Host header');
  let hostFromTarget = false;
  const first = target.charCodeAt(0);
  if (first === 0x2f /* / */) {
    // origin-form
  } else if (target === '*') {
    if (method !== 'OPTIONS') return fail(400, 'asterisk-form is only valid for OPTIONS');
  } else if (method === 'CONNECT') {
    return fail(405, 'CONNECT is not supported by a reverse proxy');
  } else {
    const m = ABSOLUTE_RE.exec(target);
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
  } else if (contentLength > 0) {
    framing = { kind: 'length', length: contentLength };
  }

  let expectContinue = false;
  if (expect !== null && minor === 1) {
    if (expect !== '100-continue') return fail(417, 'unsupported expectation');
    expectContinue = true;
  }

  const connection = connectionInfo(fields);
  const upgrade = minor === 1 && connection.upgrade && upgradeValue !== null ? upgradeValue : null;
  return {
    kind: 'request',
    method,
    target,
    minor,
    fields,
    host,
    hostIndex,
    hostFromTarget,
    framing,
    connection,
    expectContinue,
    upgrade,
    size,
  };
}

function parseKeepAlive(value: string, out: { timeoutMs: number; max: number }): void {
  for (const part of value.split(',')) {
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
 * Parses a complete response head (latin1 text without the final CRLFCRLF) for a request with `method`.
 * Lenient only where it cannot change framing: a missing reason phrase is accepted (Perlbal hangs on it).
 */
export function parseResponseHead(
  text: string,
  size: number,
  method: string,
  limits: HeadLimits,
): ResponseHead | ResponseError {
  const bad = (reason: string): ResponseError => ({ kind: 'error', reason });
  if (size > limits.maxHeaderSize) return bad('response header block too large');
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd === -1) lineEnd = text.length;
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (lineEnd < 12 || !text.startsWith('HTTP/1.') || text.charCodeAt(8) !== 0x20) return bad('malformed status line');
  const minorDigit = text.charCodeAt(7) - 0x30;
  if (minorDigit < 0 || minorDigit > 9) return bad('malformed status line');
  const d1 = text.charCodeAt(9) - 0x30;
  const d2 = text.charCodeAt(10) - 0x30;
  const d3 = text.charCodeAt(11) - 0x30;
  if (d1 < 1 || d1 > 5 || d2 < 0 || d2 > 9 || d3 < 0 || d3 > 9) return bad('malformed status code');
  if (lineEnd > 12 && text.charCodeAt(12) !== 0x20) return bad('malformed status line');
  const status = d1 * 100 + d2 * 10 + d3;
  for (let i = 13; i < lineEnd; i++) if (FIELD_VALUE[text.charCodeAt(i)] !== 1) return bad('control character in the status line');
  const reason = lineEnd > 13 ? text.slice(13, lineEnd) : '';
  const minor = minorDigit === 0 ? 0 : 1;

  const fieldsOrError = parseFields(text, lineEnd + 2, limits.maxHeaderCount);
  if (typeof fieldsOrError === 'string') return bad(fieldsOrError);
  const fields = fieldsOrError;
  const { lower, values } = fields;

  let contentLength = -1;
  let te: string[] | null = null;
  const ka = { timeoutMs: -1, max: -1 };
  for (let i = 0; i < lower.length; i++) {
    const name = lower[i]!;
    if (name === 'content-length') {
      // Identical repeats (also as a list) are tolerated from backends (RFC 9110 8.6); differing ones are not.
      const value = values[i]!;
      for (const v of value.indexOf(',') === -1 ? [value] : value.split(',')) {
        const t = v.trim();
        if (!DIGITS_RE.test(t)) return bad('invalid Content-Length');
        const n = Number(t);
        if (contentLength !== -1 && contentLength !== n) return bad('differing Content-Length values');
        contentLength = n;
      }
    } else if (name === 'transfer-encoding') {
      (te ??= []).push(...listTokens(values[i]!));
    } else if (name === 'keep-alive') {
      parseKeepAlive(values[i]!, ka);
    }
  }

  let framing: Framing;
  let conflictingLength = false;
  if (method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304) {
    framing = NONE;
  } else if (te !== null) {
    // RFC 9112 6.3: TE overrides CL; a chunked final coding frames the body, anything else reads to close.
    conflictingLength = contentLength !== -1;
    framing = te[te.length - 1] === 'chunked' ? CHUNKED : CLOSE;
  } else if (contentLength >= 0) {
    framing = contentLength === 0 ? NONE : { kind: 'length', length: contentLength };
  } else {
    framing = CLOSE;
  }
  return {
    kind: 'response',
    minor,
    status,
    reason,
    fields,
    framing,
    connection: connectionInfo(fields),
    conflictingLength,
    keepAliveTimeoutMs: ka.timeoutMs,
    keepAliveMax: ka.max,
    size,
  };
}
