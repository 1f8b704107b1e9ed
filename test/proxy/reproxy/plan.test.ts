// enable_reproxy's pure part: URL lists as Perlbal splits them, which instruction a backend answer carries, and the
// reproxy-URL cache (entries from X-Reproxy-Cache-For, expiry, least recently used out first).
import { describe, expect, test } from 'bun:test';
import { newFields, type Fields } from '../../../src/proxy/http/fields.ts';
import { parseResponseHead } from '../../../src/proxy/http/response.ts';
import {
  cacheEntry,
  cacheGet,
  cachePut,
  newReproxyCache,
  parseReproxyUrls,
  reproxyInstruction,
  setField,
  type Field,
} from '../../../src/proxy/reproxy/plan.ts';

function fields(head: string): Fields {
  const f: Fields = newFields();
  const b = Buffer.from(head, 'latin1');
  const r = parseResponseHead(b, 0, b.indexOf('\r\n\r\n'), 'GET', { maxHeaderSize: 65536, maxHeaderCount: 100, maxUrlLength: 8192 }, f);
  if (r.kind !== 'response') throw new Error(`unparsable test head: ${JSON.stringify(r)}`);
  return r.fields;
}

describe('parseReproxyUrls', () => {
  test('splits on whitespace, defaults port 80 and path /, skips what is not http://', () => {
    expect(parseReproxyUrls('http://a.example:8080/x/y?q=1  http://b.example https://c.example/z ftp://d/')).toEqual([
      { host: 'a.example', port: 8080, path: '/x/y?q=1' },
      { host: 'b.example', port: 80, path: '/' },
    ]);
  });
});

describe('reproxyInstruction', () => {
  test('X-Reproxy-File wins over X-Reproxy-URL; X-Reproxy-Expected-Size is read, 0 meaning none', () => {
    expect(reproxyInstruction(fields('HTTP/1.1 200 OK\r\nX-REPROXY-URL: http://h/a\r\nx-reproxy-file: /d/f\r\nX-Reproxy-Expected-Size: 12\r\n\r\n'))).toEqual({
      kind: 'file',
      path: '/d/f',
      expectedSize: 12,
    });
    expect(reproxyInstruction(fields('HTTP/1.1 200 OK\r\nX-Reproxy-URL: http://h:81/a http://g/b\r\nX-Reproxy-Expected-Size: 0\r\n\r\n'))).toEqual({
      kind: 'url',
      targets: [{ host: 'h', port: 81, path: '/a' }, { host: 'g', port: 80, path: '/b' }],
      expectedSize: null,
      urls: 'http://h:81/a http://g/b',
    });
  });
  test('an answer without reproxy fields (or with empty ones) asks for nothing', () => {
    expect(reproxyInstruction(fields('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'))).toBeNull();
    expect(reproxyInstruction(fields('HTTP/1.1 200 OK\r\nX-Reproxy-File:\r\nX-Reproxy-Cache-For: 5\r\n\r\n'))).toBeNull();
  });
});

describe('setField', () => {
  test('replaces the first occurrence in place (keeping its name case) and drops repeats, or appends', () => {
    const f: Field[] = [['content-length', '0'], ['X-A', '1'], ['Content-Length', '9']];
    setField(f, 'Content-Length', '17');
    setField(f, 'Accept-Ranges', 'bytes');
    expect(f).toEqual([['content-length', '17'], ['X-A', '1'], ['Accept-Ranges', 'bytes']]);
  });
});

describe('the reproxy-URL cache', () => {
  const res = fields('HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nLast-Modified: Mon, 07 Dec 2026 10:00:00 GMT\r\nX-Secret: s\r\n\r\n');
  test('an entry keeps the fields X-Reproxy-Cache-For names (never framing or reproxy ones) for its seconds', () => {
    expect(cacheEntry('30; Content-Type last-modified Content-Length X-Reproxy-URL Missing', res, 'http://h/a', 1000)).toEqual({
      expiresMs: 31_000,
      fields: [['Content-Type', 'image/png'], ['last-modified', 'Mon, 07 Dec 2026 10:00:00 GMT']],
      urls: 'http://h/a',
    });
  });
  test('no seconds, 0 or garbage: not cached', () => {
    expect(cacheEntry('0; Content-Type', res, 'u', 0)).toBeNull();
    expect(cacheEntry('; Content-Type', res, 'u', 0)).toBeNull();
    expect(cacheEntry('soon', res, 'u', 0)).toBeNull();
  });
  test('expired entries are not served; the least recently used goes first when full', () => {
    const cache = newReproxyCache(2)!;
    const e = (exp: number) => ({ expiresMs: exp, fields: [], urls: 'u' });
    cachePut(cache, 'a', e(100));
    cachePut(cache, 'b', e(100));
    expect(cacheGet(cache, 'a', 50)).not.toBeNull(); // a is now the most recent
    cachePut(cache, 'c', e(100));
    expect([...cache.entries.keys()]).toEqual(['a', 'c']);
    expect(cacheGet(cache, 'a', 101)).toBeNull();
    expect(cache.entries.has('a')).toBe(false);
    expect(newReproxyCache(0)).toBeNull();
  });
});
