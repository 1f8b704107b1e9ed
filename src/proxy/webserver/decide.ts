// What a web_server answers for a file or directory it found (Perlbal's _serve_request after the stat, and
// try_index_files' listing): status, header fields in Perlbal's order, and which bytes of the file go out.
// Pure: the file's facts and the request's fields in, the response as data out.
import { reasonPhrase } from '../http/status.ts';
import { contentType } from './mime.ts';

export type Field = readonly [string, string];

export type RangeDecision = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * One `bytes=a-b` range (Perlbal's HTTPHeaders range): anything else, several ranges included, means the whole file.
 * Perlbal reads `bytes=-N` as bytes 0..N; tsbal serves the last N bytes, as RFC 9110 says (a resumed download or a
 * media player would otherwise get the wrong bytes).
 */
export function decideRange(header: string | null, size: number): RangeDecision {
  const m = header === null ? null : /^bytes=(\d*)-(\d*)$/.exec(header);
  if (m === null || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? null : Number(m[2]);
  if ((end !== null && start > end) || size <= start) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: end === null || end >= size ? size - 1 : end };
}

/** HTTP::Date::time2str: `Thu, 26 Nov 2026 03:30:39 GMT`. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/**
 * Perlbal's If-Modified-Since test: the exact Last-Modified string (no date parsing), with IE's `; length=N`
 * suffix removed and, when given and non-zero, required to match the size.
 */
export function notModified(ims: string | null, lastModified: string, size: number): boolean {
  if (ims === null || ims === '') return false;
  let len: number | null = null;
  const bare = ims.replace(/; length=(\d+)/, (_, n: string) => {
    len = Number(n);
    return '';
  });
  if (bare !== lastModified) return false;
  return len === null || len === 0 || len === size;
}

export interface FileFacts {
  /** The path served (its extension picks the Content-Type). */
  path: string;
  size: number;
  mtimeMs: number;
}

export interface FileRequest {
  ims: string | null;
  range: string | null;
  nowMs: number;
  serverTokens: boolean;
}

export interface FileAnswer {
  status: 200 | 206 | 304 | 416;
  /** Fields before Connection/Keep-Alive, in Perlbal's order. */
  fields: Field[];
  /** Bytes of the file to send (inclusive end); null when no body goes out (304, 416). */
  body: { start: number; end: number } | null;
}

export function fileAnswer(f: FileFacts, r: FileRequest): FileAnswer {
  const lastModified = httpDate(Math.floor(f.mtimeMs / 1000) * 1000);
  const common: Field[] = [['Date', httpDate(r.nowMs)]];
  if (r.serverTokens) common.push(['Server', 'tsbal']);
  common.push(['Last-Modified', lastModified], ['Accept-Ranges', 'bytes']);
  if (notModified(r.ims, lastModified, f.size)) return { status: 304, fields: common, body: null };
  const range = decideRange(r.range, f.size);
  if (range.kind === 'unsatisfiable') {
    // Perlbal sets these two before the common fields.
    return { status: 416, fields: [['Content-Range', `bytes */${f.size}`], ['Content-Length', '0'], ...common], body: null };
  }
  const type: Field = ['Content-Type', contentType(f.path)];
  if (range.kind === 'full') {
    return { status: 200, fields: [...common, type, ['Content-Length', String(f.size)]], body: { start: 0, end: f.size - 1 } };
  }
  const { start, end } = range;
  return {
    status: 206,
    fields: [...common, type, ['Content-Range', `bytes ${start}-${end}/${f.size}`], ['Content-Length', String(end - start + 1)]],
    body: { start, end },
  };
}

export interface Connection {
  keepAlive: boolean;
  keepAliveTimeoutSec: number;
}

/** Status line (HTTP/1.1, as every response tsbal sends), the fields, then Perlbal's connection fields. */
export function responseHead(status: number, fields: readonly Field[], conn: Connection): Buffer {
  let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
  for (const [name, value] of fields) head += `${name}: ${value}\r\n`;
  if (conn.keepAlive) {
    head += 'Connection: keep-alive\r\n';
    if (conn.keepAliveTimeoutSec > 0) head += `Keep-Alive: timeout=${conn.keepAliveTimeoutSec}, max=100\r\n`;
  } else {
    head += 'Connection: close\r\n';
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&#39;', '"': '&quot;' };
const escapeHtml = (s: string): string => s.replace(/[&<>'"]/g, (ch) => ESCAPES[ch]!);

export interface DirEntry {
  name: string;
  isDir: boolean;
}

/**
 * Perlbal's dirindexing page: `.` and `..` included, names in byte order, directories in bold. Perlbal does not
 * escape names (a file named `<script>…` runs in the visitor's browser); tsbal HTML-escapes them.
 */
export function listingPage(uri: string, entries: readonly DirEntry[]): string {
  const base = escapeHtml(uri.replace(/\/*$/, '/'));
  const all = [{ name: '.', isDir: true }, { name: '..', isDir: true }, ...entries];
  all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let body = '<html><body>';
  for (const e of all) {
    const n = escapeHtml(e.name);
    body += e.isDir ? `<b><a href='${base}${n}/'>${n}</a></b><br />\n` : `<a href='${base}${n}'>${n}</a><br />\n`;
  }
  return `${body}</body></html>`;
}

/** The listing's response fields (Perlbal reuses the directory's Date/Server/Last-Modified). */
export function listingFields(dirMtimeMs: number, nowMs: number, serverTokens: boolean, length: number): Field[] {
  const fields: Field[] = [['Date', httpDate(nowMs)]];
  if (serverTokens) fields.push(['Server', 'tsbal']);
  fields.push(['Last-Modified', httpDate(Math.floor(dirMtimeMs / 1000) * 1000)], ['Content-Type', 'text/html'], ['Content-Length', String(length)]);
  return fields;
}
