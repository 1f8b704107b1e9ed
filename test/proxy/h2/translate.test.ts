// HTTP/2 <-> HTTP/1.1 translation and the rapid-reset guard: pure, no sockets.
import { describe, expect, test } from 'bun:test';
import { requestHeadFromList, responseHead } from '../../../src/proxy/h2/translate.ts';
import { newResetGuard, noteEarlyReset } from '../../../src/proxy/h2/guard.ts';

describe('requestHeadFromList', () => {
  test('pseudo-headers become the request line and Host; cookie crumbs are joined; te: trailers kept', () => {
    const r = requestHeadFromList([':method', 'GET', ':scheme', 'https', ':authority', 'site.test', ':path', '/a?b=1', 'cookie', 'x=1', 'user-agent', 'ua', 'cookie', 'y=2', 'te', 'trailers'], true);
    expect(r).toEqual({ ok: true, method: 'GET', chunkedBody: false, contentLength: -1, head: 'GET /a?b=1 HTTP/1.1\r\nHost: site.test\r\nuser-agent: ua\r\nte: trailers\r\ncookie: x=1; y=2\r\nConnection: close\r\n\r\n' });
  });
  test('a body without content-length is sent chunked; with one it keeps it', () => {
    const post = [':method', 'POST', ':scheme', 'https', ':authority', 'a', ':path', '/'];
    expect(requestHeadFromList(post, false)).toMatchObject({ ok: true, chunkedBody: true, head: expect.stringContaining('transfer-encoding: chunked\r\n') });
    const withLength = requestHeadFromList([...post, 'content-length', '3'], false);
    expect(withLength).toMatchObject({ ok: true, chunkedBody: false, contentLength: 3 });
    expect(withLength.ok && withLength.head).not.toContain('chunked');
  });
  test('CONNECT is 405; a missing :path or :authority is 400', () => {
    expect(requestHeadFromList([':method', 'CONNECT', ':authority', 'a:443'], true)).toMatchObject({ ok: false, status: 405 });
    expect(requestHeadFromList([':method', 'GET', ':scheme', 'https', ':authority', 'a'], true)).toMatchObject({ ok: false, status: 400 });
    expect(requestHeadFromList([':method', 'GET', ':scheme', 'https', ':path', '/'], true)).toMatchObject({ ok: false, status: 400 });
  });
});

describe('responseHead', () => {
  test('status, lowercased fields, repeated ones repeated, connection fields dropped, framing', () => {
    const r = responseHead('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 5', 'GET');
    expect(r).toEqual({
      status: 200,
      headers: [':status', '200', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'content-length', '5'],
      framing: { kind: 'length', length: 5 },
    });
    expect(responseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked', 'GET')?.framing).toEqual({ kind: 'chunked' });
    expect(responseHead('HTTP/1.0 200 OK\r\nServer: x', 'GET')?.framing).toEqual({ kind: 'close' });
  });
  test('HEAD, 204 and 304 have no body whatever their Content-Length', () => {
    expect(responseHead('HTTP/1.1 200 OK\r\nContent-Length: 9', 'HEAD')?.framing).toEqual({ kind: 'none' });
    expect(responseHead('HTTP/1.1 304 Not Modified\r\nContent-Length: 9', 'GET')?.framing).toEqual({ kind: 'none' });
  });
  test('not an HTTP/1.x status line: null', () => {
    expect(responseHead('garbage', 'GET')).toBeNull();
  });
});

describe('rapid-reset guard', () => {
  test('more than `limit` early resets within the window cut the session; spread out they do not', () => {
    const g = newResetGuard(3, 1000);
    expect([0, 10, 20].map((t) => noteEarlyReset(g, t))).toEqual([false, false, false]);
    expect(noteEarlyReset(g, 30)).toBe(true);
    const spread = newResetGuard(3, 1000);
    expect([0, 400, 800, 1200, 1600, 2000].map((t) => noteEarlyReset(spread, t))).toEqual([false, false, false, false, false, false]);
  });
});
