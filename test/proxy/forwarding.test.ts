// What a backend receives, byte for byte: the reference transcripts (perlbal.md 8.1, 2.9, 2.10) adapted to the
// deliberate differences in docs/compat.md (HTTP/1.1, hop-by-hop stripping, X-Real-IP/X-Forwarded-Proto).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { ServiceModel } from '../../src/config/model.ts';
import type { ProxyHandle } from '../../src/proxy/index.ts';
import { rawBackend, rawRequest, startTestProxy, type RawBackend } from './helpers.ts';

const untilBody = (d: string): boolean => d.includes('hello from');

/** Starts a proxy with `options`, sends `request`, returns what the backend received (verify probe excluded). */
async function forwarded(
  request: string,
  options: ServiceModel['options'] = {},
  serviceExtra: Partial<ServiceModel> = {},
): Promise<{ backend: string; client: string }> {
  const b = await rawBackend('b1');
  const { proxy, port } = await startTestProxy([b.port], options, {}, serviceExtra);
  try {
    const r = await rawRequest(port, request, { until: untilBody });
    return { backend: b.conns.join('').replace(/^OPTIONS [^\r]*\r\nConnection: keep-alive\r\n\r\n/, ''), client: r.data };
  } finally {
    await proxy.close({ graceful: false });
    await b.close();
  }
}

describe('request forwarding', () => {
  test('a simple GET reaches the backend as HTTP/1.1 with Connection, X-Forwarded-For, X-Real-IP and X-Forwarded-Proto', async () => {
    const { backend, client } = await forwarded(
      'GET /hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n',
      { persist_backend: true, persist_client: true },
    );
    expect(backend).toBe(
      'GET /hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n' +
        'Connection: keep-alive\r\nX-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n',
    );
    expect(client).toBe(
      'HTTP/1.1 200 OK\r\nX-Backend: b1\r\nContent-Length: 14\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\nhello from b1\n',
    );
  });

  const HOSTILE =
    'GET /hdrs HTTP/1.1\r\nHost: Example.COM:8080\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\n' +
    'X-Forwarded-Host: evil.example\r\nX-Host: evil.example\r\nX-Real-IP: 9.9.9.9\r\nX-Forwarded-Proto: https\r\n' +
    'Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n' +
    'Upgrade: websocket\r\nX-Dup: one\r\nX-Dup: two\r\nCookie: c=1\r\nCookie: d=2\r\n\r\n';

  test('an untrusted client: XFF, X-Real-IP and X-Forwarded-Proto overwritten in place, X-Host and X-Forwarded-Host and hop-by-hop fields dropped', async () => {
    const { backend } = await forwarded(HOSTILE, { persist_backend: true });
    expect(backend).toBe(
      'GET /hdrs HTTP/1.1\r\nHost: Example.COM:8080\r\nX-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 127.0.0.1\r\n' +
        'X-Forwarded-Proto: http\r\nConnection: keep-alive\r\nX-Dup: one\r\nX-Dup: two\r\nCookie: c=1\r\nCookie: d=2\r\n\r\n',
    );
  });

  test('kept alive, the next request is forwarded with its own fields only, none left from a longer one before it', async () => {
    const second = 'GET /second HTTP/1.1\r\nHost: b.example\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n';
    const b = await rawBackend('b1');
    const { proxy, port } = await startTestProxy([b.port], { persist_backend: true, persist_client: true });
    try {
      // Pipelined in one write: the second head is parsed into the connection's fields record once the first is done.
      await rawRequest(port, HOSTILE + second, { until: (d) => d.split('hello from').length === 3 });
      const got = b.conns.join('').replace(/^OPTIONS [^\r]*\r\nConnection: keep-alive\r\n\r\n/, '');
      expect(got.slice(got.indexOf('GET /second'))).toBe(
        'GET /second HTTP/1.1\r\nHost: b.example\r\nX-Forwarded-For: 127.0.0.1\r\nConnection: keep-alive\r\n' +
          'X-Real-IP: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n',
      );
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('a trusted client (always_trusted): XFF appended with ", ", its X-Real-IP, X-Forwarded-Proto and X-Host kept', async () => {
    const { backend } = await forwarded(HOSTILE.replace('1.2.3.4, 5.6.7.8', '1.2.3.4,5.6.7.8'), { always_trusted: true });
    expect(backend).toBe(
      'GET /hdrs HTTP/1.1\r\nHost: Example.COM:8080\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8, 127.0.0.1\r\n' +
        'X-Forwarded-Host: evil.example\r\nX-Host: evil.example\r\nX-Real-IP: 9.9.9.9\r\nX-Forwarded-Proto: https\r\n' +
        'Connection: close\r\nX-Dup: one\r\nX-Dup: two\r\nCookie: c=1\r\nCookie: d=2\r\n\r\n',
    );
  });

  test('a client in trusted_upstream_proxies is trusted; one outside is not', async () => {
    const inside = await forwarded('GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.1.1.1\r\n\r\n', {
      trusted_upstream_proxies: ['10.0.0.0/8', '127.0.0.0/8'],
    });
    expect(inside.backend).toContain('X-Forwarded-For: 10.1.1.1, 127.0.0.1\r\n');
    const outside = await forwarded('GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.1.1.1\r\n\r\n', {
      trusted_upstream_proxies: ['10.0.0.0/8'],
    });
    expect(outside.backend).toContain('X-Forwarded-For: 127.0.0.1\r\n');
  });

  test('a trusted blind proxy: forwarding headers untouched and none added', async () => {
    const { backend } = await forwarded('GET / HTTP/1.1\r\nHost: a\r\nX-Host: h\r\n\r\n', { always_trusted: true, blind_proxy: true });
    expect(backend).toBe('GET / HTTP/1.1\r\nHost: a\r\nX-Host: h\r\nConnection: close\r\n\r\n');
  });

  test('blind_proxy is ignored for untrusted clients (as in Perlbal)', async () => {
    const { backend } = await forwarded('GET / HTTP/1.1\r\nHost: a\r\nX-Host: h\r\n\r\n', { blind_proxy: true });
    expect(backend).toBe(
      'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n',
    );
  });

  test('an absolute-form target becomes origin-form and its lowercased host (without port) replaces Host', async () => {
    const { backend } = await forwarded('GET http://Abs.Example.com:81/f?q=1 HTTP/1.1\r\nHost: other\r\n\r\n');
    expect(backend.split('\r\n').slice(0, 2)).toEqual(['GET /f?q=1 HTTP/1.1', 'Host: abs.example.com']);
  });

  test('an HTTP/1.0 request without Host gets the address the client connected to', async () => {
    const { backend } = await forwarded('GET /old HTTP/1.0\r\n\r\n');
    expect(backend).toMatch(/^GET \/old HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nConnection: close\r\n/);
  });

  test('HEADER rules apply last: REMOVE drops every field of the name, INSERT sets in place or appends', async () => {
    const loc = { file: 't', line: 1 };
    const { backend } = await forwarded('GET / HTTP/1.1\r\nHost: a\r\nX-Drop: 1\r\nX-Set: old\r\nX-Drop: 2\r\n\r\n', {}, {
      headers: [
        { op: 'remove', name: 'x-drop', loc },
        { op: 'insert', name: 'x-set', value: 'new', loc },
        { op: 'insert', name: 'x-added', value: 'Value Keeps Case', loc },
        { op: 'remove', name: 'x-real-ip', loc },
      ],
    });
    expect(backend).toBe(
      'GET / HTTP/1.1\r\nHost: a\r\nX-Set: new\r\nConnection: close\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nx-added: Value Keeps Case\r\n\r\n',
    );
  });

  test('a POST body is forwarded after the head, with its Content-Length', async () => {
    const { backend } = await forwarded('POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello');
    expect(backend.endsWith('Content-Length: 5\r\nConnection: close\r\nX-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\nhello')).toBe(true);
  });
});

describe('response relaying', () => {
  let b: RawBackend;
  let proxy: ProxyHandle;
  let port: number;
  beforeAll(async () => {
    b = await rawBackend('r', (socket, _i, received) => {
      const m = /^(\w+) (\S+)/.exec(received.slice(received.lastIndexOf('\r\n\r\n', received.length - 5) + 1).trim());
      if (!received.endsWith('\r\n\r\n')) return;
      const path = m?.[2] ?? '';
      if (path === '/reason') socket.write('HTTP/1.1 404 Nope Not Here\r\nContent-Length: 0\r\n\r\n');
      else if (path === '/noreason') socket.write('HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok');
      else if (path === '/hop') socket.write('HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n');
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    });
    ({ proxy, port } = await startTestProxy([b.port], { persist_client: true, persist_backend: true }));
  });
  afterAll(async () => {
    await proxy.close({ graceful: false });
    await b.close();
  });

  test('the backend reason phrase is kept; the status line is HTTP/1.1', async () => {
    const r = await rawRequest(port, 'GET /reason HTTP/1.1\r\nHost: a\r\n\r\n', { until: (d) => d.includes('\r\n\r\n') });
    expect(r.data.split('\r\n')[0]).toBe('HTTP/1.1 404 Nope Not Here');
  });

  test('a status line without a reason phrase is answered with the standard one (Perlbal hangs)', async () => {
    const r = await rawRequest(port, 'GET /noreason HTTP/1.1\r\nHost: a\r\n\r\n', { until: (d) => d.endsWith('ok') });
    expect(r.data.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(r.data.endsWith('\r\n\r\nok')).toBe(true);
  });

  test('hop-by-hop response fields are dropped, Set-Cookie lines stay separate', async () => {
    const r = await rawRequest(port, 'GET /hop HTTP/1.1\r\nHost: a\r\n\r\n', { until: (d) => d.includes('\r\n\r\n') });
    expect(r.data).toBe(
      'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n',
    );
  });
});
