import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { newHeadReader } from '../../../src/proxy/http/head-reader.ts';
import { readResponseHead } from '../../../src/proxy/http/lenient.ts';
import type { ResponseHead } from '../../../src/proxy/http/response.ts';
import { responseSuffixes, writeClientResponseHead, type ClientResponseContext } from '../../../src/proxy/http/response-head.ts';
import { beginHead, newHeadWriter, putString, takeWritten, type HeadWriter } from '../../../src/proxy/http/writer.ts';

const limits = { maxHeaderSize: 65536, maxHeaderCount: 200, maxUrlLength: 8192 };
const suffixes = responseSuffixes(30);
const KEEP_ALIVE_SUFFIX = 'Connection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n';

function parsed(raw: string): ResponseHead {
  const r = readResponseHead(newHeadReader(), Buffer.from(raw, 'latin1'), 0, 'GET', limits, null);
  if (r === null || r.kind === 'error') throw new Error(`expected ${JSON.stringify(raw)} to be read, got ${r === null ? 'incomplete' : r.reason}`);
  return r;
}

function clientHead(raw: string, ctx: Partial<ClientResponseContext> = {}, w: HeadWriter = newHeadWriter()): string {
  writeClientResponseHead(w, parsed(raw), { suffix: suffixes.keepAlive, dechunk: false, upgrade: false, ...ctx }, 0);
  return takeWritten(w).toString('latin1');
}

describe('client response head', () => {
  test('an HTTP/1.1 status line with a reason goes out as received, with the kept fields after it', () => {
    const raw = 'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 08 Dec 2026 01:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello';
    expect(clientHead(raw)).toBe(
      'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 08 Dec 2026 01:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n' + KEEP_ALIVE_SUFFIX,
    );
  });

  test('a hop-by-hop field right after the status line is dropped and the status line still goes out', () => {
    expect(clientHead('HTTP/1.1 404 Not Found\r\nConnection: close\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n')).toBe(
      'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n' + KEEP_ALIVE_SUFFIX,
    );
  });

  test('a head without fields: the status line, then our own lines', () => {
    expect(clientHead('HTTP/1.1 204 Nothing Here\r\n\r\n', { suffix: suffixes.close })).toBe('HTTP/1.1 204 Nothing Here\r\nConnection: close\r\n\r\n');
  });

  test('an HTTP/1.0 status line is written as HTTP/1.1 with its reason', () => {
    expect(clientHead('HTTP/1.0 200 Fine\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n')).toBe('HTTP/1.1 200 Fine\r\nContent-Length: 2\r\n' + KEEP_ALIVE_SUFFIX);
  });

  test('a status line without a reason gets the standard reason phrase', () => {
    expect(clientHead('HTTP/1.1 204\r\nX-A: 1\r\n\r\n')).toBe('HTTP/1.1 204 No Content\r\nX-A: 1\r\n' + KEEP_ALIVE_SUFFIX);
  });

  test('fields named in Connection, Upgrade outside a 101 and X-Reproxy fields are dropped; the rest keeps its order', () => {
    const raw =
      'HTTP/1.1 200 OK\r\nX-First: 1\r\nConnection: x-private, keep-alive\r\nX-Private: secret\r\nUpgrade: h2c\r\nX-Reproxy-URL: http://internal/\r\nX-Last: 2\r\nContent-Length: 0\r\n\r\n';
    expect(clientHead(raw)).toBe('HTTP/1.1 200 OK\r\nX-First: 1\r\nX-Last: 2\r\nContent-Length: 0\r\n' + KEEP_ALIVE_SUFFIX);
  });

  test('a repeated Content-Length goes out once, in the first one’s place', () => {
    expect(clientHead('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: a\r\nContent-Length: 3\r\n\r\n')).toBe(
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: a\r\n' + KEEP_ALIVE_SUFFIX,
    );
  });

  test('affinity: a pinning Set-Cookie is added before our lines; prefix mode rewrites the application’s own cookie', () => {
    expect(clientHead('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', { setCookie: 'SRV=abc; Path=/' })).toBe(
      'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nSet-Cookie: SRV=abc; Path=/\r\n' + KEEP_ALIVE_SUFFIX,
    );
    expect(
      clientHead('HTTP/1.1 200 OK\r\nSet-Cookie: SID=v1; Path=/\r\nContent-Length: 0\r\n\r\n', { prefixCookie: { name: 'SID', prefix: 'id7~' } }),
    ).toBe('HTTP/1.1 200 OK\r\nSet-Cookie: SID=id7~v1; Path=/\r\nContent-Length: 0\r\n' + KEEP_ALIVE_SUFFIX);
  });

  test('heads assembled one after another in the shared slab each keep their own bytes', () => {
    const w = newHeadWriter();
    const raws = [
      'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.0 302 Found\r\nLocation: /elsewhere\r\nConnection: close\r\n\r\n',
      'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n',
    ];
    const taken = raws.map((raw) => {
      writeClientResponseHead(w, parsed(raw), { suffix: suffixes.keepAlive, dechunk: false, upgrade: false }, 0);
      return takeWritten(w);
    });
    expect(taken.map((b) => b.toString('latin1'))).toEqual([
      'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n' + KEEP_ALIVE_SUFFIX,
      'HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\n' + KEEP_ALIVE_SUFFIX,
      'HTTP/1.1 200 OK\r\n' + KEEP_ALIVE_SUFFIX,
    ]);
  });

  test('any mix of kept and dropped fields of any length (short byte loop or native copy) comes out as the rule says', () => {
    const name = fc.oneof(
      fc.constantFrom('Connection', 'Keep-Alive', 'Proxy-Connection', 'TE', 'Content-Type', 'Server', 'Date', 'ETag', 'X-A'),
      fc.stringMatching(/^X-T[A-Za-z0-9-]{0,30}$/),
    );
    const value = fc.stringMatching(/^[!-~]([ -~]{0,60}[!-~])?$/);
    const statusLine = fc.constantFrom('HTTP/1.1 200 OK', 'HTTP/1.1 200 A Much Longer Reason Phrase Than Usual', 'HTTP/1.0 200 OK', 'HTTP/1.1 200');
    const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te']);
    fc.assert(
      fc.property(statusLine, fc.array(fc.tuple(name, value), { maxLength: 12 }), fc.integer({ min: 0, max: 3000 }), (line, fields, offset) => {
        const raw = `${line}\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
        const kept = fields.filter(([n]) => !HOP.has(n.toLowerCase()));
        const out = line === 'HTTP/1.0 200 OK' || line === 'HTTP/1.1 200' ? 'HTTP/1.1 200 OK' : line;
        // Start the head somewhere inside the slab, as it would after other heads.
        const w = newHeadWriter();
        beginHead(w, offset);
        putString(w, 'x'.repeat(offset));
        takeWritten(w);
        expect(clientHead(raw, {}, w)).toBe(`${out}\r\n${kept.map(([n, v]) => `${n}: ${v}\r\n`).join('')}${KEEP_ALIVE_SUFFIX}`);
      }),
      { numRuns: 400 },
    );
  });
});
