// What the proxy changes in a request on its way to a backend, and in a response on its way to the client:
// hop-by-hop removal (RFC 9110 7.6.1), Perlbal's forwarding-header trust rules, and HEADER INSERT/REMOVE.
// Output is the serialized head (latin1 string), built in one pass over the fields as parsed.
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
}

/** Always dropped from requests and responses; `upgrade` is kept only on an upgrade exchange. */
function isHopByHop(lower: string): boolean {
  switch (lower) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'te':
      return true;
    default:
      return false;
  }
}

const CRLF = '\r\n';

/**
 * The request head for the backend (HTTP/1.1), with Perlbal's forwarding rules:
 * - X-Forwarded-For: replaced by the peer IP for untrusted clients (in the client's position), appended to for
 *   trusted ones, untouched for trusted + blind_proxy;
 * - X-Host and X-Forwarded-Host: dropped from untrusted clients;
 * - X-Real-IP and X-Forwarded-Proto: set for untrusted clients (overwriting), kept if a trusted client sent them;
 * - Connection: keep-alive|close (or upgrade) in the client's Connection position, else appended;
 * - HEADER rules last.
 */
export function buildBackendRequestHead(req: RequestHead, ctx: ForwardContext): string {
  const { names, lower, values } = req.fields;
  const extra = req.connection.extra;
  const upgrading = req.upgrade !== null;
  const connectionValue = upgrading ? 'upgrade' : ctx.persistBackend ? 'keep-alive' : 'close';
  const untrusted = !ctx.trusted;
  const touchForwarding = untrusted || !ctx.blindProxy;
  // Flat [name, value, ...] of what goes out, so HEADER rules can run over the final list.
  const out: string[] = [];
  if (req.hostIndex === -1) out.push('Host', req.host ?? ctx.defaultHost);
  let connectionDone = false;
  let xffDone = false;
  let realIpDone = false;
  let protoDone = false;

  for (let i = 0; i < names.length; i++) {
    const l = lower[i]!;
    switch (l) {
      case 'connection':
        if (!connectionDone) out.push(names[i]!, connectionValue);
        connectionDone = true;
        continue;
      case 'keep-alive':
      case 'proxy-connection':
      case 'te':
        continue;
      case 'upgrade':
        if (upgrading) out.push(names[i]!, values[i]!);
        continue;
      case 'expect':
        if (req.expectContinue) out.push(names[i]!, values[i]!);
        continue;
      case 'host':
        out.push(names[i]!, req.hostFromTarget ? req.host! : values[i]!);
        continue;
      case 'x-forwarded-for':
        if (!touchForwarding) break;
        if (!xffDone) out.push(names[i]!, untrusted ? ctx.peerIp : joinForwardedFor(req, ctx.peerIp));
        xffDone = true;
        continue;
      case 'x-host':
      case 'x-forwarded-host':
        if (untrusted) continue;
        break;
      case 'x-real-ip':
        if (!touchForwarding) break;
        if (!realIpDone) out.push(names[i]!, untrusted ? ctx.peerIp : values[i]!);
        realIpDone = true;
        continue;
      case 'x-forwarded-proto':
        if (!touchForwarding) break;
        if (!protoDone) out.push(names[i]!, untrusted ? 'http' : values[i]!);
        protoDone = true;
        continue;
    }
    if (extra !== null && extra.includes(l)) continue;
    out.push(names[i]!, values[i]!);
  }
  if (!connectionDone) out.push('Connection', connectionValue);
  if (touchForwarding) {
    if (!xffDone) out.push('X-Forwarded-For', ctx.peerIp);
    if (!realIpDone) out.push('X-Real-IP', ctx.peerIp);
    if (!protoDone) out.push('X-Forwarded-Proto', 'http');
  }
  if (ctx.rules !== null) applyRules(out, ctx.rules);
  let head = req.method + ' ' + req.target + ' HTTP/1.1\r\n';
  for (let i = 0; i < out.length; i += 2) head += out[i]! + ': ' + out[i + 1]! + CRLF;
  return head + CRLF;
}

/** Trusted proxies: their X-Forwarded-For list, normalised to ", " separators, plus the peer. */
function joinForwardedFor(req: RequestHead, peerIp: string): string {
  const parts: string[] = [];
  const { lower, values } = req.fields;
  for (let i = 0; i < lower.length; i++) {
    if (lower[i] !== 'x-forwarded-for') continue;
    for (const p of values[i]!.split(',')) {
      const t = p.trim();
      if (t.length > 0) parts.push(t);
    }
  }
  parts.push(peerIp);
  return parts.join(', ');
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

export interface ClientResponseContext {
  /** Keep the client connection open after this response. */
  keepAlive: boolean;
  /** `Keep-Alive: timeout=N, max=100` (Perlbal's format); 0 omits the header. */
  keepAliveTimeoutSec: number;
  /** The body is chunked but the client speaks HTTP/1.0: send it de-chunked and close-delimited. */
  dechunk: boolean;
  /** A 101 to an upgrade request: keep Upgrade and say `Connection: upgrade`. */
  upgrade: boolean;
}

/** The response head for the client: HTTP/1.1 status line, hop-by-hop fields replaced by our own decision. */
export function buildClientResponseHead(res: ResponseHead, ctx: ClientResponseContext): string {
  const { names, lower, values } = res.fields;
  const extra = res.connection.extra;
  const reason = res.reason.length > 0 ? res.reason : reasonPhrase(res.status);
  let out = 'HTTP/1.1 ' + res.status + ' ' + reason + CRLF;
  for (let i = 0; i < names.length; i++) {
    const l = lower[i]!;
    if (isHopByHop(l)) continue;
    if (l === 'transfer-encoding' && ctx.dechunk) continue;
    if (l === 'content-length' && res.conflictingLength) continue;
    if (l === 'upgrade' && !ctx.upgrade) continue;
    if (extra !== null && extra.includes(l)) continue;
    out += names[i]! + ': ' + values[i]! + CRLF;
  }
  if (ctx.upgrade) out += 'Connection: upgrade\r\n';
  else if (ctx.keepAlive) {
    out += 'Connection: keep-alive\r\n';
    if (ctx.keepAliveTimeoutSec > 0) out += 'Keep-Alive: timeout=' + ctx.keepAliveTimeoutSec + ', max=100\r\n';
  } else out += 'Connection: close\r\n';
  return out + CRLF;
}

/** A 1xx interim response (100 Continue, 103 Early Hints) relayed to an HTTP/1.1 client. */
export function buildInterimHead(res: ResponseHead): string {
  const { names, lower, values } = res.fields;
  let out = 'HTTP/1.1 ' + res.status + ' ' + (res.reason.length > 0 ? res.reason : reasonPhrase(res.status)) + CRLF;
  for (let i = 0; i < names.length; i++) {
    if (isHopByHop(lower[i]!)) continue;
    out += names[i]! + ': ' + values[i]! + CRLF;
  }
  return out + CRLF;
}
