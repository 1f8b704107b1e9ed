// The kept check connection's answer reader: where an answer ends (length, chunks, none), in any split, and when
// the connection must not carry another check.
import { describe, expect, test } from 'bun:test';
import { feedCheckResponse, newCheckResponseReader, resetCheckResponse } from '../../../src/proxy/upstream/check-response.ts';

function feedSplit(text: string, at: number[], method = 'GET') {
  const r = newCheckResponseReader(method);
  const bytes = Buffer.from(text, 'latin1');
  let from = 0;
  for (const cut of [...at, bytes.length]) {
    const part = Buffer.from(bytes.subarray(from, cut));
    feedCheckResponse(r, part, part.length);
    from = cut;
  }
  return r;
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
const CHUNKED = 'HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n';

describe('check answer reader', () => {
  test('a Content-Length answer in one read is complete and leaves the connection reusable', () => {
    const r = feedSplit(OK, []);
    expect([r.status, r.complete, r.reusable]).toEqual([200, true, true]);
  });

  test('every split of a length-framed and a chunked answer gives the same verdict and ends exactly at its end', () => {
    for (const [text, status] of [[OK, 200], [CHUNKED, 503]] as const) {
      for (let a = 1; a < text.length; a++) {
        for (const b of [a + 1, a + 7, text.length - 1]) {
          const r = feedSplit(text, b > a && b < text.length ? [a, b] : [a]);
          expect([r.status, r.complete, r.reusable]).toEqual([status, true, true]);
        }
        // Cut short: the status may be known, the answer is not over.
        const partial = feedSplit(text.slice(0, a), []);
        expect(partial.complete).toBe(false);
      }
    }
  });

  test('the status is known from the head before the body has come', () => {
    const r = feedSplit('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc', []);
    expect([r.status, r.complete]).toEqual([200, false]);
  });

  test('a bodiless answer (HEAD, 204, 304) is complete at its head', () => {
    expect(feedSplit('HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n', [], 'HEAD').complete).toBe(true);
    expect(feedSplit('HTTP/1.1 204 No Content\r\n\r\n', []).reusable).toBe(true);
    expect(feedSplit('HTTP/1.1 304 Not Modified\r\n\r\n', []).complete).toBe(true);
  });

  test('Connection: close, an HTTP/1.0 answer without keep-alive, or a read-until-close body make the connection unfit', () => {
    for (const text of [
      'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
      'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok',
      'HTTP/1.1 200 OK\r\n\r\nbody until close',
    ]) {
      const r = feedSplit(text, []);
      expect([r.status, r.complete, r.reusable]).toEqual([200, true, false]);
    }
    const kept = feedSplit('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok', []);
    expect([kept.status, kept.reusable]).toEqual([200, true]);
  });

  test('bytes after the answer, or a bad chunk, make the connection unfit', () => {
    expect(feedSplit(`${OK}HTTP/1.1 200 OK\r\n`, []).reusable).toBe(false);
    const late = feedSplit(OK, []);
    feedCheckResponse(late, Buffer.from('x'), 1);
    expect(late.reusable).toBe(false);
    const bad = feedSplit('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', []);
    expect([bad.status, bad.complete, bad.reusable]).toEqual([200, true, false]);
  });

  test('what is not an HTTP answer is status -2, complete, not reusable', () => {
    for (const text of ['SSH-2.0-OpenSSH_9.2\r\n\r\n', 'HTTP/1.1 2x0 OK\r\n\r\n']) {
      const r = feedSplit(text, []);
      expect([r.status, r.complete, r.reusable]).toEqual([-2, true, false]);
    }
  });

  test('after a reset the reader takes the next answer on the same connection', () => {
    const r = feedSplit(OK, []);
    resetCheckResponse(r);
    expect([r.status, r.complete]).toEqual([-1, false]);
    const next = Buffer.from(CHUNKED, 'latin1');
    feedCheckResponse(r, next, next.length);
    expect([r.status, r.complete, r.reusable]).toEqual([503, true, true]);
  });
});
