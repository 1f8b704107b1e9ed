// HTTP/2 streams through the HTTP/1.1 path: pure translation between an HTTP/2 request's header list and the
// HTTP/1.1 request head tsbal's client code reads (so routing, limits, plugins, X-Forwarded-* and the backends see
// exactly what an HTTP/1.1 request would give), and from the HTTP/1.1 response head tsbal writes back to an HTTP/2
// header list. No sockets here (see session.ts).

/** Connection-specific fields (RFC 9113 8.2.2): never sent over HTTP/2, never taken from it. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

export type H2RequestHead =
  | { ok: true; head: string; method: string; chunkedBody: boolean }
  | { ok: false; status: number; why: string };

/**
 * The HTTP/1.1 request head for an HTTP/2 request. `endStream`: the HEADERS frame ended the stream (no body).
 * A body without content-length is sent chunked. The request carries `Connection: close`: one stream is one
 * request, on its own virtual connection.
 */
export function requestHead(headers: Readonly<Record<string, string | string[] | undefined>>, endStream: boolean): H2RequestHead {
  const method = headers[':method'];
  const path = headers[':path'];
  const authority = headers[':authority'] ?? headers.host;
  if (typeof method !== 'string' || method === '') return { ok: false, status: 400, why: 'no :method' };
  if (method === 'CONNECT') return { ok: false, status: 405, why: 'CONNECT over HTTP/2 is not supported' };
  if (typeof path !== 'string' || path === '') return { ok: false, status: 400, why: 'no :path' };
  if (typeof authority !== 'string' || authority === '') return { ok: false, status: 400, why: 'no :authority' };
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${authority}\r\n`;
  let hasLength = false;
  for (const name of Object.keys(headers)) {
    if (name.startsWith(':') || CONNECTION_SPECIFIC.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (name === 'content-length') hasLength = true;
    // RFC 9113 8.2.3: cookie crumbs are joined with "; " for HTTP/1.1.
    if (name === 'cookie' && Array.isArray(value)) head += `cookie: ${value.join('; ')}\r\n`;
    else if (Array.isArray(value)) for (const v of value) head += `${name}: ${v}\r\n`;
    else head += `${name}: ${value}\r\n`;
  }
  const chunkedBody = !endStream && !hasLength;
  if (chunkedBody) head += 'transfer-encoding: chunked\r\n';
  head += 'Connection: close\r\n\r\n';
  return { ok: true, head, method, chunkedBody };
}

export type BodyFraming = { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' } | { kind: 'none' };

export interface H2ResponseHead {
  status: number;
  /** Lowercased names, connection-specific ones dropped; repeated fields as arrays. */
  headers: Record<string, string | string[]>;
  framing: BodyFraming;
}

/**
 * Parses the HTTP/1.1 response head tsbal wrote (`HTTP/1.1 200 OK` ... blank line) into an HTTP/2 header list and
 * its body framing. `method`: HEAD responses have no body whatever their Content-Length.
 */
export function responseHead(text: string, method: string): H2ResponseHead | null {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (m === null) return null;
  const status = Number(m[1]);
  const headers: Record<string, string | string[]> = {};
  let length: number | null = null;
  let chunked = false;
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') length = Number(value);
    if (name === 'transfer-encoding' && /chunked/i.test(value)) chunked = true;
    if (CONNECTION_SPECIFIC.has(name)) continue;
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  const bodyless = method === 'HEAD' || status === 204 || status === 304 || status < 200;
  const framing: BodyFraming = bodyless ? { kind: 'none' } : chunked ? { kind: 'chunked' } : length !== null ? { kind: 'length', length } : { kind: 'close' };
  return { status, headers, framing };
}
