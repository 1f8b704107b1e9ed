import { describe, expect, test } from 'bun:test';
import { parseRequestHead, requestTarget, type HeadError, type RequestHead } from '../../../src/proxy/http/request.ts';
import { fieldList } from '../../../src/proxy/http/fields.ts';

const limits = { maxHeaderSize: 65536, maxHeaderCount: 100, maxUrlLength: 8192 };

/** `raw` is the head as sent, ending with CRLFCRLF. */
function req(raw: string, l = limits): RequestHead | HeadError {
  expect(raw.endsWith('\r\n\r\n')).toBe(true);
  return parseRequestHead(Buffer.from(raw, 'latin1'), 0, raw.length - 4, l);
}
function ok(raw: string): RequestHead {
  const r = req(raw);
  if (r.kind === 'error') throw new Error(`expected a parsed request, got ${r.status} ${r.reason}`);
  return r;
}
function refused(raw: string): number {
  const r = req(raw);
  if (r.kind !== 'error') throw new Error(`expected a refusal, got a parsed ${r.method} ${requestTarget(r)}`);
  return r.status;
}
describe('request head', () => {
  test('parses a simple GET keeping header names as sent', () => {
    const r = ok('GET /hello?x=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n');
    expect(r.method).toBe('GET');
    expect(requestTarget(r)).toBe('/hello?x=1');
    expect(r.minor).toBe(1);
    expect(fieldList(r.fields)).toEqual({
      names: ['Host', 'User-Agent', 'Accept'],
      lower: ['host', 'user-agent', 'accept'],
      values: ['Example.COM:8080', 'curl/7.88.1', '*/*'],
    });
    expect([r.host, r.hostIndex]).toEqual([null, 0]);
    expect(r.framing).toEqual({ kind: 'none' });
  });

  test('trims optional whitespace around field values but keeps inner spaces and tabs', () => {
    const r = ok('GET / HTTP/1.1\r\nHost: a\r\nX-A: \t one  two\t \r\nX-Empty:\r\n\r\n');
    expect(fieldList(r.fields).values).toEqual(['a', 'one  two', '']);
  });

  test('reduces an absolute-form target to its path and takes the host from it', () => {
    const r = ok('GET http://Abs.Example.com:81/f?q=1 HTTP/1.1\r\nHost: other\r\n\r\n');
    expect(requestTarget(r)).toBe('/f?q=1');
    expect(r.host).toBe('abs.example.com');
    expect(r.hostFromTarget).toBe(true);
    expect(ok('GET http://h HTTP/1.1\r\nHost: h\r\n\r\n').target).toBe('/');
    expect(ok('GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n').target).toBe('/?x');
  });

  test('accepts HTTP/1.0 without Host, and treats HTTP/1.x (x>1) as 1.1', () => {
    expect(ok('GET / HTTP/1.0\r\n\r\n').minor).toBe(0);
    expect(ok('GET / HTTP/1.2\r\nHost: a\r\n\r\n').minor).toBe(1);
  });

  test('decides framing from Content-Length or chunked', () => {
    expect(ok('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n').framing).toEqual({ kind: 'length', length: 5 });
    expect(ok('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n').framing).toEqual({ kind: 'none' });
    expect(ok('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n').framing).toEqual({ kind: 'length', length: 7 });
    expect(ok('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n').framing).toEqual({ kind: 'chunked' });
  });

  test('reads Connection tokens, Expect and Upgrade', () => {
    const r = ok('GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade, X-Secret\r\nUpgrade: websocket\r\n\r\n');
    expect(r.connection).toEqual({ close: false, keepAlive: true, upgrade: true, extra: ['x-secret'] });
    expect(r.upgrade).toBe('websocket');
    expect(ok('GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n').upgrade).toBeNull();
    expect(ok('PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n').expectContinue).toBe(true);
    expect(ok('PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n').expectContinue).toBe(false);
  });

  test('each head keeps its own Connection reading; only readings without extra tokens are shared records', () => {
    const close = ok('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    const ka = ok('GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n');
    const both = ok('GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nConnection: close\r\nUpgrade: h2c\r\n\r\n');
    const extra1 = ok('GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-A\r\n\r\n');
    const extra2 = ok('GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-B\r\n\r\n');
    expect(close.connection).toEqual({ close: true, keepAlive: false, upgrade: false, extra: null });
    expect(ka.connection).toEqual({ close: false, keepAlive: true, upgrade: false, extra: null });
    expect(both.connection).toEqual({ close: true, keepAlive: false, upgrade: true, extra: null });
    expect(ok('GET / HTTP/1.1\r\nHost: a\r\n\r\n').connection).toEqual({ close: false, keepAlive: false, upgrade: false, extra: null });
    expect(ok('GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n').connection).toBe(close.connection);
    expect([extra1.connection.extra, extra2.connection.extra]).toEqual([['x-a'], ['x-b']]);
  });

  test('accepts OPTIONS * and no other asterisk-form', () => {
    expect(requestTarget(ok('OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n'))).toBe('*');
    expect(refused('GET * HTTP/1.1\r\nHost: a\r\n\r\n')).toBe(400);
  });

  // Each case: the request and the status nginx-level strictness requires.
  const refusals: Array<[string, string, number]> = [
    ['CL and TE together', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['TE and CL together (other order)', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n', 400],
    ['duplicate identical Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n', 400],
    ['differing Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 400],
    ['Content-Length list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 5\r\n\r\n', 400],
    ['Content-Length hex', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x05\r\n\r\n', 400],
    ['Content-Length signed', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n', 400],
    ['Content-Length negative', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400],
    ['Content-Length empty', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n', 400],
    ['Content-Length huge', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n', 400],
    ['TE gzip', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', 501],
    ['TE gzip, chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
    ['TE chunked twice', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 501],
    ['TE identity', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n', 501],
    ['TE xchunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n', 501],
    ['TE with vertical tab', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n', 400],
    ['TE in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['space before colon', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n', 400],
    ['tab before colon', 'GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n', 400],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n', 400],
    ['obs-fold with tab', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n', 400],
    ['bare LF between headers', 'GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n', 400],
    ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n', 400],
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n', 400],
    ['DEL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n', 400],
    ['escape in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: \x1b[31m\r\n\r\n', 400],
    ['header without colon', 'GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n', 400],
    ['empty header name', 'GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n', 400],
    ['bad char in header name', 'GET / HTTP/1.1\r\nHost: a\r\nX(A): v\r\n\r\n', 400],
    ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\nX: y\r\n\r\n', 400],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['Host with a space', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 400],
    ['Host with a slash', 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', 400],
    ['double space in request line', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['trailing space in request line', 'GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 400],
    ['HTTP/0.9', 'GET /\r\n\r\n', 400],
    ['lowercase version', 'GET / http/1.1\r\nHost: a\r\n\r\n', 400],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505],
    ['h2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'.slice(0, 18), 505],
    ['method with bad char', 'G(T / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['relative target', 'GET foo HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['ftp absolute target', 'GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['userinfo in absolute target', 'GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', 405],
    ['unknown expectation', 'GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n', 417],
  ];
  for (const [name, raw, status] of refusals) {
    test(`refuses ${name} with ${status}`, () => {
      expect(refused(raw)).toBe(status);
    });
  }

  test('refuses an over-long target with 414 and too many or too large headers with 431', () => {
    const small = { maxHeaderSize: 200, maxHeaderCount: 3, maxUrlLength: 20 };
    const r1 = req(`GET /${'a'.repeat(20)} HTTP/1.1\r\nHost: a\r\n\r\n`, small);
    expect(r1.kind === 'error' && r1.status).toBe(414);
    const r2 = req('GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n', small);
    expect(r2.kind === 'error' && r2.status).toBe(431);
    const r3 = req(`GET / HTTP/1.1\r\nHost: a\r\nA: ${'x'.repeat(200)}\r\n\r\n`, small);
    expect(r3.kind === 'error' && r3.status).toBe(431);
  });

  test('a target so long that the head is also over max_header_size is still a 414, not a 431', () => {
    const small = { maxHeaderSize: 200, maxHeaderCount: 3, maxUrlLength: 20 };
    const r = req(`GET /${'a'.repeat(300)} HTTP/1.1\r\nHost: a\r\n\r\n`, small);
    expect(r.kind === 'error' && [r.status, r.reason]).toEqual([414, 'request target too long']);
  });

  test('keeps obs-text (bytes 0x80-0xFF) in values and targets, as latin1', () => {
    const r = ok('GET /caf\xe9 HTTP/1.1\r\nHost: a\r\nX-Name: \xe9t\xe9\r\n\r\n');
    expect(requestTarget(r)).toBe('/caf\xe9');
    expect(fieldList(r.fields).values[1]).toBe('\xe9t\xe9');
  });
});

