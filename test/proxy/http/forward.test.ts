import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { newForwardContext, writeBackendRequestHead, type ForwardContext } from '../../../src/proxy/http/forward.ts';
import { parseRequestHead, type RequestHead } from '../../../src/proxy/http/request.ts';
import { newHeadWriter, takeWritten } from '../../../src/proxy/http/writer.ts';

const limits = { maxHeaderSize: 65536, maxHeaderCount: 200, maxUrlLength: 8192 };

function parsed(raw: string): RequestHead {
  const buf = Buffer.from(raw, 'latin1');
  const r = parseRequestHead(buf, 0, buf.length - 4, limits);
  if (r.kind === 'error') throw new Error(`expected ${JSON.stringify(raw)} to parse, got ${r.status} ${r.reason}`);
  return r;
}

function context(over: Partial<ForwardContext> = {}): ForwardContext {
  return { ...newForwardContext('192.0.2.7', false, false, true, '127.0.0.1:8080', null, false), ...over };
}

function backendHead(raw: string, ctx: ForwardContext = context()): string {
  const w = newHeadWriter();
  writeBackendRequestHead(w, parsed(raw), ctx);
  return takeWritten(w).toString('latin1');
}

const TAIL = 'X-Forwarded-For: 192.0.2.7\r\nX-Real-IP: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n\r\n';

describe('backend request head', () => {
  test('an HTTP/1.1 request line goes out as received, the fields after it, then Connection and the forwarding lines', () => {
    expect(backendHead('GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n')).toBe(
      'GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nConnection: keep-alive\r\n' + TAIL,
    );
  });

  test("the client's Connection right after the request line is replaced in place", () => {
    expect(backendHead('GET / HTTP/1.1\r\nConnection: close\r\nHost: h\r\nTE: trailers\r\n\r\n')).toBe(
      'GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: h\r\n' + TAIL,
    );
  });

  test('an HTTP/1.0 request line is written as HTTP/1.1', () => {
    expect(backendHead('GET /old HTTP/1.0\r\nHost: h\r\n\r\n', context({ persistBackend: false }))).toBe(
      'GET /old HTTP/1.1\r\nHost: h\r\nConnection: close\r\n' + TAIL,
    );
  });

  test('a later HTTP/1.x version is written as HTTP/1.1', () => {
    expect(backendHead('GET / HTTP/1.2\r\nHost: h\r\n\r\n')).toBe('GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n' + TAIL);
  });

  test('a request without Host gets the address the client connected to, right after the request line', () => {
    expect(backendHead('GET / HTTP/1.0\r\nAccept: */*\r\n\r\n')).toBe('GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\nConnection: keep-alive\r\n' + TAIL);
  });

  test('an absolute-form target is reduced to its path and its host replaces the Host field', () => {
    expect(backendHead('GET http://Other.Example/p HTTP/1.1\r\nHost: h\r\n\r\n')).toBe(
      'GET /p HTTP/1.1\r\nHost: other.example\r\nConnection: keep-alive\r\n' + TAIL,
    );
  });

  test('an untrusted client’s forwarding fields are replaced in place and its X-Host dropped', () => {
    expect(backendHead('GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\nX-Host: evil\r\nX-Real-IP: 6.6.6.6\r\n\r\n')).toBe(
      'GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.7\r\nX-Real-IP: 192.0.2.7\r\nConnection: keep-alive\r\nX-Forwarded-Proto: http\r\n\r\n',
    );
  });

  test('a trusted proxy’s X-Forwarded-For is appended to', () => {
    expect(backendHead('GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.1.1.1,10.2.2.2\r\n\r\n', context({ trusted: true }))).toBe(
      'GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.1.1.1, 10.2.2.2, 192.0.2.7\r\nConnection: keep-alive\r\nX-Real-IP: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n\r\n',
    );
  });

  test('the cached forwarding lines follow a reload that changes persist_backend (the context is copied with its caches)', () => {
    const raw = 'GET / HTTP/1.1\r\nHost: h\r\n\r\n';
    const before = context({ https: true });
    const httpsTail = TAIL.replace('Proto: http', 'Proto: https');
    expect(backendHead(raw, before)).toBe('GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n' + httpsTail);
    const after = { ...before, persistBackend: false };
    expect(backendHead(raw, after)).toBe('GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n' + httpsTail);
    expect(backendHead('GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: h\r\n\r\n', after)).toBe(
      'GET / HTTP/1.1\r\nConnection: close\r\nHost: h\r\n' + httpsTail,
    );
    expect(backendHead(raw, before)).toBe('GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n' + httpsTail);
  });

  test('an upgrade request keeps Upgrade and says Connection: upgrade', () => {
    expect(backendHead('GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')).toBe(
      'GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n' + TAIL,
    );
  });

  test('any mix of kept and hop-by-hop fields, any request line, comes out as the rule says', () => {
    const name = fc.oneof(fc.constantFrom('Keep-Alive', 'Proxy-Connection', 'TE', 'Accept', 'User-Agent', 'Cookie'), fc.stringMatching(/^X-T[A-Za-z0-9-]{0,30}$/));
    const value = fc.stringMatching(/^[!-~]([ -~]{0,60}[!-~])?$/);
    const line = fc.constantFrom('GET / HTTP/1.1', 'GET /a/much/longer/path?with=a&query=string HTTP/1.1', 'POST /x HTTP/1.0', 'GET /y HTTP/1.2');
    const HOP = new Set(['keep-alive', 'proxy-connection', 'te']);
    fc.assert(
      fc.property(line, fc.array(fc.tuple(name, value), { maxLength: 10 }), (requestLine, fields) => {
        const raw = `${requestLine}\r\nHost: h\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
        const kept = fields.filter(([n]) => !HOP.has(n.toLowerCase()));
        const expected = `${requestLine.replace(/HTTP\/1\.\d$/, 'HTTP/1.1')}\r\nHost: h\r\n${kept.map(([n, v]) => `${n}: ${v}\r\n`).join('')}Connection: keep-alive\r\n${TAIL}`;
        expect(backendHead(raw)).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });
});
