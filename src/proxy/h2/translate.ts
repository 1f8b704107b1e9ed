// HTTP/2 streams through the HTTP/1.1 path: pure translation between an HTTP/2 request's header list and the
// HTTP/1.1 request head tsbal's client code reads (so routing, limits, plugins, X-Forwarded-* and the backends see
// exactly what an HTTP/1.1 request would give), and from the HTTP/1.1 response head tsbal writes back to an HTTP/2
// header list. No sockets here (see session.ts).

/** Connection-specific fields (RFC 9113 8.2.2): never sent over HTTP/2, never taken from it. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

/** Why a request's header list cannot be served: an answer (status), or malformed (RST_STREAM PROTOCOL_ERROR). */
export type H2RequestFromList =
  | { ok: true; head: string; method: string; chunkedBody: boolean; contentLength: number }
  | { ok: false; status: number; why: string }
  | { ok: false; status: 0; why: string };

/** Field names that are tokens in lowercase (RFC 9113 8.2.1: uppercase is malformed). */
const LOWER_TOKEN = /^[a-z0-9!#$%&'*+\-.^_`|~]+$/;
/** What no field value may hold (8.2.1), and what would split an HTTP/1.1 request line. */
const BAD_VALUE = /[\0\r\n]/;
const BAD_TARGET = /[\0\r\n ]/;

/**
 * The HTTP/1.1 request head for an HTTP/2 request given as the decoder's flat list (name, value, ...): validated as
 * RFC 9113 8.2-8.3 asks (pseudo-headers first, each once, known; lowercase names; no connection-specific fields; `te`
 * only `trailers`; no CR, LF or NUL) so that nothing a client sends can change the HTTP/1.1 head's shape.
 * `contentLength`: -1 when the request announced none.
 */
export function requestHeadFromList(fields: readonly string[], endStream: boolean): H2RequestFromList {
  let method = '';
  let path = '';
  let authority = '';
  let scheme = '';
  let host = '';
  let lines = '';
  let cookie = '';
  let contentLength = -1;
  let regular = false;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (BAD_VALUE.test(value)) return malformed(`field ${name} holds CR, LF or NUL`);
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return malformed(`pseudo-header ${name} after a regular field`);
      if (name === ':method') {
        if (method !== '') return malformed('two :method');
        method = value;
      } else if (name === ':path') {
        if (path !== '') return malformed('two :path');
        path = value;
      } else if (name === ':authority') {
        if (authority !== '') return malformed('two :authority');
        authority = value;
      } else if (name === ':scheme') {
        if (scheme !== '') return malformed('two :scheme');
        scheme = value;
      } else return malformed(`unknown pseudo-header ${name}`);
      continue;
    }
    regular = true;
    if (!LOWER_TOKEN.test(name)) return malformed(`field name ${JSON.stringify(name)} is not a lowercase token`);
    if (CONNECTION_SPECIFIC.has(name)) {
      if (name === 'host') {
        host = value;
        continue;
      }
      return malformed(`connection-specific field ${name}`);
    }
    if (name === 'te' && value !== 'trailers') return malformed('te other than trailers');
    if (name === 'cookie') {
      cookie = cookie === '' ? value : `${cookie}; ${value}`;
      continue;
    }
    if (name === 'content-length') {
      const n = /^\d{1,15}$/.test(value) ? Number(value) : -1;
      if (n < 0 || (contentLength !== -1 && contentLength !== n)) return malformed('bad content-length');
      contentLength = n;
    }
    lines += `${name}: ${value}\r\n`;
  }
  if (method === '') return { ok: false, status: 400, why: 'no :method' };
  if (method === 'CONNECT') return { ok: false, status: 405, why: 'CONNECT over HTTP/2 is not supported' };
  if (!LOWER_TOKEN.test(method.toLowerCase())) return malformed('bad :method');
  if (path === '') return { ok: false, status: 400, why: 'no :path' };
  if (BAD_TARGET.test(path)) return malformed('bad :path');
  // RFC 9113 8.3.1: origin-form, or `*` for OPTIONS. An absolute-form :path would reach the client code as an
  // absolute-form target, whose host overrides :authority in routing.
  if (path.charCodeAt(0) !== 0x2f && !(path === '*' && method === 'OPTIONS')) return malformed(':path not in origin form');
  if (scheme === '') return malformed('no :scheme');
  if (authority === '') authority = host;
  if (authority === '') return { ok: false, status: 400, why: 'no :authority' };
  if (BAD_TARGET.test(authority)) return malformed('bad :authority');
  if (endStream && contentLength > 0) return malformed('content-length without DATA');
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${authority}\r\n${lines}`;
  if (cookie !== '') head += `cookie: ${cookie}\r\n`;
  const chunkedBody = !endStream && contentLength === -1;
  if (chunkedBody) head += 'transfer-encoding: chunked\r\n';
  head += 'Connection: close\r\n\r\n';
  return { ok: true, head, method, chunkedBody, contentLength };
}

/**
 * Request trailers a stream must be reset for (RFC 9113 8.1, 8.2): a pseudo-header, a name that is not a lowercase
 * token, a connection-specific field, CR, LF or NUL in a value.
 */
export function malformedTrailers(fields: readonly string[]): boolean {
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (!LOWER_TOKEN.test(name) || CONNECTION_SPECIFIC.has(name) || BAD_VALUE.test(fields[i + 1]!)) return true;
  }
  return false;
}

function malformed(why: string): H2RequestFromList {
  return { ok: false, status: 0, why };
}

export type BodyFraming = { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' } | { kind: 'none' };

export interface H2ResponseHead {
  status: number;
  /**
   * node:http2's raw header list: `[':status', '200', name, value, ...]`, lowercased names, connection-specific ones
   * dropped, a repeated field repeated. Raw, because `stream.respond(object)` copies the object and walks its keys
   * once more before the same validation (buildNgHeaderString) both forms get.
   */
  headers: string[];
  framing: BodyFraming;
}

/**
 * Parses the HTTP/1.1 response head tsbal wrote (`HTTP/1.1 200 OK` ... blank line) into an HTTP/2 header list and
 * its body framing. `method`: HEAD responses have no body whatever their Content-Length.
 * Per HTTP/2 response: one scan of the text with indexOf, no line array, no regex (this ran once per stream and was
 * the biggest of tsbal's own functions in the h2load profile).
 */
export function responseHead(text: string, method: string): H2ResponseHead | null {
  // `HTTP/1.0 ` or `HTTP/1.1 ` and three digits.
  if (!text.startsWith('HTTP/1.') || (text.charCodeAt(7) !== 0x30 && text.charCodeAt(7) !== 0x31) || text.charCodeAt(8) !== 0x20) return null;
  const d0 = text.charCodeAt(9) - 0x30;
  const d1 = text.charCodeAt(10) - 0x30;
  const d2 = text.charCodeAt(11) - 0x30;
  if (!(d0 >= 0 && d0 <= 9 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9)) return null;
  const status = d0 * 100 + d1 * 10 + d2;
  const headers: string[] = [':status', text.slice(9, 12)];
  let length: number | null = null;
  let chunked = false;
  const n = text.length;
  let eol = text.indexOf('\r\n', 12);
  while (eol !== -1 && eol < n) {
    const start = eol + 2;
    eol = text.indexOf('\r\n', start);
    const stop = eol === -1 ? n : eol;
    if (stop === start) continue;
    const colon = text.indexOf(':', start);
    if (colon <= start || colon > stop) return null;
    const name = lowerName(text.slice(start, colon).trim());
    const value = text.slice(colon + 1, stop).trim();
    if (name === 'content-length') length = Number(value);
    else if (name === 'transfer-encoding' && /chunked/i.test(value)) chunked = true;
    if (CONNECTION_SPECIFIC.has(name)) continue;
    headers.push(name, value);
  }
  const bodyless = method === 'HEAD' || status === 204 || status === 304 || status < 200;
  const framing: BodyFraming = bodyless ? NO_BODY : chunked ? CHUNKED : length !== null ? { kind: 'length', length } : CLOSE_DELIMITED;
  return { status, headers, framing };
}

const NO_BODY: BodyFraming = { kind: 'none' };
const CHUNKED: BodyFraming = { kind: 'chunked' };
const CLOSE_DELIMITED: BodyFraming = { kind: 'close' };

/** Lowercased field names seen before (the same few dozen on every response), bounded. */
const LOWER_NAMES = new Map<string, string>();
const LOWER_NAMES_MAX = 512;

function lowerName(name: string): string {
  const known = LOWER_NAMES.get(name);
  if (known !== undefined) return known;
  const lower = name.toLowerCase();
  if (LOWER_NAMES.size < LOWER_NAMES_MAX) LOWER_NAMES.set(name, lower);
  return lower;
}
