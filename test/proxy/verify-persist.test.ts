// verify_backend (reference 2.5), persist_backend / max_backend_uses / backend_persist_cache (2.6), persist_client.
import { describe, expect, test } from 'bun:test';
import { connect } from 'node:net';
import { rawBackend, rawRequest, startTestProxy, statusCodes } from './helpers.ts';

const GET = (path = '/', extra = '') => `GET ${path} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`;
const complete = (d: string): boolean => {
  const h = d.lastIndexOf('\r\n\r\n');
  if (h === -1) return false;
  const heads = d.slice(0, h);
  const m = /content-length: (\d+)\r\n[^]*$/i.exec(heads);
  return m !== null && d.length >= h + 4 + Number(m[1]);
};
const PROBE = 'OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\n\r\n';

/** Sends requests one after another on one keep-alive connection; returns each raw response. */
async function sequential(port: number, requests: string[]): Promise<string[]> {
  const s = connect(port, '127.0.0.1');
  const out: string[] = [];
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    s.on('error', reject);
    s.on('connect', () => s.write(requests[0]!));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      const h = buf.indexOf('\r\n\r\n');
      if (h === -1) return;
      const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, h))?.[1] ?? 0);
      if (buf.length < h + 4 + len) return;
      out.push(buf.slice(0, h + 4 + len));
      buf = buf.slice(h + 4 + len);
      if (out.length === requests.length) return resolve();
      s.write(requests[out.length]!);
    });
  });
  s.destroy();
  return out;
}

describe('verify_backend', () => {
  test('each new backend connection starts with the exact OPTIONS probe, then carries the request', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], { verify_backend: true, persist_backend: true });
    try {
      await rawRequest(port, GET('/x'), { until: complete });
      expect(b.conns.length).toBe(1);
      expect(b.conns[0]!.startsWith(`${PROBE}GET /x HTTP/1.1\r\n`)).toBe(true);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('verify_backend_path is the probe target, and a keep-alive 500 passes (the status is ignored)', async () => {
    const b = await rawBackend('b', (socket, _i, received) => {
      if (received.startsWith('OPTIONS') && received.endsWith('\r\n\r\n') && !received.includes('GET')) {
        socket.write('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nbad');
      } else if (received.endsWith('\r\n\r\n')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const { proxy, port } = await startTestProxy([b.port], { verify_backend: true, verify_backend_path: '/status500' });
    try {
      const r = await rawRequest(port, GET(), { until: complete });
      expect(statusCodes(r.data)).toEqual([200]);
      expect(b.conns[0]!.startsWith('OPTIONS /status500 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1')).toBe(true);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('a probe answered without keep-alive puts the backend on the no-verify list for 60 s; requests still succeed', async () => {
    // Like python3 -m http.server: OPTIONS gets "501 + Connection: close" and the connection is closed.
    const b = await rawBackend('pyhttp', (socket, _i, received) => {
      if (!received.endsWith('\r\n\r\n')) return;
      if (received.startsWith('OPTIONS')) {
        socket.end('HTTP/1.0 501 Unsupported method\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      } else socket.end('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const { proxy, port } = await startTestProxy([b.port], { verify_backend: true });
    try {
      expect(statusCodes((await rawRequest(port, GET('/1'), { until: complete })).data)).toEqual([200]);
      expect(statusCodes((await rawRequest(port, GET('/2'), { until: complete })).data)).toEqual([200]);
      expect(b.conns.map((c) => c.split('\r\n')[0])).toEqual(['OPTIONS * HTTP/1.0', 'GET /1 HTTP/1.1', 'GET /2 HTTP/1.1']);
      const until = proxy.engine.noVerify.get(`127.0.0.1:${b.port}`)!;
      expect(until - proxy.engine.now).toBeGreaterThan(59_000);
      expect(proxy.engine.health.get(`127.0.0.1:${b.port}`)!.state).toBe('up');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });
});

describe('persist_backend', () => {
  test('sequential requests reuse one verified backend connection', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], { verify_backend: true, persist_backend: true, persist_client: true });
    try {
      for (let i = 0; i < 5; i++) await rawRequest(port, GET(`/${i}`), { until: complete });
      expect(b.conns.length).toBe(1);
      expect(b.conns[0]!.split('OPTIONS').length - 1).toBe(1);
      expect(b.conns[0]!.split(' HTTP/1.1\r\n').length - 1).toBe(5);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('max_backend_uses = 3 serves exactly 3 requests per connection (Perlbal serves 4)', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], { persist_backend: true, max_backend_uses: 3, verify_backend: true });
    try {
      for (let i = 0; i < 7; i++) await rawRequest(port, GET(`/${i}`), { until: complete });
      expect(b.conns.map((c) => c.split(' HTTP/1.1\r\n').length - 1)).toEqual([3, 3, 1]);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('without persist_backend, every request gets its own backend connection with Connection: close', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], {});
    try {
      for (let i = 0; i < 3; i++) await rawRequest(port, GET(`/${i}`), { until: complete });
      expect(b.conns.length).toBe(3);
      for (const c of b.conns) expect(c).toContain('\r\nConnection: close\r\n');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test("an idle connection is dropped before the backend's Keep-Alive timeout would close it", async () => {
    const b = await rawBackend('b', (socket, _i, received) => {
      if (received.endsWith('\r\n\r\n')) socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1, max=100\r\nContent-Length: 2\r\n\r\nok');
    });
    const { proxy, port } = await startTestProxy([b.port], { persist_backend: true });
    try {
      await rawRequest(port, GET(), { until: complete });
      expect(b.sockets.size).toBe(1);
      await Bun.sleep(800);
      expect(b.sockets.size).toBe(0);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('connect_ahead keeps spare connections open after the first request', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], { persist_backend: true, connect_ahead: 2 });
    try {
      await rawRequest(port, GET(), { until: complete });
      await Bun.sleep(100);
      expect(b.sockets.size).toBe(3);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });
});

describe('persist_client', () => {
  test('off: the response says Connection: close and the connection closes', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], {});
    try {
      const r = await rawRequest(port, GET(), { timeoutMs: 2000 });
      expect(r.closed).toBe(true);
      expect(r.data).toContain('\r\nConnection: close\r\n\r\nhello from b\n');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('on: HTTP/1.1 is kept alive with Keep-Alive: timeout=N, max=100; Connection: close is honoured', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], { persist_client: true, persist_client_idle_timeout: 7000 });
    try {
      const [r1, r2] = await sequential(port, [GET('/1'), GET('/2', 'Connection: close\r\n')]);
      expect(r1).toContain('\r\nConnection: keep-alive\r\nKeep-Alive: timeout=7, max=100\r\n\r\n');
      expect(r2).toContain('\r\nConnection: close\r\n\r\n');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('HTTP/1.0 is kept alive only when it asks with Connection: keep-alive', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], { persist_client: true });
    try {
      const plain = await rawRequest(port, 'GET / HTTP/1.0\r\n\r\n', { timeoutMs: 2000 });
      expect(plain.closed).toBe(true);
      expect(plain.data).toContain('Connection: close\r\n');
      const [ka] = await sequential(port, ['GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n']);
      expect(ka).toContain('Connection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('pipelined requests are answered in order on one connection (Perlbal answers 400)', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], { persist_client: true, persist_backend: true });
    try {
      const r = await rawRequest(port, GET('/a') + GET('/b') + 'HEAD /c HTTP/1.1\r\nHost: a\r\n\r\n' + GET('/d'), {
        until: (d) => d.split('HTTP/1.1 200').length - 1 === 4 && d.endsWith('hello from b\n'),
      });
      expect(statusCodes(r.data)).toEqual([200, 200, 200, 200]);
      expect(b.conns.join('').match(/^(GET|HEAD) \S+/gm)).toEqual(['GET /a', 'GET /b', 'HEAD /c', 'GET /d']);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('an idle kept-alive client is closed after persist_client_idle_timeout, silently', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], { persist_client: true, persist_client_idle_timeout: 400 });
    try {
      const r = await rawRequest(port, GET(), { timeoutMs: 3000 });
      expect(r.closed).toBe(true);
      expect(r.ms).toBeGreaterThan(350);
      expect(r.ms).toBeLessThan(1000);
      expect(statusCodes(r.data)).toEqual([200]);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('a head trickled slower than header_timeout gets 408 and a close (slowloris)', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], { persist_client: true, header_timeout: 300 });
    try {
      const r = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ', { timeoutMs: 3000 });
      expect(r.closed).toBe(true);
      expect(statusCodes(r.data)).toEqual([408]);
      expect(r.ms).toBeLessThan(1000);
      expect(b.conns.length).toBe(0);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });
});
