// What the proxy changes in a request on its way to a backend: hop-by-hop removal (RFC 9110 7.6.1), Perlbal's
// forwarding-header trust rules (X-Forwarded-For, X-Host, X-Forwarded-Host) plus X-Real-IP and X-Forwarded-Proto,
// and HEADER INSERT/REMOVE last.
import { Buffer } from 'node:buffer';
import { F, fieldName, fieldValue, latin1, type Fields } from './fields.ts';
import type { RequestHead } from './request.ts';
import { parseFields } from './parser.ts';
import {
  CRLF,
  beginHead,
  flush,
  isExtraConnectionToken,
  keepLine,
  putBytes,
  putRange,
  putString,
  replaceLine,
  takeWritten,
  type HeadWriter,
  type Run,
} from './writer.ts';

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
  /** The client came over TLS: `X-Forwarded-Proto: https`. */
  https: boolean;
  /**
   * Caches of the forwarding lines for this connection (see forwardingTail), one per Connection value, null until
   * first needed: a context copied with another persistBackend (a reload) keeps the caches and still sends the
   * right one.
   */
  tailAfterConnection: Buffer | null;
  tailKeepAlive: Buffer | null;
  tailClose: Buffer | null;
}

/**
 * The one constructor of a ForwardContext (with copyForwardContext): every field set, in one order, with one type.
 * The hot path (writeBackendRequestHead and its callers) is optimised for the map these objects have; a field added
 * later (as the caches once were, on a connection's first request) gives a new connection's context another map,
 * and the optimised code is thrown away when one arrives ("wrong map" deopts; in callgrind runs where it happened
 * in the measured window, ~6k more main-thread instructions per kept-alive request).
 */
export function newForwardContext(
  peerIp: string,
  trusted: boolean,
  blindProxy: boolean,
  persistBackend: boolean,
  defaultHost: string,
  rules: HeaderRules | null,
  https: boolean,
): ForwardContext {
  return { peerIp, trusted, blindProxy, persistBackend, defaultHost, rules, https, tailAfterConnection: null, tailKeepAlive: null, tailClose: null };
}

/** `base` with other trust and HEADER settings; its peer, default Host, TLS flag and line caches are kept. */
export function copyForwardContext(
  base: ForwardContext,
  trusted: boolean,
  blindProxy: boolean,
  persistBackend: boolean,
  rules: HeaderRules | null,
): ForwardContext {
  return {
    peerIp: base.peerIp,
    trusted,
    blindProxy,
    persistBackend,
    defaultHost: base.defaultHost,
    rules,
    https: base.https,
    tailAfterConnection: base.tailAfterConnection,
    tailKeepAlive: base.tailKeepAlive,
    tailClose: base.tailClose,
  };
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
  writeForwardedHead(w, req, ctx);
  if (ctx.rules !== null) applyRulesToHead(w, ctx.rules);
}

function writeForwardedHead(w: HeadWriter, req: RequestHead, ctx: ForwardContext): void {
  const f = req.fields;
  const extra = req.connection.extra;
  const upgrading = req.upgrade !== null;
  const connectionValue = upgrading ? 'upgrade' : ctx.persistBackend ? 'keep-alive' : 'close';
  const untrusted = !ctx.trusted;
  const touchForwarding = untrusted || !ctx.blindProxy;
  const run: Run = { start: -1, end: -1 };
  if (req.hostIndex !== -1 && requestLineReusable(req)) {
    // Relayed as is, the request line opens the run of kept lines: one copy with the fields after it.
    run.start = req.lineStart;
    run.end = req.versionStart + 10;
  } else {
    writeRequestLine(w, req);
    if (req.hostIndex === -1) putString(w, 'Host: ' + (req.host ?? ctx.defaultHost) + CRLF);
  }
  let connectionDone = false;
  let xffDone = false;
  let realIpDone = false;
  let protoDone = false;
  // Without fields to rewrite, the forwarding lines are the same for every request of the connection.
  const plain = !req.hasForwardingFields;
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
          if (untrusted) replaceLine(w, f, i, ctx.https ? 'https' : 'http', run);
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
    if (connectionDone) putBytes(w, forwardingTail(ctx, null));
    else if (connectionValue === 'upgrade') putString(w, 'Connection: upgrade\r\n' + forwardingLines(ctx));
    else putBytes(w, forwardingTail(ctx, connectionValue));
    return;
  }
  if (touchForwarding) {
    if (!xffDone) tail += 'X-Forwarded-For: ' + ctx.peerIp + CRLF;
    if (!realIpDone) tail += 'X-Real-IP: ' + ctx.peerIp + CRLF;
    if (!protoDone) tail += ctx.https ? 'X-Forwarded-Proto: https\r\n' : 'X-Forwarded-Proto: http\r\n';
  }
  putString(w, tail + CRLF);
}

/** `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto` and the final CRLF of a plain request. */
function forwardingLines(ctx: ForwardContext): string {
  return `X-Forwarded-For: ${ctx.peerIp}\r\nX-Real-IP: ${ctx.peerIp}\r\nX-Forwarded-Proto: ${ctx.https ? 'https' : 'http'}\r\n\r\n`;
}

/**
 * The forwarding lines after `Connection: keep-alive|close` (when the client sent no Connection field) or alone:
 * the same for every plain request of a connection, so encoded once per connection and kind, and copied as bytes.
 */
function forwardingTail(ctx: ForwardContext, connectionValue: 'keep-alive' | 'close' | null): Buffer {
  if (connectionValue === null) return (ctx.tailAfterConnection ??= Buffer.from(forwardingLines(ctx), 'latin1'));
  if (connectionValue === 'keep-alive') return (ctx.tailKeepAlive ??= Buffer.from(`Connection: keep-alive\r\n${forwardingLines(ctx)}`, 'latin1'));
  return (ctx.tailClose ??= Buffer.from(`Connection: close\r\n${forwardingLines(ctx)}`, 'latin1'));
}

/** The request line as received is what the backend gets: the target untouched and `HTTP/1.1` already. */
function requestLineReusable(req: RequestHead): boolean {
  return req.target === null && req.minor === 1 && req.fields.buf[req.versionStart + 7] === 0x31;
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
 * HEADER rules run over the head as it would go out (so they see, and may change, what the proxy set): the written
 * head is read back as fields, removals then inserts are applied, and the head is written again. Only services
 * with HEADER lines pay for this.
 */
function applyRulesToHead(w: HeadWriter, rules: HeaderRules): void {
  const head = takeWritten(w);
  let lineEnd = 0;
  while (head[lineEnd] !== 0x0d) lineEnd++;
  const parsed = parseFields(head, lineEnd + 2, head.length - 4, Number.MAX_SAFE_INTEGER);
  // Our own output: it always parses.
  const list = typeof parsed === 'string' ? [] : flatFields(parsed);
  applyRules(list, rules);
  beginHead(w, head.length + 256);
  putRange(w, head, 0, lineEnd + 2);
  let out = '';
  for (let i = 0; i < list.length; i += 2) out += list[i]! + ': ' + list[i + 1]! + CRLF;
  putString(w, out + CRLF);
}

function flatFields(f: Fields): string[] {
  const out: string[] = [];
  for (let i = 0; i < f.count; i++) out.push(fieldName(f, i), fieldValue(f, i));
  return out;
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

/** Framing fields that rules applied before forwarding may not touch: the body is read by the client's framing. */
const FRAMING = new Set(['content-length', 'transfer-encoding']);

/**
 * The client's request head with a selector's HEADER rules applied, before the target's forwarding rules see it
 * (Perlbal's release_client), as bytes to parse again. Content-Length and Transfer-Encoding are left alone.
 */
export function rewrittenRequestHead(req: RequestHead, rules: HeaderRules): Buffer {
  const list = flatFields(req.fields);
  applyRules(list, {
    remove: new Set([...rules.remove].filter((n) => !FRAMING.has(n))),
    insert: rules.insert.filter((i) => !FRAMING.has(i.lower)),
  });
  let out = latin1(req.fields.buf, req.lineStart, req.versionStart + 8) + CRLF;
  for (let i = 0; i < list.length; i += 2) out += list[i]! + ': ' + list[i + 1]! + CRLF;
  return Buffer.from(out + CRLF, 'latin1');
}
