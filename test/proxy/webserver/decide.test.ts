import { describe, expect, test } from 'bun:test';
import { decideRange, fileAnswer, listingPage, notModified, responseHead } from '../../../src/proxy/webserver/decide.ts';
import { contentType } from '../../../src/proxy/webserver/mime.ts';
import { concatRefusal, isInside, percentDecode, resolveTarget } from '../../../src/proxy/webserver/path.ts';

describe('request target to path', () => {
  test('%XX is decoded (not +), the query is chopped after decoding, as Perlbal durl', () => {
    expect(percentDecode('/a%20b+c%2F%zz')).toBe('/a b+c/%zz');
    expect(resolveTarget('/a.txt?x=1')).toEqual({ kind: 'path', uri: '/a.txt' });
    expect(resolveTarget('/a.txt%3Fx')).toEqual({ kind: 'path', uri: '/a.txt' });
  });

  test('every way of spelling a .. segment, a NUL, or a target not starting with / is 403 Bogus URL', () => {
    const bogus = { kind: 'page', status: 403, message: 'Bogus URL' } as const;
    for (const t of ['/../etc/passwd', '/a/../../x', '/%2e%2e/x', '/%2E%2e%2fx', '/..', '/a/..', '/a/%2e%2e', '/%2e%2e', 'a.txt', '*', '/a%00.txt', '/a%2F..%2Fb', '/..?q'])
      expect([t, resolveTarget(t)] as const).toEqual([t, bogus]);
  });

  test('names that merely contain dots are files', () => {
    expect(resolveTarget('/a..b/...')).toEqual({ kind: 'path', uri: '/a..b/...' });
    expect(resolveTarget('/.hidden')).toEqual({ kind: 'path', uri: '/.hidden' });
  });

  test('?? concatenation: a base not ending in / is 500; the list split on commas, a trailing ?query and empty tail cut', () => {
    expect(resolveTarget('/x??a.css')).toEqual({ kind: 'page', status: 500, message: 'Base directory (before ??) must end in slash.' });
    expect(resolveTarget('/x/??a.css,b.css')).toEqual({ kind: 'concat', base: '/x/', files: ['a.css', 'b.css'] });
    expect(resolveTarget('/x/??a.css,sub/b.css,?v=123')).toEqual({ kind: 'concat', base: '/x/', files: ['a.css', 'sub/b.css'] });
    expect(resolveTarget('/x/??y/??a.css')).toEqual({ kind: 'concat', base: '/x/??y/', files: ['a.css'] });
  });

  test('?? concatenation is checked in Perlbal order: docroot, enabled, at most 100 files, no .. anywhere', () => {
    const t = (files: string[], base = '/x/') => ({ base, files });
    expect(concatRefusal(t(['a.css']), '', true)).toEqual({ status: 500, message: 'Docroot unconfigured' });
    expect(concatRefusal(t(['a.css']), '/srv', false)).toEqual({ status: 403, message: "Multiple file serving isn't enabled" });
    expect(concatRefusal(t(Array.from({ length: 101 }, (_, i) => `${i}.css`)), '/srv', true)).toEqual({ status: 403, message: 'Too many files requested' });
    for (const bad of ['../etc/passwd', 'a/../../b', '..', 'sub/..', 'a\0b']) {
      expect([bad, concatRefusal(t([bad]), '/srv', true)]).toEqual([bad, { status: 403, message: 'Bogus filenames' }]);
    }
    expect(concatRefusal(t(['a.css', 'sub/b.js', '.hidden']), '/srv', true)).toBeNull();
  });

  test('containment: the root itself and paths below it, not siblings sharing a prefix', () => {
    expect(isInside('/srv/www', '/srv/www')).toBe(true);
    expect(isInside('/srv/www', '/srv/www/a')).toBe(true);
    expect(isInside('/srv/www', '/srv/www2/a')).toBe(false);
    expect(isInside('/srv/www', '/srv')).toBe(false);
    expect(isInside('/', '/etc/passwd')).toBe(true);
  });
});

describe('mime', () => {
  test("Perlbal's table, case-sensitive extension, text/plain otherwise", () => {
    expect(['a.html', 'a.css', 'a.js', 'a.png', 'a.tiff', 'a.torrent', 'a.HTML', 'a', 'a.svg', 'dir.d/x'].map(contentType)).toEqual([
      'text/html', 'text/css', 'application/x-javascript', 'image/png', 'image/tiff', 'application/x-bittorrent', 'text/plain', 'text/plain', 'text/plain', 'text/plain',
    ]);
  });
});

describe('ranges', () => {
  test('single ranges as Perlbal: open end, end clamped to the size', () => {
    expect(decideRange('bytes=0-4', 10)).toEqual({ kind: 'partial', start: 0, end: 4 });
    expect(decideRange('bytes=5-', 10)).toEqual({ kind: 'partial', start: 5, end: 9 });
    expect(decideRange('bytes=5-100', 10)).toEqual({ kind: 'partial', start: 5, end: 9 });
  });
  test('unsatisfiable: start past the end, start > end, -0', () => {
    for (const r of ['bytes=10-', 'bytes=5-4', 'bytes=-0']) expect([r, decideRange(r, 10)]).toEqual([r, { kind: 'unsatisfiable' }]);
  });
  test('a suffix range is the last N bytes (Perlbal: the first N+1)', () => {
    expect(decideRange('bytes=-3', 10)).toEqual({ kind: 'partial', start: 7, end: 9 });
    expect(decideRange('bytes=-30', 10)).toEqual({ kind: 'partial', start: 0, end: 9 });
  });
  test('several ranges, other units, garbage and no header mean the whole file', () => {
    for (const r of ['bytes=0-1,3-4', 'items=0-1', 'bytes=-', 'bytes = 0-1', null]) expect(decideRange(r, 10)).toEqual({ kind: 'full' });
  });
});

describe('file answers', () => {
  const mtimeMs = Date.UTC(2020, 0, 2, 3, 4, 5, 678);
  const lm = 'Thu, 02 Jan 2020 03:04:05 GMT';
  const f = { path: '/d/a.html', size: 10, mtimeMs };
  const r = { ims: null, range: null, nowMs: Date.UTC(2021, 0, 1), serverTokens: true };

  test('200: Perlbal field order, Content-Type by extension', () => {
    expect(fileAnswer(f, r)).toEqual({
      status: 200,
      fields: [['Date', 'Fri, 01 Jan 2021 00:00:00 GMT'], ['Server', 'tsbal'], ['Last-Modified', lm], ['Accept-Ranges', 'bytes'], ['Content-Type', 'text/html'], ['Content-Length', '10']],
      body: { start: 0, end: 9 },
    });
  });

  test('If-Modified-Since equal to Last-Modified (string compare, IE length suffix checked) is 304 without entity fields', () => {
    expect(notModified(lm, lm, 10)).toBe(true);
    expect(notModified(`${lm}; length=10`, lm, 10)).toBe(true);
    expect(notModified(`${lm}; length=11`, lm, 10)).toBe(false);
    expect(notModified('Thu, 02 Jan 2020 03:04:06 GMT', lm, 10)).toBe(false);
    const a = fileAnswer(f, { ...r, ims: lm, range: 'bytes=0-1' });
    expect([a.status, a.body, a.fields.map(([n]) => n)]).toEqual([304, null, ['Date', 'Server', 'Last-Modified', 'Accept-Ranges']]);
  });

  test('206 and 416 carry Content-Range; 416 puts it first, as Perlbal', () => {
    const p = fileAnswer(f, { ...r, range: 'bytes=2-3' });
    expect([p.status, p.body, p.fields.slice(4)]).toEqual([206, { start: 2, end: 3 }, [['Content-Type', 'text/html'], ['Content-Range', 'bytes 2-3/10'], ['Content-Length', '2']]]);
    const u = fileAnswer(f, { ...r, range: 'bytes=20-' });
    expect([u.status, u.body, u.fields.slice(0, 2)]).toEqual([416, null, [['Content-Range', 'bytes */10'], ['Content-Length', '0']]]);
  });

  test('server_tokens off drops Server; the head ends with the connection fields', () => {
    const a = fileAnswer(f, { ...r, serverTokens: false });
    expect(a.fields.some(([n]) => n === 'Server')).toBe(false);
    expect(responseHead(200, [['A', 'b']], { keepAlive: true, keepAliveTimeoutSec: 30 }).toString()).toBe(
      'HTTP/1.1 200 OK\r\nA: b\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n',
    );
    expect(responseHead(416, [], { keepAlive: false, keepAliveTimeoutSec: 30 }).toString()).toBe('HTTP/1.1 416 Range Not Satisfiable\r\nConnection: close\r\n\r\n');
  });
});

describe('directory listing', () => {
  test("Perlbal's page: . and .. first, byte order, directories bold, one trailing slash", () => {
    expect(listingPage('/d//', [{ name: 'b', isDir: false }, { name: 'A', isDir: true }])).toBe(
      "<html><body><b><a href='/d/./'>.</a></b><br />\n<b><a href='/d/../'>..</a></b><br />\n<b><a href='/d/A/'>A</a></b><br />\n<a href='/d/b'>b</a><br />\n</body></html>",
    );
  });
  test('names are HTML-escaped (Perlbal writes them raw)', () => {
    expect(listingPage('/', [{ name: "<x'>", isDir: false }])).toContain("<a href='/&lt;x&#39;&gt;'>&lt;x&#39;&gt;</a>");
  });
});
