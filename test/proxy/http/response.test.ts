import { describe, expect, test } from 'bun:test';
import { parseResponseHead, responseReason, type ResponseHead } from '../../../src/proxy/http/response.ts';
import { fieldList, newFields } from '../../../src/proxy/http/fields.ts';

const limits = { maxHeaderSize: 65536, maxHeaderCount: 100, maxUrlLength: 8192 };

function res(raw: string, method = 'GET'): ResponseHead {
  const r = parseResponseHead(Buffer.from(raw, 'latin1'), 0, raw.length - 4, method, limits);
  if (r.kind === 'error') throw new Error(`expected a parsed response, got: ${r.reason}`);
  return r;
}

describe('response head', () => {
  test('parses status, reason and framing', () => {
    const r = res('HTTP/1.1 404 Nope Not Here\r\nContent-Length: 7\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n');
    expect([r.minor, r.status, responseReason(r)]).toEqual([1, 404, 'Nope Not Here']);
    expect(r.framing).toEqual({ kind: 'length', length: 7 });
    expect(fieldList(r.fields).names).toEqual(['Content-Length', 'Set-Cookie', 'Set-Cookie']);
  });

  test('accepts a status line without a reason phrase (Perlbal hangs on it)', () => {
    expect(responseReason(res('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n'))).toBe('');
    expect(res('HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n').status).toBe(200);
  });

  test('has no body for HEAD, 1xx, 204 and 304, whatever the headers say', () => {
    expect(res('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', 'HEAD').framing.kind).toBe('none');
    expect(res('HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n').framing.kind).toBe('none');
    expect(res('HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n').framing.kind).toBe('none');
    expect(res('HTTP/1.1 100 Continue\r\n\r\n').framing.kind).toBe('none');
  });

  test('reads to close without length, and lets chunked override Content-Length', () => {
    expect(res('HTTP/1.0 200 OK\r\n\r\n').framing.kind).toBe('close');
    const r = res('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n');
    expect(r.framing.kind).toBe('chunked');
    expect(r.conflictingLength).toBe(true);
    expect(res('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n').framing.kind).toBe('close');
  });

  test('tolerates identical repeated Content-Length from a backend, not differing ones', () => {
    expect(res('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n').framing).toEqual({ kind: 'length', length: 3 });
    expect(res('HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n').framing).toEqual({ kind: 'length', length: 3 });
    const raw = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4';
    const bad = parseResponseHead(Buffer.from(`${raw}\r\n\r\n`), 0, raw.length, 'GET', limits);
    expect(bad.kind).toBe('error');
  });

  test('reads the backend Keep-Alive hint', () => {
    const r = res('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=99\r\nContent-Length: 0\r\n\r\n');
    expect([r.keepAliveTimeoutMs, r.keepAliveMax]).toEqual([5000, 99]);
  });

  test('refuses malformed status lines and forbidden bytes', () => {
    for (const raw of ['HTTP/1.1 20 OK', 'HTTP/1.1 2000 OK', 'HTTP/2 200 OK', 'ICY 200 OK', 'HTTP/1.1 200 OK\r\nX: a\x00b', 'HTTP/1.1 200 OK\r\nX : b', 'HTTP/1.1 200 OK\r\n folded']) {
      const r = parseResponseHead(Buffer.from(`${raw}\r\n\r\n`, 'latin1'), 0, raw.length, 'GET', limits);
      if (r.kind !== 'error') throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
    }
  });
});

describe('response head parsed into a reused fields record', () => {
  test('holds exactly the latest head: a shorter one after a longer one leaves none of the old fields', () => {
    const scratch = newFields();
    const parse = (raw: string): ResponseHead => {
      const r = parseResponseHead(Buffer.from(raw, 'latin1'), 0, raw.length - 4, 'GET', limits, scratch);
      if (r.kind === 'error') throw new Error(`expected a parsed response, got: ${r.reason}`);
      return r;
    };
    const long = 'HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: keep-alive\r\n\r\n';
    const short = 'HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\n';
    const first = parse(long);
    expect(first.fields).toBe(scratch);
    expect(fieldList(first.fields).names).toEqual(fieldList(res(long).fields).names);
    const second = parse(short);
    expect(fieldList(second.fields)).toEqual(fieldList(res(short).fields));
    expect([second.status, second.framing]).toEqual([404, { kind: 'length', length: 3 }]);
    // What was decided from the first head stays with it.
    expect([first.status, first.framing, first.connection.keepAlive]).toEqual([200, { kind: 'length', length: 9 }, true]);
  });
});
