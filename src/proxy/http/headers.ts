// What the proxy changes in a request on its way to a backend, and in a response on its way to the client:
// hop-by-hop removal (RFC 9110 7.6.1), Perlbal's forwarding-header trust rules, and HEADER INSERT/REMOVE.
// Heads are written into a reusable scratch buffer: fields the proxy does not touch are copied as raw byte runs,
// so a typical head costs a few memcpys and one allocation of the exact output size.
import {
  COLON,
  F,
  LINE_END,
  LINE_START,
  STRIDE,
  fieldName,
  fieldValue,
  writeLatin1,
  type Fields,
} from './fields.ts';
import type { RequestHead, ResponseHead } from './parser.ts';
import { reasonPhrase } from './status.ts';

/** `HEADER <svc> INSERT|REMOVE`, compiled: applied after everything else, removals first. */
export interface HeaderRules {
  /** Lowercased names to drop. */
  remove: Set<string>;
  /** Set (replace or add) these, in order. */
  insert: Array<{ name: string; lower: string; value: string }>;
}

export interface ForwardContext {
  /** The client's address as the backend should see it. */
  peerIp: string;
  /** always_trusted, or the peer is in trusted_upstream_proxies. */
  trusted: boolean;
  blindProxy: boolean;
  /** `Connection: keep-alive` (persist_backend) or `close` to the backend. */
  persistBackend: boolean;
  /** Host for requests that came without one (HTTP/1.0): the address the client connected to. */
  defaultHost: string;
  rules: HeaderRules | null;
  /** Caches of the forwarding lines for this connection (see forwardingTail). */
  tailAfterConnection?: string;
  tailWithConnection?: string;
}

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

const CRLF = '\r\n';

/** Copies runs of consecutive kept field lines in one go. */
interface Run {
  start: number;
  end: number;
}

function keepLine(w: HeadWriter, f: Fields, i: number, run: Run): void {
  const s = f.offs[i * STRIDE + LINE_START]!;
  if (run.start !== -1 && run.end === s) {
    run.end = f.offs[i * STRIDE + LINE_END]! + 2;
    return;
  }
  flush(w, f, run);
  run.start = s;
  run.end = f.offs[i * STRIDE + LINE_END]! + 2;
}

function flush(w: HeadWriter, f: Fields, run: Run): void {
  if (run.start === -1) return;
  putRange(w, f.buf, run.start, run.end);
  run.start = -1;
}

/** Field i with a new value: its name as sent, then `: value`. */
function replaceLine(w: HeadWriter, f: Fields, i: number, value: string, run: Run): void {
  flush(w, f, run);
  putRange(w, f.buf, f.offs[i * STRIDE + LINE_START]!, f.offs[i * STRIDE + COLON]!);
  putString(w, ': ' + value + CRLF);
}

function isExtraConnectionToken(f: Fields, i: number, extra: string[] | null): boolean {
  return extra !== null && extra.includes(fieldName(f, i).toLowerCase());
}

/**
 * Writes the request head for the backend (HTTP/1.1) into `w`, with Perlbal's forwarding rules:
 * - X-Forwarded-For: replaced by the peer IP for untrusted clients (in the client's position), appended to for
 *   trusted ones, untouched for trusted + blind_proxy;
 * - X-Host and X-Forwarded-Host: dropped from untrusted clients;
 * - X-Real-IP and X-Forwarded-Proto: set for untrusted clients (overwriting), kept if a trusted client sent them;
 * - Connection: keep-alive|close (or upgrade) in the client's Connection position, else appended;
 * - hop-by-hop fields dropped; HEADER rules last.
 */
export function writeBackendRequestHead(w: HeadWriter, req: RequestHead, ctx: ForwardContext): void {
  // What we add (Host, Connection, forwarding fields) fits in this margin unless values are huge (then it grows).
  beginHead(w, req.size + ctx.peerIp.length * 2 + 160 + (req.host === null ? 0 : req.host.length));
  if (ctx.rules !== null) {
    writeFieldList(w, req, backendRequestFieldList(req, ctx));
    return;
  }
  const f = req.fields;
  const extra = req.connection.extra;
  const upgrading = req.upgrade !== null;
  const connectionValue = upgrading ? 'upgrade' : ctx.persistBackend ? 'keep-alive' : 'close';
  const untrusted = !ctx.trusted;
  const touchForwarding = untrusted || !ctx.blindProxy;
  writeRequestLine(w, req);
  if (req.hostIndex === -1) putString(w, 'Host: ' + (req.host ?? ctx.defaultHost) + CRLF);
  let connectionDone = false;
  let xffDone = false;
  let realIpDone = false;
  let protoDone = false;
  // Without fields to rewrite, the forwarding lines are the same for every request of the connection.
  const plain = !req.hasForwardingFields;
  const run: Run = { start: -1, end: -1 };
  for (let i = 0; i < f.count; i++) {
    switch (f.codes[i]) {
      case F.CONNECTION:
        if (!connectionDone) replaceLine(w, f, i, connectionValue, run);
        else flush(w, f, run);
        connectionDone = true;
        continue;
      case F.KEEP_ALIVE:
      case F.PROXY_CONNECTION:
      case F.TE:
        flush(w, f, run);
        continue;
      case F.UPGRADE:
        if (upgrading) keepLine(w, f, i, run);
        else flush(w, f, run);
        continue;
      case F.EXPECT:
        if (req.expectContinue) keepLine(w, f, i, run);
        else flush(w, f, run);
        continue;
      case F.HOST:
        if (req.hostFromTarget) replaceLine(w, f, i, req.host!, run);
        else keepLine(w, f, i, run);
        continue;
      case F.X_FORWARDED_FOR:
        if (!touchForwarding) break;
        if (!xffDone) replaceLine(w, f, i, untrusted ? ctx.peerIp : joinForwardedFor(f, ctx.peerIp), run);
        else flush(w, f, run);
        xffDone = true;
        continue;
      case F.X_HOST:
      case F.X_FORWARDED_HOST:
        if (!untrusted) break;
        flush(w, f, run);
        continue;
      case F.X_REAL_IP:
        if (!touchForwarding) break;
        if (!realIpDone) {
          if (untrusted) replaceLine(w, f, i, ctx.peerIp, run);
          else keepLine(w, f, i, run);
        } else flush(w, f, run);
        realIpDone = true;
        continue;
      case F.X_FORWARDED_PROTO:
        if (!touchForwarding) break;
        if (!protoDone) {
          if (untrusted) replaceLine(w, f, i, 'http', run);
          else keepLine(w, f, i, run);
        } else flush(w, f, run);
        protoDone = true;
        continue;
    }
    if (isExtraConnectionToken(f, i, extra)) flush(w, f, run);
    else keepLine(w, f, i, run);
  }
  flush(w, f, run);
  let tail = connectionDone ? '' : 'Connection: ' + connectionValue + CRLF;
  if (plain && touchForwarding) {
    putString(w, forwardingTail(ctx, connectionDone ? null : connectionValue));
    return;
  }
  if (touchForwarding) {
    if (!xffDone) tail += 'X-Forwarded-For: ' + ctx.peerIp + CRLF;
    if (!realIpDone) tail += 'X-Real-IP: ' + ctx.peerIp + CRLF;
    if (!protoDone) tail += 'X-Forwarded-Proto: http\r\n';
  }
  putString(w, tail + CRLF);
}

/**
 * `Connection` (when the client sent none), `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto` and the final
 * CRLF: the same for every plain request of a connection, so made once per connection and kind.
 */
function forwardingTail(ctx: ForwardContext, connectionValue: string | null): string {
  const lines = `X-Forwarded-For: ${ctx.peerIp}\r\nX-Real-IP: ${ctx.peerIp}\r\nX-Forwarded-Proto: http\r\n\r\n`;
  if (connectionValue === null) return (ctx.tailAfterConnection ??= lines);
  if (connectionValue === 'upgrade') return `Connection: upgrade\r\n${lines}`;
  return (ctx.tailWithConnection ??= `Connection: ${connectionValue}\r\n${lines}`);
}

function writeRequestLine(w: HeadWriter, req: RequestHead): void {
  if (req.target !== null) putString(w, req.method + ' ' + req.target + ' HTTP/1.1\r\n');
  else {
    // `METHOD SP target SP` exactly as received.
    putRange(w, req.fields.buf, req.lineStart, req.versionStart);
    putString(w, 'HTTP/1.1\r\n');
  }
}

/** Trusted proxies: their X-Forwarded-For list, normalised to ", " separators, plus the peer. */
function joinForwardedFor(f: Fields, peerIp: string): string {
  const parts: string[] = [];
  for (let i = 0; i < f.count; i++) {
    if (f.codes[i] !== F.X_FORWARDED_FOR) continue;
    for (const p of fieldValue(f, i).split(',')) {
      const t = p.trim();
      if (t.length > 0) parts.push(t);
    }
  }
  parts.push(peerIp);
  return parts.join(', ');
}

/**
 * The same decisions as writeBackendRequestHead, as a [name, value, ...] list, with HEADER rules applied last
 * (removals, then inserts that set in place or append). Used when the service has HEADER rules.
 */
export function backendRequestFieldList(req: RequestHead, ctx: ForwardContext): string[] {
  const f = req.fields;
  const extra = req.connection.extra;
  const upgrading = req.upgrade !== null;
  const connectionValue = upgrading ? 'upgrade' : ctx.persistBackend ? 'keep-alive' : 'close';
  const untrusted = !ctx.trusted;
  const touchForwarding = untrusted || !ctx.blindProxy;
  const out: string[] = [];
  if (req.hostIndex === -1) out.push('Host', req.host ?? ctx.defaultHost);
  let connectionDone = false;
  let xffDone = false;
  let realIpDone = false;
  let protoDone = false;
  for (let i = 0; i < f.count; i++) {
    const name = fieldName(f, i);
    switch (f.codes[i]) {
      case F.CONNECTION:
        if (!connectionDone) out.push(name, connectionValue);
        connectionDone = true;
        continue;
      case F.KEEP_ALIVE:
      case F.PROXY_CONNECTION:
      case F.TE:
        continue;
      case F.UPGRADE:
        if (upgrading) out.push(name, fieldValue(f, i));
        continue;
      case F.EXPECT:
        if (req.expectContinue) out.push(name, fieldValue(f, i));
        continue;
      case F.HOST:
        out.push(name, req.hostFromTarget ? req.host! : fieldValue(f, i));
        continue;
      case F.X_FORWARDED_FOR:
        if (!touchForwarding) break;
        if (!xffDone) out.push(name, untrusted ? ctx.peerIp : joinForwardedFor(f, ctx.peerIp));
        xffDone = true;
        continue;
      case F.X_HOST:
      case F.X_FORWARDED_HOST:
        if (untrusted) continue;
        break;
      case F.X_REAL_IP:
        if (!touchForwarding) break;
        if (!realIpDone) out.push(name, untrusted ? ctx.peerIp : fieldValue(f, i));
        realIpDone = true;
        continue;
      case F.X_FORWARDED_PROTO:
        if (!touchForwarding) break;
        if (!protoDone) out.push(name, untrusted ? 'http' : fieldValue(f, i));
        protoDone = true;
        continue;
    }
    if (isExtraConnectionToken(f, i, extra)) continue;
    out.push(name, fieldValue(f, i));
  }
  if (!connectionDone) out.push('Connection', connectionValue);
  if (touchForwarding) {
    if (!xffDone) out.push('X-Forwarded-For', ctx.peerIp);
    if (!realIpDone) out.push('X-Real-IP', ctx.peerIp);
    if (!protoDone) out.push('X-Forwarded-Proto', 'http');
  }
  if (ctx.rules !== null) applyRules(out, ctx.rules);
  return out;
}

function writeFieldList(w: HeadWriter, req: RequestHead, list: string[]): void {
  writeRequestLine(w, req);
  let s = '';
  for (let i = 0; i < list.length; i += 2) s += list[i]! + ': ' + list[i + 1]! + CRLF;
  putString(w, s + CRLF);
}

/** HEADER REMOVE drops every field of that name; HEADER INSERT sets it (first position kept, else appended). */
function applyRules(fields: string[], rules: HeaderRules): void {
  if (rules.remove.size > 0) {
    let w = 0;
    for (let r = 0; r < fields.length; r += 2) {
      if (rules.remove.has(fields[r]!.toLowerCase())) continue;
      fields[w++] = fields[r]!;
      fields[w++] = fields[r + 1]!;
    }
    fields.length = w;
  }
  for (const ins of rules.insert) {
    let found = -1;
    let w = 0;
    for (let r = 0; r < fields.length; r += 2) {
      if (fields[r]!.toLowerCase() === ins.lower) {
        if (found !== -1) continue;
        found = w;
      }
      fields[w++] = fields[r]!;
      fields[w++] = fields[r + 1]!;
    }
    fields.length = w;
    if (found === -1) fields.push(ins.name, ins.value);
    else fields[found + 1] = ins.value;
  }
}

/**
 * The end of the client response head chosen per response: pre-encoded per service, so the common case is one
 * copy. `Keep-Alive: timeout=N, max=100` is Perlbal's format (timeout 0 omits the header).
 */
export interface ResponseSuffixes {
  keepAlive: Buffer;
  close: Buffer;
  upgrade: Buffer;
}

export function responseSuffixes(keepAliveTimeoutSec: number): ResponseSuffixes {
  const ka = keepAliveTimeoutSec > 0 ? `Keep-Alive: timeout=${keepAliveTimeoutSec}, max=100\r\n` : '';
  return {
    keepAlive: Buffer.from(`Connection: keep-alive\r\n${ka}\r\n`, 'latin1'),
    close: Buffer.from('Connection: close\r\n\r\n', 'latin1'),
    upgrade: Buffer.from('Connection: upgrade\r\n\r\n', 'latin1'),
  };
}

export interface ClientResponseContext {
  /** The head's last lines: `suffixes.keepAlive`, `.close` or `.upgrade`. */
  suffix: Buffer;
  /** The body is chunked but the client speaks HTTP/1.0: drop Transfer-Encoding (the body goes de-chunked). */
  dechunk: boolean;
  /** A 101 to an upgrade request: keep Upgrade. */
  upgrade: boolean;
}

/** Writes the response head for the client: HTTP/1.1 status line, hop-by-hop fields replaced by our own. */
export function writeClientResponseHead(
  w: HeadWriter,
  res: ResponseHead,
  ctx: ClientResponseContext,
  bodyRoom: number,
): void {
  beginHead(w, res.size + ctx.suffix.length + 32 + bodyRoom);
  const f = res.fields;
  const extra = res.connection.extra;
  if (res.statusLineReusable) putRange(w, f.buf, res.lineStart, res.lineEnd + 2);
  else putString(w, 'HTTP/1.1 ' + res.status + ' ' + (res.reason.length > 0 ? res.reason : reasonPhrase(res.status)) + CRLF);
  const run: Run = { start: -1, end: -1 };
  for (let i = 0; i < f.count; i++) {
    switch (f.codes[i]) {
      case F.CONNECTION:
      case F.KEEP_ALIVE:
      case F.PROXY_CONNECTION:
      case F.TE:
        flush(w, f, run);
        continue;
      case F.TRANSFER_ENCODING:
        if (ctx.dechunk) {
          flush(w, f, run);
          continue;
        }
        break;
      case F.CONTENT_LENGTH:
        if (res.conflictingLength) {
          flush(w, f, run);
          continue;
        }
        break;
      case F.UPGRADE:
        if (!ctx.upgrade) {
          flush(w, f, run);
          continue;
        }
        break;
    }
    if (isExtraConnectionToken(f, i, extra)) flush(w, f, run);
    else keepLine(w, f, i, run);
  }
  flush(w, f, run);
  putRange(w, ctx.suffix, 0, ctx.suffix.length);
}

/** A 1xx interim response (100 Continue, 103 Early Hints) relayed to an HTTP/1.1 client. */
export function writeInterimHead(w: HeadWriter, res: ResponseHead): void {
  beginHead(w, res.size + 32);
  const f = res.fields;
  putString(w, 'HTTP/1.1 ' + res.status + ' ' + (res.reason.length > 0 ? res.reason : reasonPhrase(res.status)) + CRLF);
  const run: Run = { start: -1, end: -1 };
  for (let i = 0; i < f.count; i++) {
    const code = f.codes[i];
    if (code === F.CONNECTION || code === F.KEEP_ALIVE || code === F.PROXY_CONNECTION || code === F.TE) flush(w, f, run);
    else keepLine(w, f, i, run);
  }
  flush(w, f, run);
  putString(w, CRLF);
}

