// What the HPACK decoder and encoder share: the static table (RFC 7541 Appendix A) and the ring their dynamic tables
// are kept in. The static strings are the interned strings the decoder hands out for indexed fields, so `:method GET`
// is the same string object every time.

/** Names of static entries 1..61 (index 0 unused). */
export const STATIC_NAMES: readonly string[] = [
  '',
  ':authority', ':method', ':method', ':path', ':path', ':scheme', ':scheme', ':status', ':status', ':status',
  ':status', ':status', ':status', ':status', 'accept-charset', 'accept-encoding', 'accept-language',
  'accept-ranges', 'accept', 'access-control-allow-origin', 'age', 'allow', 'authorization', 'cache-control',
  'content-disposition', 'content-encoding', 'content-language', 'content-length', 'content-location',
  'content-range', 'content-type', 'cookie', 'date', 'etag', 'expect', 'expires', 'from', 'host', 'if-match',
  'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified', 'link', 'location',
  'max-forwards', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'refresh', 'retry-after',
  'server', 'set-cookie', 'strict-transport-security', 'transfer-encoding', 'user-agent', 'vary', 'via',
  'www-authenticate',
];

/** Values of static entries 1..61 (empty for name-only entries). */
export const STATIC_VALUES: readonly string[] = [
  '',
  '', 'GET', 'POST', '/', '/index.html', 'http', 'https', '200', '204', '206', '304', '400', '404', '500', '',
  'gzip, deflate',
];
// Entries 17..61 have empty values.
(STATIC_VALUES as string[]).length = 62;
(STATIC_VALUES as string[]).fill('', 17);

export const STATIC_COUNT = 61;

/** Lowest static index carrying each name (the one to use as an indexed name). */
export const STATIC_NAME_INDEX: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>();
  for (let i = STATIC_COUNT; i >= 1; i--) m.set(STATIC_NAMES[i]!, i);
  return m;
})();

/** An HPACK dynamic table's entries as a ring of two arrays, oldest at `first`; the encoder and decoder both keep one. */
export interface HeaderRing {
  names: string[];
  values: string[];
  first: number;
  count: number;
  /** Capacity - 1 (the capacity is a power of two). */
  mask: number;
}

/** An empty ring of 32 entries (it grows by doubling). */
export function newHeaderRing(): HeaderRing {
  const capacity = 32;
  return { names: new Array<string>(capacity).fill(''), values: new Array<string>(capacity).fill(''), first: 0, count: 0, mask: capacity - 1 };
}

/** Doubles the ring, keeping the order (oldest at 0). */
export function growRing(r: HeaderRing): void {
  const capacity = (r.mask + 1) * 2;
  const names = new Array<string>(capacity).fill('');
  const values = new Array<string>(capacity).fill('');
  for (let k = 0; k < r.count; k++) {
    const at = (r.first + k) & r.mask;
    names[k] = r.names[at]!;
    values[k] = r.values[at]!;
  }
  r.names = names;
  r.values = values;
  r.first = 0;
  r.mask = capacity - 1;
}
