// health_check_reuse against real sockets: checks go on one kept connection per backend (and one per check with
// `off`), and a backend that closes idle keep-alive connections (as nginx's keepalive_timeout does) between checks
// is not marked down for it.
import { afterEach, describe, expect, test } from 'bun:test';
import * as net from 'node:net';
import { createConsola } from 'consola';
import type { PoolModel } from '../../../src/config/model.ts';
import { startProxy } from '../../../src/proxy/index.ts';
import { configModel, poolModel, serviceModel } from '../helpers.ts';

const INTERVAL = 100;

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  cleanup = [];
});

interface RawBackend {
  port: number;
  key: string;
  connections: () => number;
  requests: () => number;
}

/**
 * Answers every request 200 with Content-Length and keep-alive, then closes the connection `idleCloseMs` after the
 * answer (0: at once, -1: never), counting connections and requests.
 */
async function rawBackend(idleCloseMs: number): Promise<RawBackend> {
  let connections = 0;
  let requests = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = '';
    let idle: ReturnType<typeof setTimeout> | null = null;
    socket.on('data', (d) => {
      pending += d.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) !== -1) {
        pending = pending.slice(end + 4);
        requests++;
        if (idle !== null) clearTimeout(idle);
        socket.write('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok');
        if (idleCloseMs === 0) socket.end();
        else if (idleCloseMs > 0) idle = setTimeout(() => socket.end(), idleCloseMs);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  cleanup.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port, key: `127.0.0.1:${port}`, connections: () => connections, requests: () => requests };
}

async function checkedProxy(b: RawBackend, options: PoolModel['options']) {
  const logs: string[] = [];
  const log = createConsola({ level: 4, reporters: [{ log: (o) => logs.push(o.args.join(' ')) }] });
  const config = configModel([serviceModel('svc', 'pool')], [
    poolModel('pool', [b.port], {
      options: { health_check_path: '/health', health_check_interval: INTERVAL, health_check_timeout: 80, health_check_rise: 1, health_check_fall: 1, ...options },
    }),
  ]);
  const proxy = await startProxy(config, { log });
  cleanup.push(() => proxy.close({ graceful: false }));
  return { proxy, logs };
}

describe('health_check_reuse', () => {
  test('on (the default): every check goes on one kept connection', async () => {
    const b = await rawBackend(-1);
    const { proxy } = await checkedProxy(b, {});
    await Bun.sleep(15 * INTERVAL);
    const h = proxy.engine.health.get(b.key)!;
    expect(h.checks).toBeGreaterThanOrEqual(8);
    expect(b.requests()).toBeGreaterThanOrEqual(8);
    expect(b.connections()).toBe(1);
    expect([h.state, h.lastCheck]).toEqual(['up', '200']);
  });

  test('off: one connection per check, as before', async () => {
    const b = await rawBackend(-1);
    const { proxy } = await checkedProxy(b, { health_check_reuse: 'off' });
    await Bun.sleep(15 * INTERVAL);
    const h = proxy.engine.health.get(b.key)!;
    expect(h.checks).toBeGreaterThanOrEqual(8);
    expect(b.connections()).toBe(b.requests());
    expect(h.state).toBe('up');
  });

  for (const [what, idleCloseMs] of [
    ['closes each connection right after its answer', 0],
    ['closes idle keep-alive connections about when the next check is due', 92],
    ['closes idle keep-alive connections between checks', 50],
  ] as const) {
    test(`a backend that ${what} is never marked down (fall = 1)`, async () => {
      const b = await rawBackend(idleCloseMs);
      const { proxy, logs } = await checkedProxy(b, {});
      await Bun.sleep(30 * INTERVAL);
      const h = proxy.engine.health.get(b.key)!;
      expect(h.checks).toBeGreaterThanOrEqual(15);
      expect(logs.filter((l) => l.includes(' down'))).toEqual([]);
      expect([h.state, h.lastCheck]).toEqual(['up', '200']);
      // The closes did happen: more than one connection for the checks.
      expect(b.connections()).toBeGreaterThan(1);
    });
  }
});
