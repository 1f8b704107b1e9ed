// What the proxy changes in a response on its way to the client: an HTTP/1.1 status line, hop-by-hop fields
// dropped, and our own Connection/Keep-Alive decision (pre-encoded per service).
import { COLON, F, LINE_START, STRIDE, fieldValue, type Fields } from './fields.ts';
import type { ResponseHead } from './response.ts';
import { reasonPhrase } from './status.ts';
import { CRLF, beginHead, flush, isExtraConnectionToken, keepLine, putBytes, putString, replaceLine, type HeadWriter, type Run } from './writer.ts';

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
  /** One more `Set-Cookie` value to add (session affinity pinning the client), unless `prefixCookie` found one. */
  setCookie?: string | null;
  /** Session affinity, prefix mode: the backend's own `Set-Cookie: <name>=v` goes out as `<name>=<prefix>v`. */
  prefixCookie?: SetCookiePrefix | null;
}

/** HAProxy's `cookie <name> prefix`: made once per backend (upstream/affinity.ts), not per response. */
export interface SetCookiePrefix {
  name: string;
  /** The backend's id and the separator (`<id>~`). */
  prefix: string;
}

const SET_COOKIE = [0x73, 0x65, 0x74, 0x2d, 0x63, 0x6f, 0x6f, 0x6b, 0x69, 0x65];

/** Is field `i` a Set-Cookie (any case)? */
export function isSetCookieField(f: Fields, i: number): boolean {
  const s = f.offs[i * STRIDE + LINE_START]!;
  if (f.offs[i * STRIDE + COLON]! - s !== 10) return false;
  for (let k = 0; k < 10; k++) if ((f.buf[s + k]! | 0x20) !== SET_COOKIE[k]) return false;
  return true;
}

/**
 * A `Set-Cookie` value with `prefix` put in front of the value of cookie `name` (`PHPSESSID=abc; path=/` →
 * `PHPSESSID=<id>~abc; path=/`); null if it sets another cookie.
 */
export function prefixSetCookie(value: string, p: SetCookiePrefix): string | null {
  let i = 0;
  while (i < value.length && (value.charCodeAt(i) === 0x20 || value.charCodeAt(i) === 0x09)) i++;
  const name = p.name;
  if (!value.startsWith(name, i) || value.charCodeAt(i + name.length) !== 0x3d) return null;
  const at = i + name.length + 1;
  return value.slice(0, at) + p.prefix + value.slice(at);
}

/** Writes the response head for the client: HTTP/1.1 status line, hop-by-hop fields replaced by our own. */
export function writeClientResponseHead(
  w: HeadWriter,
  res: ResponseHead,
  ctx: ClientResponseContext,
  bodyRoom: number,
): void {
  const setCookie = ctx.setCookie ?? null;
  const prefixCookie = ctx.prefixCookie ?? null;
  // Room for what affinity adds, so the head is not copied into a bigger buffer halfway.
  const affinityRoom = (setCookie === null ? 0 : setCookie.length + 14) + (prefixCookie === null ? 0 : 2 * prefixCookie.prefix.length);
  beginHead(w, res.size + ctx.suffix.length + 32 + bodyRoom + affinityRoom);
  const f = res.fields;
  const extra = res.connection.extra;
  // A status line relayed as is opens the run of kept lines, so it goes out in one copy with the fields after it.
  const run: Run = { start: -1, end: -1 };
  if (res.statusLineReusable) {
    run.start = res.lineStart;
    run.end = res.lineEnd + 2;
  } else putString(w, 'HTTP/1.1 ' + res.status + ' ' + (res.reason.length > 0 ? res.reason : reasonPhrase(res.status)) + CRLF);
  let appSetCookie = false;
  let wroteLength = false;
  for (let i = 0; i < f.count; i++) {
    switch (f.codes[i]) {
      case F.OTHER:
        if (prefixCookie !== null && isSetCookieField(f, i)) {
          const v = prefixSetCookie(fieldValue(f, i), prefixCookie);
          if (v !== null) {
            replaceLine(w, f, i, v, run);
            appSetCookie = true;
            continue;
          }
        }
        break;
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
        if (res.conflictingLength || (res.repeatedLength !== -1 && wroteLength)) {
          flush(w, f, run);
          continue;
        }
        if (res.repeatedLength !== -1) {
          // One framing header for the client: `3, 3` or a repeat becomes a single `Content-Length: 3`.
          replaceLine(w, f, i, String(res.repeatedLength), run);
          wroteLength = true;
          continue;
        }
        break;
      case F.UPGRADE:
        if (!ctx.upgrade) {
          flush(w, f, run);
          continue;
        }
        break;
      case F.X_REPROXY:
        // Reproxy instructions (internal paths and URLs) never reach a client: with enable_reproxy they are acted on
        // before this head is written (reproxy/serve.ts); without, they are dropped (a difference from Perlbal).
        flush(w, f, run);
        continue;
    }
    if (isExtraConnectionToken(f, i, extra)) flush(w, f, run);
    else keepLine(w, f, i, run);
  }
  flush(w, f, run);
  if (setCookie !== null && !appSetCookie) {
    putString(w, 'Set-Cookie: ');
    putString(w, setCookie);
    putString(w, CRLF);
  }
  putBytes(w, ctx.suffix);
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
