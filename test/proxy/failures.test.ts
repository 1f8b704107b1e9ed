// Failure handling: retries on another backend, mark-down with backoff, and the proxy's own 502/503/504 with a
// short body, never a hang or an empty reply.
import { describe, expect, test } from 'bun:test';
import { connect } from 'node:net';
import { blackhole, closedPort, rawBackend, rawRequest, startTestProxy, statusCodes } from './helpers.ts';

const GET = (path = '/') => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`;
const complete = (d: string): boolean => {
  const h = d.indexOf('\r\n\r\n');
  if (h === -1) return false;
  const m = /content-length: (\d+)/i.exec(d.slice(0, h));
  return m !== null && d.length >= h + 4 + Number(m[1]);
};

describe('failure handling', () => {
  test('503 with a short body, at once, when no backend is reachable', async () => {
    const { proxy, port } = await startTestProxy([await closedPort(), await closedPort()], { persist_client: true });
    try {
      const r = await rawRequest(port, GET(), { until: complete });
      expect(r.data).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
      expect(r.data).toContain('Content-Type: text/html\r\n');
      expect(r.data).toContain('<h1>503 - Service Unavailable</h1>');
      expect(r.ms).toBeLessThan(500);
      // Both are marked down now: the next request is refused without connecting at all.
      const again = await rawRequest(port, GET(), { until: complete });
      expect(statusCodes(again.data)).toEqual([503]);
      expect(again.data).toContain('no backend available');
    } finally {
      await proxy.close({ graceful: false });
    }
  });

  test('200 pipelined requests with no backend get 200 answers of 503, in order, on the same connection', async () => {
    const { proxy, port } = await startTestProxy([await closedPort()], { persist_client: true });
    try {
      const r = await rawRequest(port, GET().repeat(200), { until: (d) => d.split('HTTP/1.1 503').length === 201 && d.endsWith('\n') });
      expect(statusCodes(r.data)).toEqual(Array(200).fill(503));
      expect(r.data.split('Connection: keep-alive').length).toBe(201);
    } finally {
      await proxy.close({ graceful: false });
    }
  });

  test('a refused connect goes to the other backend, and the dead one is skipped until its backoff ends', async () => {
    const good = await rawBackend('good');
    const dead = await closedPort();
    const { proxy, port } = await startTestProxy([dead, good.port], { balance_method: 'roundrobin', down_backoff: 60_000 }, { balance_method: 'roundrobin' });
    try {
      for (let i = 0; i < 6; i++) {
        const r = await rawRequest(port, GET(`/${i}`), { until: complete });
        expect(r.data).toContain('X-Backend: good');
      }
      const health = proxy.engine.health.get(`127.0.0.1:${dead}`)!;
      expect(health.state).toBe('down');
      expect(health.failures).toBe(1);
    } finally {
      await proxy.close({ graceful: false });
      await good.close();
    }
  });

  test('a down backend is retried after its backoff (doubling while it stays down) and is used again once it answers', async () => {
    const port0 = await closedPort();
    const { proxy, port } = await startTestProxy([port0], { down_backoff: 200, down_backoff_max: 1000 });
    try {
      expect(statusCodes((await rawRequest(port, GET(), { until: complete })).data)).toEqual([503]);
      const h = proxy.engine.health.get(`127.0.0.1:${port0}`)!;
      expect([h.state, h.failures]).toEqual(['down', 1]);
      // Within the backoff: refused without a connect attempt.
      expect(statusCodes((await rawRequest(port, GET(), { until: complete })).data)).toEqual([503]);
      expect(h.failures).toBe(1);
      await Bun.sleep(350);
      // The trial fails too: the backoff doubles.
      expect(statusCodes((await rawRequest(port, GET(), { until: complete })).data)).toEqual([503]);
      expect([h.failures, h.backoffMs]).toEqual([2, 800]);
      const revived = await rawBackend('revived', undefined, port0);
      try {
        await Bun.sleep(500);
        expect((await rawRequest(port, GET(), { until: complete })).data).toContain('X-Backend: revived');
        expect([h.state, h.failures]).toEqual(['up', 0]);
      } finally {
        await revived.close();
      }
    } finally {
      await proxy.close({ graceful: false });
    }
  });

  test('504 after connect_timeout when the only backend never completes the verify probe (blackhole)', async () => {
    const hole = await blackhole();
    const { proxy, port } = await startTestProxy([hole.port], { verify_backend: true, connect_timeout: 300, max_retries: 0 });
    try {
      const r = await rawRequest(port, GET(), { until: complete, timeoutMs: 3000 });
      expect(statusCodes(r.data)).toEqual([504]);
      expect(r.ms).toBeGreaterThan(250);
      expect(r.ms).toBeLessThan(1000);
      expect(proxy.engine.health.get(`127.0.0.1:${hole.port}`)!.state).toBe('down');
    } finally {
      await proxy.close({ graceful: false });
      await hole.close();
    }
  });

  test('504 after response_timeout when a backend accepts the request and never answers; it is marked down', async () => {
    const hole = await blackhole();
    const { proxy, port } = await startTestProxy([hole.port], { response_timeout: 300, max_retries: 0 });
    try {
      const r = await rawRequest(port, GET(), { until: complete, timeoutMs: 3000 });
      expect(statusCodes(r.data)).toEqual([504]);
      expect(r.data).toContain('backend did not respond in time');
      expect(r.ms).toBeLessThan(1000);
      expect(proxy.engine.health.get(`127.0.0.1:${hole.port}`)!.state).toBe('down');
    } finally {
      await proxy.close({ graceful: false });
      await hole.close();
    }
  });

  test('an idempotent GET that timed out on a blackhole is retried on the good backend', async () => {
    const hole = await blackhole();
    const good = await rawBackend('good');
    const { proxy, port } = await startTestProxy([hole.port, good.port], { response_timeout: 300 }, { balance_method: 'roundrobin' });
    try {
      const results = await Promise.all([0, 1, 2, 3].map((i) => rawRequest(port, GET(`/${i}`), { until: complete, timeoutMs: 3000 })));
      for (const r of results) expect(r.data).toContain('X-Backend: good');
    } finally {
      await proxy.close({ graceful: false });
      await hole.close();
      await good.close();
    }
  });

  test('a POST whose backend closed before answering is not repeated: 502', async () => {
    let posts = 0;
    const closer = await rawBackend('closer', (socket, _i, received) => {
      if (received.endsWith('hello')) {
        posts++;
        socket.destroy();
      }
    });
    const other = await rawBackend('other');
    const { proxy, port } = await startTestProxy([closer.port, other.port], {}, { balance_method: 'roundrobin' });
    try {
      const r = await rawRequest(port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello', { until: complete });
      expect(statusCodes(r.data)).toEqual([502]);
      expect(r.data).toContain('backend closed the connection before responding');
      expect(posts).toBe(1);
    } finally {
      await proxy.close({ graceful: false });
      await closer.close();
      await other.close();
    }
  });

  test('a GET whose backend closed before answering is retried on another backend', async () => {
    const closer = await rawBackend('closer', (socket, _i, received) => {
      if (received.endsWith('\r\n\r\n')) socket.destroy();
    });
    const other = await rawBackend('other');
    const { proxy, port } = await startTestProxy([closer.port, other.port], {}, { balance_method: 'roundrobin' });
    try {
      for (let i = 0; i < 4; i++) expect((await rawRequest(port, GET(), { until: complete })).data).toContain('X-Backend: other');
    } finally {
      await proxy.close({ graceful: false });
      await closer.close();
      await other.close();
    }
  });

  test('a response that breaks off after its head went out cuts the client connection (no fake end)', async () => {
    const liar = await rawBackend('liar', (socket, _i, received) => {
      if (received.endsWith('\r\n\r\n')) {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456');
        setTimeout(() => socket.destroy(), 50);
      }
    });
    const { proxy, port } = await startTestProxy([liar.port], { persist_client: true });
    try {
      const r = await rawRequest(port, GET(), { timeoutMs: 2000 });
      expect(r.closed).toBe(true);
      expect(r.data.endsWith('\r\n\r\n0123456')).toBe(true);
      expect(r.ms).toBeLessThan(1000);
    } finally {
      await proxy.close({ graceful: false });
      await liar.close();
    }
  });

  test('502 for an unparsable response head, and the proxy keeps serving', async () => {
    const junk = await rawBackend('junk', (socket, _i, received) => {
      if (received.endsWith('\r\n\r\n')) socket.write('HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n');
    });
    const { proxy, port } = await startTestProxy([junk.port], { max_retries: 0 });
    try {
      expect(statusCodes((await rawRequest(port, GET(), { until: complete })).data)).toEqual([502]);
      expect(statusCodes((await rawRequest(port, GET(), { until: complete })).data)).toEqual([502]);
    } finally {
      await proxy.close({ graceful: false });
      await junk.close();
    }
  });

  test('a keep-alive backend connection the backend closed while idle is not used; nothing fails', async () => {
    const b = await rawBackend('b');
    const { proxy, port } = await startTestProxy([b.port], { persist_backend: true, persist_client: true });
    try {
      expect((await rawRequest(port, GET(), { until: complete })).data).toContain('hello from b');
      for (const s of b.sockets) s.destroy();
      await Bun.sleep(50);
      expect((await rawRequest(port, GET(), { until: complete })).data).toContain('hello from b');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('the keep-alive race (backend closes a pooled connection as the request arrives) is retried on a new connection', async () => {
    // The backend answers the first request on each connection, then closes the connection upon the next one
    // without answering: exactly what a backend's keep-alive timeout firing during our send looks like.
    const b = await rawBackend('racy', (socket, _i, received) => {
      const heads = received.split('\r\n\r\n').length - 1;
      if (heads === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else if (heads === 2) socket.destroy();
    });
    const { proxy, port } = await startTestProxy([b.port], { persist_backend: true, persist_client: true });
    try {
      for (let i = 0; i < 3; i++) expect(statusCodes((await rawRequest(port, GET(), { until: complete })).data)).toEqual([200]);
      expect(proxy.engine.health.get(`127.0.0.1:${b.port}`)!.state).toBe('up');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('a connection a busy backend closes right after the verify probe is retried on a new one, without the probe', async () => {
    // Like Apache's event MPM at capacity: the probe is answered keep-alive, then the now idle connection is closed
    // as the request arrives. A connection whose first bytes are a request is served.
    const b = await rawBackend('busy', (socket, _i, received) => {
      if (!received.endsWith('\r\n\r\n')) return;
      if (received.startsWith('OPTIONS') && !received.includes('GET')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
      else if (received.startsWith('OPTIONS')) socket.destroy();
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const { proxy, port } = await startTestProxy([b.port], { verify_backend: true, persist_backend: true });
    try {
      expect(statusCodes((await rawRequest(port, GET(), { until: complete })).data)).toEqual([200]);
      expect(b.conns.map((c) => c.split('\r\n')[0])).toEqual(['OPTIONS * HTTP/1.0', 'GET / HTTP/1.1']);
      expect(proxy.engine.health.get(`127.0.0.1:${b.port}`)!.state).toBe('up');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('killing one of two backends under load loses no request', async () => {
    const b1 = await rawBackend('b1');
    const b2 = await rawBackend('b2');
    const { proxy, port } = await startTestProxy([b1.port, b2.port], { persist_backend: true, persist_client: true });
    const failures: string[] = [];
    let ok = 0;
    const deadline = performance.now() + 1500;
    // 16 keep-alive clients, each sending requests back to back for a bounded time.
    const client = (): Promise<void> =>
      new Promise((resolve) => {
        const s = connect(port, '127.0.0.1');
        let buf = '';
        const send = (): void => {
          if (performance.now() > deadline) {
            s.end();
            return resolve();
          }
          s.write(GET('/load'));
        };
        s.on('connect', send);
        s.on('data', (d) => {
          buf += d.toString('latin1');
          while (complete(buf)) {
            const h = buf.indexOf('\r\n\r\n');
            const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, h))![1]);
            const status = buf.slice(9, 12);
            if (status === '200') ok++;
            else failures.push(buf.slice(0, h));
            buf = buf.slice(h + 4 + len);
            send();
          }
        });
        s.on('error', (e) => failures.push(`client error ${e.message}`));
        s.on('close', () => resolve());
      });
    const clients = Array.from({ length: 16 }, client);
    await Bun.sleep(400);
    const killedAt = ok;
    await b1.close();
    await Promise.all(clients);
    try {
      expect(failures).toEqual([]);
      expect(killedAt).toBeGreaterThan(50);
      expect(ok).toBeGreaterThan(killedAt + 50);
    } finally {
      await proxy.close({ graceful: false });
      await b2.close();
    }
  });
});
