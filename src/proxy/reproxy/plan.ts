// enable_reproxy, the pure part: what a backend's X-Reproxy-* fields ask for, which fields of its answer the client
// keeps (Perlbal's BackendHTTP.pm / ClientProxy.pm rules), the head tsbal then writes, and the reproxy-URL cache
// (Perlbal's Service.pm add_to_reproxy_url_cache and ClientProxy.pm satisfy_request_from_cache).
import { F, fieldName, fieldValue, type Fields } from '../http/fields.ts';
import { isExtraConnectionToken } from '../http/writer.ts';
import type { ResponseHead } from '../http/response.ts';

export type Field = [string, string];

/** One reproxy URL as Perlbal splits it (`http://host[:port][/path]`; other schemes are skipped). */
export interface ReproxyTarget {
  host: string;
  port: number;
  path: string;
}

export type ReproxyInstruction =
  | { kind: 'file'; path: string; expectedSize: number | null }
  | { kind: 'url'; targets: ReproxyTarget[]; expectedSize: number | null; urls: string };

/** Perlbal's `m!^http://(.+?)(?::(\d+))?(/.*)?$!` per whitespace-separated URL; anything else is dropped. */
export function parseReproxyUrls(value: string): ReproxyTarget[] {
  const out: ReproxyTarget[] = [];
  for (const url of value.split(/\s+/)) {
    const m = /^http:\/\/(.+?)(?::(\d+))?(\/.*)?$/.exec(url);
    if (m === null) continue;
    out.push({ host: m[1]!, port: m[2] === undefined ? 80 : Number(m[2]), path: m[3] ?? '/' });
  }
  return out;
}

function expected(v: string | undefined): number | null {
  if (v === undefined || !/^\s*\d+\s*$/.test(v)) return null;
  const n = Number(v);
  // Perlbal: `if (my $expected_size = ...)`: 0 means no expectation.
  return n === 0 ? null : n;
}

/** X-Reproxy-File wins over X-Reproxy-URL, as in Perlbal; an empty value asks for nothing. */
export function reproxyInstruction(f: Fields): ReproxyInstruction | null {
  let file: string | undefined;
  let url: string | undefined;
  let size: string | undefined;
  for (let i = 0; i < f.count; i++) {
    if (f.codes[i] !== F.X_REPROXY) continue;
    const name = fieldName(f, i).toLowerCase();
    if (name === 'x-reproxy-file') file ??= fieldValue(f, i);
    else if (name === 'x-reproxy-url') url ??= fieldValue(f, i);
    else if (name === 'x-reproxy-expected-size') size ??= fieldValue(f, i);
  }
  if (file !== undefined && file !== '') return { kind: 'file', path: file, expectedSize: expected(size) };
  if (url !== undefined && url.trim() !== '') return { kind: 'url', targets: parseReproxyUrls(url.trim()), expectedSize: expected(size), urls: url.trim() };
  return null;
}

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'trailer']);

/**
 * The backend answer's fields that go to the client in front of the reproxied body: all but hop-by-hop, the
 * X-Reproxy-* instructions. Content-Length stays in its place, to be set to the reproxied content's length.
 */
export function primaryFields(res: ResponseHead): Field[] {
  const f = res.fields;
  const out: Field[] = [];
  for (let i = 0; i < f.count; i++) {
    if (f.codes[i] === F.X_REPROXY) continue;
    const name = fieldName(f, i);
    if (HOP.has(name.toLowerCase()) || isExtraConnectionToken(f, i, res.connection.extra)) continue;
    out.push([name, fieldValue(f, i)]);
  }
  return out;
}

/** Sets `name` (any case) to `value`, in place of the first occurrence, or appended. */
export function setField(fields: Field[], name: string, value: string): void {
  const lower = name.toLowerCase();
  const at = fields.findIndex(([n]) => n.toLowerCase() === lower);
  if (at === -1) fields.push([name, value]);
  else {
    fields[at] = [fields[at]![0], value];
    for (let i = fields.length - 1; i > at; i--) if (fields[i]![0].toLowerCase() === lower) fields.splice(i, 1);
  }
}

export function removeField(fields: Field[], name: string): void {
  const lower = name.toLowerCase();
  for (let i = fields.length - 1; i >= 0; i--) if (fields[i]![0].toLowerCase() === lower) fields.splice(i, 1);
}

export function findField(fields: readonly Field[], name: string): string | null {
  const lower = name.toLowerCase();
  for (const [n, v] of fields) if (n.toLowerCase() === lower) return v;
  return null;
}

/** The client head: status line, fields, then the pre-encoded Connection/Keep-Alive suffix (ends the head). */
export function reproxyHead(status: number, reason: string, fields: readonly Field[], suffix: Buffer): Buffer {
  let s = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [n, v] of fields) s += `${n}: ${v}\r\n`;
  return Buffer.concat([Buffer.from(s, 'latin1'), suffix]);
}

// ---------------------------------------------------------------------------------------------------------------
// The reproxy-URL cache: `X-REPROXY-CACHE-FOR: <seconds>; <Header> <Header>...` with an X-REPROXY-URL answer lets
// the next request for the same Host and URI skip the backend for that long.
// ---------------------------------------------------------------------------------------------------------------

export interface CachedReproxy {
  /** When the entry stops being used, ms on the caller's clock. */
  expiresMs: number;
  /** The backend answer's fields named in X-REPROXY-CACHE-FOR, replayed on a hit. */
  fields: Field[];
  urls: string;
}

/** Least recently used first out, at most `max` entries (Perlbal::Cache, `reproxy_cache_maxsize`). */
export interface ReproxyCache {
  max: number;
  entries: Map<string, CachedReproxy>;
}

export function newReproxyCache(max: number): ReproxyCache | null {
  return max > 0 ? { max, entries: new Map() } : null;
}

export function cacheKey(host: string | null, uri: string): string {
  return `${host ?? ''}|${uri}`;
}

/**
 * The entry to store for this answer, or null when it asks for no caching. Perlbal caches without expiry when the
 * seconds are missing or 0; tsbal treats those as "do not cache" (a stale URL list forever helps no one).
 */
export function cacheEntry(cacheFor: string, res: Fields, urls: string, nowMs: number): CachedReproxy | null {
  const semi = cacheFor.indexOf(';');
  const seconds = Number((semi === -1 ? cacheFor : cacheFor.slice(0, semi)).trim());
  if (!Number.isFinite(seconds) || seconds <= 0) return null;
  const fields: Field[] = [];
  const names = semi === -1 ? [] : cacheFor.slice(semi + 1).split(/\s+/).filter((n) => n !== '');
  for (const name of names) {
    const lower = name.toLowerCase();
    if (HOP.has(lower) || lower.startsWith('x-reproxy') || lower === 'content-length') continue;
    for (let i = 0; i < res.count; i++) {
      if (fieldName(res, i).toLowerCase() !== lower) continue;
      const v = fieldValue(res, i);
      if (v !== '') fields.push([name, v]);
      break;
    }
  }
  return { expiresMs: nowMs + seconds * 1000, fields, urls };
}

export function cachePut(cache: ReproxyCache, key: string, entry: CachedReproxy): void {
  cache.entries.delete(key);
  cache.entries.set(key, entry);
  if (cache.entries.size > cache.max) cache.entries.delete(cache.entries.keys().next().value!);
}

/** A live entry (refreshed as most recently used), or null; an expired one is dropped. */
export function cacheGet(cache: ReproxyCache, key: string, nowMs: number): CachedReproxy | null {
  const e = cache.entries.get(key);
  if (e === undefined) return null;
  cache.entries.delete(key);
  if (nowMs > e.expiresMs) return null;
  cache.entries.set(key, e);
  return e;
}
