// Session affinity (`sticky`): which backend a request is pinned to, and the cookie that pins it. Stateless: a
// backend's id is an HMAC of its ip:port under a key, so two balancers with the same key read and write the same
// cookies with nothing shared between them (an LB failover keeps every session on its backend).
// Modes (HAProxy's names in brackets): cookie, tsbal's own cookie (`cookie SRV insert`); prefix, the application's
// session cookie carries the id in front of its value (`cookie JSESSIONID prefix`); source, a consistent hash of
// the client address (`balance source`, policies/source.ts). Pure: no sockets, no clock.
import { createHash, createHmac } from 'node:crypto';
import { COLON, F, LINE_START, STRIDE, VALUE_END, VALUE_START, latin1, type Fields } from '../http/fields.ts';
import type { SetCookiePrefix } from '../http/response-head.ts';

export type StickyMode = 'cookie' | 'prefix' | 'source';

/** Length of a backend id in a cookie: 12 base64url characters (72 bits of HMAC-SHA256). */
export const STICKY_ID_LENGTH = 12;
/** Between the id and the application's value in prefix mode (HAProxy uses the same `~`). */
export const PREFIX_SEPARATOR = '~';

/** A service's affinity, compiled: replaced by a reload (a new key means new ids). */
export interface Sticky {
  mode: StickyMode;
  /** cookie: the cookie tsbal sets (TSBALID); prefix: the application's own cookie (PHPSESSID); source: ''. */
  cookie: string;
  key: Buffer;
  /** Backend ip:port → its id under `key`, made on first use: one HMAC per backend per key, never per request. */
  ids: Map<string, string>;
  /** cookie mode: backend ip:port → the Set-Cookie value that pins to it (attributes included, Secure excluded). */
  setCookies: Map<string, string>;
  /** prefix mode: backend ip:port → what its responses' Set-Cookie gets in front of the application's value. */
  prefixes: Map<string, SetCookiePrefix>;
}

export function newSticky(mode: StickyMode, cookie: string, key: Buffer): Sticky {
  return { mode, cookie, key, ids: new Map(), setCookies: new Map(), prefixes: new Map() };
}

/** The opaque id of backend `upstreamKey` (ip:port) under `key`; the address cannot be read back from it. */
export function backendId(key: Buffer, upstreamKey: string): string {
  return createHmac('sha256', key).update(upstreamKey).digest('base64url').slice(0, STICKY_ID_LENGTH);
}

export function stickyIdOf(s: Sticky, upstreamKey: string): string {
  let id = s.ids.get(upstreamKey);
  if (id === undefined) {
    id = backendId(s.key, upstreamKey);
    s.ids.set(upstreamKey, id);
  }
  return id;
}

/** The cookie's attributes: the browser sends it back on every path, scripts cannot read it, no cross-site POSTs. */
const ATTRIBUTES = '; Path=/; HttpOnly; SameSite=Lax';

/** cookie mode: the Set-Cookie value pinning a client to this backend (made once per backend per key). */
export function pinCookieValue(s: Sticky, upstreamKey: string): string {
  let v = s.setCookies.get(upstreamKey);
  if (v === undefined) {
    v = `${s.cookie}=${stickyIdOf(s, upstreamKey)}${ATTRIBUTES}`;
    s.setCookies.set(upstreamKey, v);
  }
  return v;
}

/** prefix mode: the application's cookie moved to another backend (tsbal rewrites it when the app does not). */
export function prefixedCookieValue(s: Sticky, upstreamKey: string, appValue: string): string {
  return `${s.cookie}=${stickyIdOf(s, upstreamKey)}${PREFIX_SEPARATOR}${appValue}${ATTRIBUTES}`;
}

/** prefix mode: the rewrite of this backend's Set-Cookie (made once per backend per key). */
export function setCookiePrefix(s: Sticky, upstreamKey: string): SetCookiePrefix {
  let p = s.prefixes.get(upstreamKey);
  if (p === undefined) {
    p = { name: s.cookie, prefix: stickyIdOf(s, upstreamKey) + PREFIX_SEPARATOR };
    s.prefixes.set(upstreamKey, p);
  }
  return p;
}

/** The Secure attribute, for clients that came over TLS. */
export const SECURE = '; Secure';

/** The backend among `nodes` whose id is `id`, or null (an old key, a removed backend, a forged value). */
export function upstreamById<U extends { readonly key: string }>(s: Sticky, nodes: readonly U[], id: string): U | null {
  for (let i = 0; i < nodes.length; i++) if (stickyIdOf(s, nodes[i]!.key) === id) return nodes[i]!;
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the Cookie header (RFC 6265 5.4: `name=value` pairs separated by `; `), without a string per field.
// ---------------------------------------------------------------------------------------------------------------

const COOKIE = [0x63, 0x6f, 0x6f, 0x6b, 0x69, 0x65]; // "cookie"

function isCookieField(f: Fields, i: number): boolean {
  const s = f.offs[i * STRIDE + LINE_START]!;
  if (f.offs[i * STRIDE + COLON]! - s !== 6) return false;
  for (let k = 0; k < 6; k++) if ((f.buf[s + k]! | 0x20) !== COOKIE[k]) return false;
  return true;
}

/** The value of the first cookie named `name` in the request's Cookie fields, or null. Names match exactly. */
export function findCookie(f: Fields, name: string): string | null {
  const buf = f.buf;
  const n = name.length;
  for (let i = 0; i < f.count; i++) {
    if (f.codes[i] !== F.OTHER || !isCookieField(f, i)) continue;
    const end = f.offs[i * STRIDE + VALUE_END]!;
    let p = f.offs[i * STRIDE + VALUE_START]!;
    while (p < end) {
      while (p < end && (buf[p] === 0x20 || buf[p] === 0x09)) p++;
      let k = 0;
      while (k < n && p + k < end && buf[p + k] === name.charCodeAt(k)) k++;
      const matched = k === n && p + n < end && buf[p + n] === 0x3d; // '='
      let q = p;
      while (q < end && buf[q] !== 0x3b) q++; // ';'
      if (matched) {
        let ve = q;
        while (ve > p + n + 1 && (buf[ve - 1] === 0x20 || buf[ve - 1] === 0x09)) ve--;
        let vs = p + n + 1;
        // A quoted value (RFC 6265 allows DQUOTE around cookie-value).
        if (ve - vs >= 2 && buf[vs] === 0x22 && buf[ve - 1] === 0x22) {
          vs++;
          ve--;
        }
        return latin1(buf, vs, ve);
      }
      p = q + 1;
    }
  }
  return null;
}

const ID_CHAR = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') ID_CHAR[ch.charCodeAt(0)] = 1;

/** prefix mode: does this cookie value start with an id and the separator (`<id>~<app value>`)? */
export function hasIdPrefix(value: string): boolean {
  if (value.length <= STICKY_ID_LENGTH || value.charCodeAt(STICKY_ID_LENGTH) !== 0x7e) return false;
  for (let k = 0; k < STICKY_ID_LENGTH; k++) if (ID_CHAR[value.charCodeAt(k)] !== 1) return false;
  return true;
}

/**
 * prefix mode: the request head for the backend with our prefix taken out of the application's cookie
 * (`PHPSESSID=<id>~abc` → `PHPSESSID=abc`), so the application never sees it. `head` is the head as written for
 * the backend; returns it unchanged when the prefixed pair is not in it.
 */
export function stripIdPrefix(head: Buffer, name: string, id: string): Buffer {
  const needle = `${name}=${id}${PREFIX_SEPARATOR}`;
  let at = head.indexOf(needle, 0, 'latin1');
  // Only where a cookie pair starts: after `Cookie:`, `;` or whitespace.
  while (at > 0) {
    const before = head[at - 1];
    if (before === 0x20 || before === 0x3a || before === 0x3b || before === 0x09) break;
    at = head.indexOf(needle, at + 1, 'latin1');
  }
  if (at <= 0) return head;
  const cut = name.length + 1;
  return Buffer.concat([head.subarray(0, at + cut), head.subarray(at + needle.length)]);
}

// ---------------------------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------------------------

/** The key from `sticky_secret` (any text; both balancers must have the same). */
export function keyFromSecret(secret: string): Buffer {
  return createHash('sha256').update('tsbal sticky secret\0').update(secret).digest();
}

/** The key derived from the cluster's authkeys secret (never the secret itself: heartbeat's key stays heartbeat's). */
export function keyFromAuthkeys(method: string, secret: string): Buffer {
  return createHash('sha256').update('tsbal sticky authkeys\0').update(method).update('\0').update(secret).digest();
}
