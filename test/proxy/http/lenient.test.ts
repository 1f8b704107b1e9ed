import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { fieldList } from '../../../src/proxy/http/fields.ts';
import { newHeadReader } from '../../../src/proxy/http/head-reader.ts';
import { readResponseHead } from '../../../src/proxy/http/lenient.ts';
import type { ResponseError, ResponseHead } from '../../../src/proxy/http/response.ts';
import { responseSuffixes, writeClientResponseHead } from '../../../src/proxy/http/response-head.ts';
import { newHeadWriter, takeWritten } from '../../../src/proxy/http/writer.ts';

const limits = { maxHeaderSize: 4096, maxHeaderCount: 100, maxUrlLength: 8192 };

/** Feeds the pieces in turn, as separate socket reads; the first non-null answer, or null. */
function read(pieces: string[], method = 'GET'): ResponseHead | ResponseError | null {
  const reader = newHeadReader();
  for (const p of pieces) {
    const r = readResponseHead(reader, Buffer.from(p, 'latin1'), 0, method, limits, null);
    if (r !== null) return r;
  }
  return null;
}

function ok(raw: string | string[], method = 'GET'): ResponseHead {
  const r = read(typeof raw === 'string' ? [raw] : raw, method);
  if (r === null || r.kind === 'error') throw new Error(`expected ${JSON.stringify(raw)} to be read, got ${r === null ? 'incomplete' : r.reason}`);
  return r;
}

/** The head as the strict parser saw it (after any rewrite), and what follows it. */
function head(r: ResponseHead): string {
  return r.fields.buf.toString('latin1', r.lineStart, r.bodyStart);
}
function rest(r: ResponseHead): string {
  return r.fields.buf.toString('latin1', r.bodyStart);
}

/** What the client gets for it (HTTP/1.1 keep-alive client). */
function clientHead(r: ResponseHead): string {
  const w = newHeadWriter();
  writeClientResponseHead(w, r, { suffix: responseSuffixes(30).keepAlive, dechunk: false, upgrade: false }, 0);
  return takeWritten(w).toString('latin1');
}

const REPRO = 'HTTP/1.0 200 OK\nContent-Length: 6\nConnection: keep-alive\n\nhello\n';

describe('lenient backend response heads', () => {
  test('reads the issue-9 reproduction (bare LF everywhere) as HAProxy and nginx do, rewritten with CRLF', () => {
    const r = ok(REPRO);
    expect([r.minor, r.status, r.framing, r.connection.keepAlive, r.normalised]).toEqual([0, 200, { kind: 'length', length: 6 }, true, true]);
    expect(head(r)).toBe('HTTP/1.0 200 OK\r\nContent-Length: 6\r\nConnection: keep-alive\r\n\r\n');
    expect(rest(r)).toBe('hello\n');
    expect(clientHead(r)).toBe('HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n');
  });

  test('reads the same bare-LF head across any split into reads', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: REPRO.length - 1 }), { maxLength: 8 }), (splits) => {
        const cuts = [...new Set([0, ...splits, REPRO.length])].sort((a, b) => a - b);
        const r = ok(cuts.slice(1).map((c, i) => REPRO.slice(cuts[i], c)));
        expect(head(r)).toBe('HTTP/1.0 200 OK\r\nContent-Length: 6\r\nConnection: keep-alive\r\n\r\n');
        // The read that completed the head carries the body bytes that came with it, and no more.
        expect('hello\n'.startsWith(rest(r))).toBe(true);
      }),
    );
  });

  test('waits for more while a bare-LF head has no empty line yet', () => {
    expect(read(['HTTP/1.0 200 OK\nContent-Length: 6\n'])).toBeNull();
    expect(read(['HTTP/1.0 200 OK\nContent-Length: 6\r\n\r'])).toBeNull();
  });

  test('ends the head at the first empty line, LF or CRLF, even when CRLFCRLF comes later in the body', () => {
    const r = ok('HTTP/1.1 200 OK\nContent-Length: 8\n\nab\r\n\r\ncd');
    expect(r.framing).toEqual({ kind: 'length', length: 8 });
    expect(rest(r)).toBe('ab\r\n\r\ncd');
    expect(rest(ok('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok'))).toBe('ok');
    expect(rest(ok('HTTP/1.1 200 OK\nContent-Length: 2\n\r\nok'))).toBe('ok');
  });

  test('reads mixed CRLF and bare-LF lines', () => {
    const r = ok('HTTP/1.1 200 OK\r\nContent-Length: 2\nX-A: 1\r\n\nok');
    expect(fieldList(r.fields).values).toEqual(['2', '1']);
    expect(rest(r)).toBe('ok');
  });

  test('takes several spaces or a tab around the status code (both peers take extra spaces, HAProxy tabs)', () => {
    for (const line of ['HTTP/1.1  200 OK', 'HTTP/1.1\t200 OK', 'HTTP/1.1 200\tOK', 'HTTP/1.1 \t 200  OK']) {
      const r = ok(`${line}\r\nContent-Length: 2\r\n\r\nok`);
      expect([r.status, clientHead(r).split('\r\n')[0]]).toEqual([200, 'HTTP/1.1 200 OK']);
    }
  });

  test('skips empty lines before the status line (as HAProxy does), a few at most', () => {
    expect(ok('\r\nHTTP/1.1 204 No Content\r\n\r\n').status).toBe(204);
    expect(ok(['\n', '\r\n', 'HTTP/1.1 204 No Content\n\n']).status).toBe(204);
    expect(read([`${'\r\n'.repeat(20)}HTTP/1.1 204 No Content\r\n\r\n`])?.kind).toBe('error');
  });

  test('joins obs-fold in an ordinary field, its whitespace as spaces (RFC 9112 5.2; Perlbal and HAProxy do)', () => {
    const r = ok('HTTP/1.1 200 OK\r\nX-Foo: a\r\n \tb\r\nX-Bar: c\n   \nContent-Length: 2\r\n\r\nok');
    expect(fieldList(r.fields).values).toEqual(['a  b', 'c', '2']);
    expect(clientHead(r)).toContain('\r\nX-Foo: a  b\r\nX-Bar: c\r\n');
  });

  test('keeps strict heads as they are, untouched', () => {
    const raw = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    const r = ok(raw);
    expect([r.normalised, head(r) + rest(r)]).toEqual([false, raw]);
  });

  test('writes a repeated or listed Content-Length to the client once', () => {
    expect(clientHead(ok('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: y\r\nContent-Length: 2\r\n\r\nok'))).toBe(
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: y\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n',
    );
    expect(clientHead(ok('HTTP/1.1 200 OK\nContent-Length: 2, 2\n\nok'))).toContain('\r\nContent-Length: 2\r\n');
    expect(clientHead(ok('HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n', 'HEAD'))).toContain('\r\nContent-Length: 7\r\n');
  });

  // Each refused by HAProxy 2.6 and nginx 1.22 alike (observed), or one that could change framing.
  const refused: Array<[string, string]> = [
    ['whitespace before a colon', 'HTTP/1.1 200 OK\nX-Foo : bar\nContent-Length: 2\n\nok'],
    ['whitespace before the colon of Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nokEXTRA'],
    ['a folded Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 3\r\n\r\nokEXTRA'],
    ['a folded Transfer-Encoding', 'HTTP/1.1 200 OK\nTransfer-Encoding: gzip,\n chunked\n\n'],
    ['whitespace right after the status line', 'HTTP/1.1 200 OK\r\n X-Junk: 1\r\nContent-Length: 2\r\n\r\nok'],
    ['a bare CR', 'HTTP/1.1 200 OK\rContent-Length: 2\r\n\r\nok'],
    ['a bare CR after a bare LF', 'HTTP/1.1 200 OK\n\rContent-Length: 2\r\n\r\nok'],
    ['a lowercase version', 'http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
    ['a space before the status line', ' HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
    ['no status line at all', 'hello plain\n\n'],
    ['differing Content-Length values', 'HTTP/1.1 200 OK\nContent-Length: 2\nContent-Length: 3\n\nok'],
    ['a NUL in a value', 'HTTP/1.1 200 OK\nX: a\x00b\n\n'],
  ];
  for (const [what, raw] of refused) {
    test(`refuses ${what}`, () => {
      const r = read([raw]);
      if (r === null || r.kind !== 'error') throw new Error(`expected ${JSON.stringify(raw)} to be refused, got ${r === null ? 'incomplete' : head(r)}`);
    });
  }

  test('refuses a bare-LF head larger than the limit instead of waiting for more', () => {
    const big = `HTTP/1.1 200 OK\n${'X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n'.repeat(100)}\n`;
    expect(read([big])?.kind).toBe('error');
    expect(read([big.slice(0, 3000), big.slice(3000, 6000)])?.kind).toBe('error');
  });
});
