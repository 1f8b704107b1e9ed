// Reloading a running proxy in process (handle.reload): pools, listeners and services change under real sockets,
// requests in flight finish, health and sockets that stay are the same objects, and a reload that cannot be
// applied whole changes nothing.
import { afterEach, describe, expect, test } from 'bun:test';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { PerlbalConfig, ServiceModel } from '../../src/config/model.ts';
import { createConsola } from 'consola';
import { startProxy, type ProxyHandle } from '../../src/proxy/index.ts';
import { connectRaw } from '../harness/rawclient.ts';
import { closedPort, configModel, poolModel, quietLog, rawBackend, rawRequest, serviceModel, type RawBackend } from './helpers.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function backends(...names: string[]): Promise<RawBackend[]> {
  const list = await Promise.all(names.map((n) => rawBackend(n)));
  cleanups.push(() => Promise.all(list.map((b) => b.close())).then(() => undefined));
  return list;
}

async function start(config: PerlbalConfig, log = quietLog): Promise<ProxyHandle> {
  const proxy = await startProxy(config, { log });
  cleanups.push(() => proxy.close({ graceful: false }));
  return proxy;
}

const KEEP = { persist_client: true, persist_backend: true };

function web(ports: number[], opts: ServiceModel['options'] = KEEP, extra: Partial<ServiceModel> = {}, listenPort = 0): PerlbalConfig {
  return configModel(
    [serviceModel('web', 'p', opts, { listen: { host: '127.0.0.1', port: listenPort }, ...extra })],
    [poolModel('p', ports, { balance_method: 'roundrobin' })],
  );
}

async function get(port: number, path = '/'): Promise<string> {
  const r = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, { timeoutMs: 3000 });
  return /X-Backend: (\w+)/.exec(r.data)?.[1] ?? `no backend in ${JSON.stringify(r.data.slice(0, 80))}`;
}

const requestCount = (b: RawBackend): number => b.conns.reduce((n, c) => n + (c.match(/^GET /gm)?.length ?? 0), 0);

async function until(what: string, cond: () => boolean, ms = 2000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(10);
  }
}

describe('proxy reload', () => {
  test('new requests go only to the new pool; idle connections to a removed backend close; a down backend stays down', async () => {
    const [a, b, c] = await backends('a', 'b', 'c');
    const dead = await closedPort();
    const proxy = await start(web([a!.port, b!.port, dead]));
    const port = proxy.listeners()[0]!.port;
    for (let i = 0; i < 6; i++) await get(port);
    const deadHealth = proxy.engine.health.get(`127.0.0.1:${dead}`)!;
    expect(deadHealth.state).toBe('down');
    expect(a!.sockets.size).toBeGreaterThan(0);
    const before = requestCount(a!);

    const r = await proxy.reload(web([b!.port, dead, c!.port]));
    expect(r).toMatchObject({ ok: true, summary: `services ~web (backends +127.0.0.1:${c!.port} -127.0.0.1:${a!.port}); listeners kept 1` });
    await until('the idle connection to the removed backend to close', () => a!.sockets.size === 0);
    expect(proxy.engine.health.get(`127.0.0.1:${dead}`)).toBe(deadHealth);
    expect(deadHealth.state).toBe('down');
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(await get(port));
    expect([...seen].sort()).toEqual(['b', 'c']);
    expect(requestCount(a!)).toBe(before);
  });

  test('a request in flight on a removed backend finishes, then its connection closes instead of idling', async () => {
    const slow = await rawBackend('slow', (socket, _i, received) => {
      if (received.endsWith('\r\n\r\n')) setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nX-Backend: slow\r\nContent-Length: 4\r\n\r\nslow'), 300);
    });
    cleanups.push(() => slow.close());
    const [b] = await backends('b');
    const proxy = await start(web([slow.port]));
    const port = proxy.listeners()[0]!.port;
    const inFlight = rawRequest(port, 'GET / HTTP/1.1\r\nHost: t\r\n\r\n', { until: (d) => d.endsWith('slow'), timeoutMs: 3000 });
    await until('the request to reach the slow backend', () => slow.conns.length === 1 && slow.conns[0]!.endsWith('\r\n\r\n'));
    expect((await proxy.reload(web([b!.port]))).ok).toBe(true);
    const r = await inFlight;
    expect(r.data).toStartWith('HTTP/1.1 200 OK');
    expect(r.data).toEndWith('slow');
    await until('the removed backend connection to close', () => slow.sockets.size === 0);
    expect(await get(port)).toBe('b');
  });

  test('an unchanged address keeps its listening socket, even when the service is renamed', async () => {
    const [a] = await backends('a');
    const port = await closedPort();
    const config = web([a!.port], KEEP, {}, port);
    const proxy = await start(config);
    const server = proxy.services[0]!.server;
    expect((await proxy.reload(web([a!.port], { ...KEEP, max_retries: 4 }, {}, port))).ok).toBe(true);
    expect(proxy.services[0]!.server).toBe(server);
    expect(proxy.services[0]!.opts.maxRetries).toBe(4);

    const renamed: PerlbalConfig = { ...config, services: [{ ...config.services[0]!, name: 'www' }] };
    const moved = await proxy.reload(renamed);
    expect(moved).toMatchObject({ ok: true, summary: `services +www -web; listeners 127.0.0.1:${port} web→www kept 1` });
    expect(proxy.services.map((s) => [s.name, s.server])).toEqual([['www', server]]);
    expect(await get(port)).toBe('a');
  });

  test('a new address that cannot be bound keeps the old config entirely', async () => {
    const [a, b] = await backends('a', 'b');
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => taken.close(() => r())));
    const takenPort = (taken.address() as AddressInfo).port;
    const freeForApi = await closedPort();
    const proxy = await start(web([a!.port]));
    const port = proxy.listeners()[0]!.port;
    const next = web([b!.port]);
    next.services.push(
      serviceModel('api', 'p', {}, { listen: { host: '127.0.0.1', port: freeForApi } }),
      serviceModel('admin', 'p', {}, { listen: { host: '127.0.0.1', port: takenPort }, loc: { file: 'new.conf', line: 7 } }),
    );
    const r = await proxy.reload(next);
    expect(r).toEqual({ ok: false, errors: [expect.stringMatching(new RegExp(`^new\\.conf:7: service admin: cannot listen on 127\\.0\\.0\\.1:${takenPort}: EADDRINUSE`))] });
    expect(proxy.services.map((s) => s.name)).toEqual(['web']);
    expect(proxy.listeners().map((l) => l.port)).toEqual([port]);
    expect(await get(port)).toBe('a');
    // The address bound before the failure was let go again.
    const probe = await rawRequest(freeForApi, 'GET / HTTP/1.1\r\n\r\n', { timeoutMs: 500 });
    expect(probe).toMatchObject({ data: '', closed: true });
  });

  test('a config that cannot run (unknown pool) is refused with file:line and nothing changes', async () => {
    const [a] = await backends('a');
    const proxy = await start(web([a!.port]));
    const next = web([a!.port]);
    next.services[0] = { ...next.services[0]!, pool: 'nope', loc: { file: 'bad.conf', line: 3 } };
    expect(await proxy.reload(next)).toEqual({ ok: false, errors: ["bad.conf:3: service 'web' uses pool 'nope', which does not exist"] });
    expect(await get(proxy.listeners()[0]!.port)).toBe('a');
  });

  test('a removed service stops accepting; its keep-alive connection gets the response in flight with Connection: close', async () => {
    const slow = await rawBackend('slow', (socket, _i, received) => {
      if (received.endsWith('\r\n\r\n')) setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nX-Backend: slow\r\nContent-Length: 4\r\n\r\nslow'), 300);
    });
    cleanups.push(() => slow.close());
    const [a] = await backends('a');
    const config = web([a!.port]);
    config.pools.push(poolModel('s', [slow.port]));
    config.services.push(serviceModel('old', 's', KEEP));
    const proxy = await start(config);
    const oldPort = proxy.listeners().find((l) => l.service === 'old')!.port;
    const conn = await connectRaw(oldPort);
    cleanups.push(() => conn.close());
    conn.send('GET /late HTTP/1.1\r\nHost: t\r\n\r\n');
    await until('the request to reach the slow backend', () => slow.conns.length === 1);

    const r = await proxy.reload(web([a!.port]));
    expect(r).toMatchObject({ ok: true, summary: `services -old; listeners -127.0.0.1:0 kept 1` });
    const refused = await rawRequest(oldPort, 'GET / HTTP/1.1\r\n\r\n', { timeoutMs: 500 });
    expect(refused).toMatchObject({ data: '', closed: true });
    const outcome = await conn.read({ timeoutMs: 3000 });
    expect(outcome.kind).toBe('response');
    if (outcome.kind !== 'response') return;
    expect([outcome.response.status, outcome.response.head.headers.find(([k]) => k.toLowerCase() === 'connection')?.[1]]).toEqual([200, 'close']);
    expect(await conn.waitClosed(2000)).toBe(true);
  });

  test('changed HEADER rules apply to new connections', async () => {
    const [a] = await backends('a');
    const proxy = await start(web([a!.port]));
    const port = proxy.listeners()[0]!.port;
    const header = { op: 'insert' as const, name: 'X-Reloaded', value: 'yes', loc: { file: 'f', line: 1 } };
    expect((await proxy.reload(web([a!.port], KEEP, { headers: [header] }))).ok).toBe(true);
    await get(port);
    expect(a!.conns.join('')).toContain('X-Reloaded: yes\r\n');
  });

  test('a reload that leaves a pool empty warns that every request gets 503, as startup does', async () => {
    const [a] = await backends('a');
    const warnings: string[] = [];
    const proxy = await start(web([a!.port]), createConsola({ level: 3, reporters: [{ log: (o) => o.type === 'warn' && warnings.push(String(o.args[0])) }] }));
    expect((await proxy.reload(web([]))).ok).toBe(true);
    expect(warnings).toEqual(["service web: pool 'p' has no nodes; every request gets 503"]);
  });

  test('a service moved to another address listens there; the old address stops accepting, its open connection carries on', async () => {
    const [a] = await backends('a');
    const [from, to] = [await closedPort(), await closedPort()];
    const proxy = await start(web([a!.port], KEEP, {}, from));
    const conn = await connectRaw(from);
    cleanups.push(() => conn.close());
    const r = await proxy.reload(web([a!.port], KEEP, {}, to));
    expect(r).toMatchObject({ ok: true, summary: `services ~web (listen); listeners +127.0.0.1:${to} -127.0.0.1:${from} kept 0` });
    expect(await rawRequest(from, 'GET / HTTP/1.1\r\n\r\n', { timeoutMs: 500 })).toMatchObject({ data: '', closed: true });
    expect(await get(to)).toBe('a');
    conn.send('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    const outcome = await conn.read({ timeoutMs: 3000 });
    expect(outcome.kind === 'response' ? outcome.response.status : outcome.kind).toBe(200);
  });
});

