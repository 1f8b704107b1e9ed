// Active health checks against real backends (test/harness/controllable.ts) that die, answer 500, go silent and
// come back: removal within fall × interval + timeout, return within rise × interval, no request to a backend while
// it is down, one log line per transition, slow start's growing share, and all_down.
import { afterEach, describe, expect, test } from 'bun:test';
import { createConsola } from 'consola';
import type { PoolModel, ServiceModel } from '../../../src/config/model.ts';
import { startProxy, type ProxyHandle } from '../../../src/proxy/index.ts';
import { startControllableBackend, type ControllableBackend } from '../../harness/controllable.ts';
import { configModel, poolModel, rawRequest, serviceModel } from '../helpers.ts';

const INTERVAL = 300;
const TIMEOUT = 200;
const RISE = 2;
const FALL = 3;
/** Timers firing late on a loaded machine (two cores, several test runs): the check's own clock is not the test's. */
const SCHED_SLACK = 150;

interface LogLine {
  at: number;
  type: string;
  text: string;
}

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  cleanup = [];
});

async function backend(name: string): Promise<ControllableBackend> {
  const b = await startControllableBackend(name);
  cleanup.push(() => b.close());
  return b;
}

async function proxyOver(
  backends: ControllableBackend[],
  pool: PoolModel['options'],
  svc: ServiceModel['options'] = {},
  balance: PoolModel['balance_method'] = 'roundrobin',
  onLog: (text: string) => void = () => {},
) {
  const logs: LogLine[] = [];
  const log = createConsola({
    level: 4,
    reporters: [
      {
        log: (o) => {
          logs.push({ at: performance.now(), type: o.type, text: o.args.join(' ') });
          onLog(o.args.join(' '));
        },
      },
    ],
  });
  const config = configModel(
    [serviceModel('svc', 'pool', svc)],
    [poolModel('pool', backends.map((b) => b.port), { balance_method: balance, options: pool })],
  );
  const proxy = await startProxy(config, { log });
  cleanup.push(() => proxy.close({ graceful: false }));
  return { proxy, port: proxy.listeners()[0]!.port, logs };
}

const CHECKS = {
  health_check_path: '/health',
  health_check_interval: INTERVAL,
  health_check_timeout: TIMEOUT,
  health_check_rise: RISE,
  health_check_fall: FALL,
};

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<number> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(5);
  }
  return performance.now();
}

const transitions = (logs: LogLine[], key: string): LogLine[] => logs.filter((l) => l.text.startsWith(`backend ${key} down`) || l.text.startsWith(`backend ${key} up`));

async function get(port: number, path = '/'): Promise<{ status: number; backend: string | null; ms: number }> {
  const r = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, { until: (d) => /\r\n\r\n[\s\S]*\n$/.test(d) });
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(r.data)?.[1] ?? 0);
  return { status, backend: /X-Backend: (\S+)/.exec(r.data)?.[1] ?? null, ms: r.ms };
}

/** Fires requests while `during` runs; every one must be answered 200 by a backend other than `not`. */
async function trafficAvoids(port: number, not: ControllableBackend, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const r = await get(port, `/r${i}`);
    expect(r.status).toBe(200);
    expect(r.backend).not.toBe(not.name);
  }
}

describe('active health checks', () => {
  test('a backend that dies while idle is out within fall × interval + timeout, gets nothing while out, and is back within rise × interval', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const { proxy, port, logs } = await proxyOver([a, b], CHECKS);
    await Bun.sleep(INTERVAL * 2);
    expect(b.checksSince(0).length).toBeGreaterThan(0);
    expect(b.checksSince(0)[0]).toMatchObject({ method: 'GET', target: '/health', host: b.key });

    const died = performance.now();
    await b.set({ kind: 'dead' });
    const out = await until('b down', () => proxy.engine.health.get(b.key)!.state === 'down', 5000);
    const removal = out - died;
    expect(removal).toBeLessThanOrEqual(FALL * INTERVAL + TIMEOUT + SCHED_SLACK);
    expect(transitions(logs, b.key).map((l) => [l.type, l.text])).toEqual([
      ['warn', `backend ${b.key} down (check GET /health: connect ECONNREFUSED, ${FALL} in a row)`],
    ]);

    await trafficAvoids(port, b, 20);
    const revived = performance.now();
    await b.set({ kind: 'healthy' });
    const back = await until('b up', () => proxy.engine.health.get(b.key)!.state === 'up', 5000);
    const ret = back - revived;
    expect(ret).toBeLessThanOrEqual(RISE * INTERVAL + SCHED_SLACK);
    expect(b.proxiedSince(0).filter((s) => s.at > died && s.at < back).length).toBe(0);
    expect(transitions(logs, b.key).map((l) => l.text)).toEqual([
      `backend ${b.key} down (check GET /health: connect ECONNREFUSED, ${FALL} in a row)`,
      `backend ${b.key} up (check passed ${RISE} in a row)`,
    ]);
    // Back in rotation.
    const seen = new Set<string | null>();
    for (let i = 0; i < 6; i++) seen.add((await get(port)).backend);
    expect([...seen].sort()).toEqual(['a', 'b']);
    console.log(`dies while idle: removed after ${Math.round(removal)} ms (bound ${FALL * INTERVAL + TIMEOUT}), back after ${Math.round(ret)} ms (bound ${RISE * INTERVAL})`);
  });

  test('a backend answering 500 to everything is taken out by its checks and gets no request until they pass again', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const { proxy, port, logs } = await proxyOver([a, b], CHECKS);
    await Bun.sleep(INTERVAL);
    const broke = performance.now();
    await b.set({ kind: 'status', status: 500 });
    const out = await until('b down', () => proxy.engine.health.get(b.key)!.state === 'down', 5000);
    expect(out - broke).toBeLessThanOrEqual(FALL * INTERVAL + TIMEOUT + SCHED_SLACK);
    expect(transitions(logs, b.key).map((l) => l.text)).toEqual([`backend ${b.key} down (check GET /health: 500, ${FALL} in a row)`]);
    await trafficAvoids(port, b, 20);
    expect(b.proxiedSince(out).length).toBe(0);
    console.log(`answers 500: removed after ${Math.round(out - broke)} ms (bound ${FALL * INTERVAL + TIMEOUT})`);
  });

  test('under load from six keep-alive clients, no request is given to a backend from the moment it is marked down until it is back', async () => {
    const a = await backend('a');
    const b = await backend('b');
    // The transition's log line is written synchronously inside it: what b had been given then is exact.
    const usedAt: Record<'down' | 'up', number> = { down: -1, up: -1 };
    let nodeB: { used: number } | undefined;
    const { proxy, port } = await proxyOver([a, b], CHECKS, { persist_client: true, persist_backend: true }, 'roundrobin', (text) => {
      if (text.startsWith(`backend ${b.key} down`)) usedAt.down = nodeB!.used;
      if (text.startsWith(`backend ${b.key} up`)) usedAt.up = nodeB!.used;
    });
    nodeB = proxy.services[0]!.nodes.find((n) => n.key === b.key)!;
    let stop = false;
    let sent = 0;
    const client = async (): Promise<void> => {
      const deadline = performance.now() + 15_000;
      for (let i = 0; i < 100_000 && !stop && performance.now() < deadline; i++) {
        const r = await fetch(`http://127.0.0.1:${port}/load${i}`);
        await r.arrayBuffer();
        sent++;
      }
    };
    const load = Promise.all([client(), client(), client(), client(), client(), client()]);
    try {
      await Bun.sleep(INTERVAL);
      await b.set({ kind: 'status', status: 500 });
      await until('b down', () => usedAt.down >= 0, 5000);
      const sentAtDown = sent;
      await Bun.sleep(INTERVAL * 2);
      await b.set({ kind: 'healthy' });
      await until('b up', () => usedAt.up >= 0, 5000);
      expect(sent - sentAtDown).toBeGreaterThan(20);
      expect(usedAt.up).toBe(usedAt.down);
      await Bun.sleep(200);
      expect(nodeB.used).toBeGreaterThan(usedAt.up);
    } finally {
      stop = true;
      await load;
    }
  });

  test('a silent backend (accepts, never answers) is taken out by check timeouts, its idle connections closed, before requests stall on it', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const { proxy, port, logs } = await proxyOver([a, b], CHECKS, { persist_backend: true, backend_persist_cache: 4, response_timeout: 10_000 });
    // Pooled keep-alive connections to both.
    for (let i = 0; i < 6; i++) expect((await get(port)).status).toBe(200);
    const nodeB = proxy.services[0]!.nodes.find((n) => n.key === b.key)!;
    expect(nodeB.idle.length).toBeGreaterThan(0);

    const silent = performance.now();
    await b.set({ kind: 'silent' });
    const out = await until('b down', () => proxy.engine.health.get(b.key)!.state === 'down', 5000);
    expect(out - silent).toBeLessThanOrEqual(FALL * INTERVAL + TIMEOUT + SCHED_SLACK);
    expect(transitions(logs, b.key).map((l) => l.text)).toEqual([`backend ${b.key} down (check GET /health: no answer within 200 ms, ${FALL} in a row)`]);
    await until('idle connections to b closed', () => nodeB.idle.length === 0, 1000);
    for (let i = 0; i < 10; i++) {
      const r = await get(port);
      expect([r.status, r.backend]).toEqual([200, 'a']);
      expect(r.ms).toBeLessThan(1000);
    }
    console.log(`silent: removed after ${Math.round(out - silent)} ms (bound ${FALL * INTERVAL + TIMEOUT})`);
  });

  test('health_check = tcp only connects: a dead backend goes down, a silent one (it accepts) stays up', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const tcp = { health_check: 'tcp', health_check_interval: INTERVAL, health_check_timeout: TIMEOUT, health_check_fall: FALL };
    const { proxy, logs } = await proxyOver([a, b], tcp);
    await a.set({ kind: 'silent' });
    const died = performance.now();
    await b.set({ kind: 'dead' });
    const out = await until('b down', () => proxy.engine.health.get(b.key)!.state === 'down', 5000);
    expect(out - died).toBeLessThanOrEqual(FALL * INTERVAL + TIMEOUT + SCHED_SLACK);
    expect(transitions(logs, b.key).map((l) => l.text)).toEqual([`backend ${b.key} down (check TCP connect: connect ECONNREFUSED, ${FALL} in a row)`]);
    expect([proxy.engine.health.get(a.key)!.state, proxy.engine.health.get(a.key)!.lastCheck]).toEqual(['up', 'connected']);
    // A TCP check sends nothing.
    expect(a.seen().length).toBe(0);
  });

  test('one check per backend address however many services use the pool', async () => {
    const a = await backend('a');
    const logs: LogLine[] = [];
    const log = createConsola({ level: 0, reporters: [{ log: (o) => logs.push({ at: 0, type: o.type, text: o.args.join(' ') }) }] });
    const config = configModel(
      [serviceModel('s1', 'pool'), serviceModel('s2', 'pool'), serviceModel('s3', 'pool')],
      [poolModel('pool', [a.port], { options: CHECKS })],
    );
    const proxy = await startProxy(config, { log });
    cleanup.push(() => proxy.close({ graceful: false }));
    expect(proxy.checks.targets.size).toBe(1);
    const since = performance.now();
    await Bun.sleep(INTERVAL * 5 + INTERVAL / 2);
    // 5 or 6 checks in 5.5 intervals (jitter shortens intervals by up to 10 %), not 15.
    expect(a.checksSince(since).length).toBeGreaterThanOrEqual(5);
    expect(a.checksSince(since).length).toBeLessThanOrEqual(7);
  });
});

describe('slow start', () => {
  test('a backend back from down takes a growing share over slow_start', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const { proxy, port, logs } = await proxyOver([a, b], { ...CHECKS, health_check_rise: 1, slow_start: 4000 }, { persist_client: true, persist_backend: true });
    await Bun.sleep(INTERVAL);
    await b.set({ kind: 'dead' });
    await until('b down', () => proxy.engine.health.get(b.key)!.state === 'down', 5000);
    await b.set({ kind: 'healthy' });
    const back = await until('b starting', () => proxy.engine.health.get(b.key)!.state === 'starting', 5000);
    // The ramp runs from the engine's own stamp of 'starting', which this poll sees up to an interval later.
    const startingSince = proxy.engine.health.get(b.key)!.since;
    // Sequential requests for the whole ramp and one second beyond (bounded in count and time), bucketed by time.
    const samples: Array<{ t: number; b: boolean }> = [];
    let upAt = Infinity;
    let upAfterStarting = Infinity;
    const client = async (): Promise<void> => {
      for (let i = 0; i < 30_000 && performance.now() - back < 8000; i++) {
        // Keep-alive both sides (fetch's pool, persist_backend), so a loaded machine still gives enough samples.
        const r = await fetch(`http://127.0.0.1:${port}/`);
        await r.arrayBuffer();
        const t = performance.now() - back;
        samples.push({ t, b: r.headers.get('x-backend') === 'b' });
        if (upAt === Infinity && proxy.engine.health.get(b.key)!.state === 'up') {
          upAt = t;
          upAfterStarting = performance.now() - startingSince;
        }
        if (t > upAt + 1000) break;
      }
    };
    await Promise.all([client(), client(), client(), client(), client(), client()]);
    const share = (from: number, to: number): number => {
      const w = samples.filter((x) => x.t >= from && x.t < to);
      if (w.length <= 20) throw new Error(`only ${w.length} requests in ${from}-${to} ms: ${samples.map((x) => Math.round(x.t)).join(' ')}`);
      return w.filter((x) => x.b).length / w.length;
    };
    const early = share(0, 1000);
    const mid = share(1800, 2800);
    const late = share(upAt, upAt + 1000);
    console.log(`slow start 4 s: share of b ${Math.round(early * 100)} % in 0-1 s, ${Math.round(mid * 100)} % in 1.8-2.8 s, ${Math.round(late * 100)} % once up (at ${Math.round(upAt)} ms)`);
    expect(transitions(logs, b.key).length).toBe(2);
    // Round robin over two: 50 % at full weight. The share grows with the ramp (1/20 → 1 over 4 s).
    expect(upAfterStarting).toBeGreaterThanOrEqual(4000);
    expect(upAfterStarting).toBeLessThan(4000 + 1500);
    expect(early).toBeLessThan(0.2);
    expect(mid).toBeGreaterThan(early + 0.05);
    expect(mid).toBeLessThan(0.45);
    expect(late).toBeGreaterThan(0.4);
  }, 15_000);
});

describe('all_down', () => {
  test('every backend down by checks: by default the request still goes to one (its answer relayed); all_down = 503 answers 503', async () => {
    for (const allDown of ['keep_trying', '503'] as const) {
      const a = await backend(`a-${allDown}`);
      const b = await backend(`b-${allDown}`);
      const { proxy, port } = await proxyOver([a, b], { ...CHECKS, health_check_fall: 1, all_down: allDown });
      await a.set({ kind: 'status', status: 500 });
      await b.set({ kind: 'status', status: 500 });
      await until('both down', () => [a, b].every((x) => proxy.engine.health.get(x.key)!.state === 'down'), 5000);
      const r = await get(port);
      if (allDown === 'keep_trying') expect([r.status, r.backend?.startsWith('a-') || r.backend?.startsWith('b-')]).toEqual([500, true]);
      else expect([r.status, r.backend]).toEqual([503, null]);
      await proxy.close({ graceful: false });
    }
  });
});

describe('passive 5xx streak', () => {
  test('health_check_5xx_streak = 3 takes a backend answering 500 out after 3 answers, without checks, with one log line', async () => {
    const a = await backend('a');
    const b = await backend('b');
    await b.set({ kind: 'status', status: 500 });
    const { proxy, port, logs } = await proxyOver([a, b], { health_check_5xx_streak: 3 }, { down_backoff: 5000 });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await get(port)).status);
    expect(b.proxiedSince(0).length).toBe(3);
    expect(statuses.filter((s) => s === 500).length).toBe(3);
    expect(proxy.engine.health.get(b.key)!.state).toBe('down');
    expect(transitions(logs, b.key).map((l) => l.text)).toEqual([`backend ${b.key} down (3 answers 5xx in a row, the last 500; retry in 5 s)`]);
  });

  test('off by default: a backend answering 500 keeps getting its share', async () => {
    const a = await backend('a');
    const b = await backend('b');
    await b.set({ kind: 'status', status: 500 });
    const { port } = await proxyOver([a, b], {});
    for (let i = 0; i < 20; i++) await get(port);
    expect(b.proxiedSince(0).length).toBe(10);
  });
});

describe('checks across a reload', () => {
  test('a reload that sets health_check_path starts the checks, one that removes it stops them and hands the backend back to the passive breaker', async () => {
    const a = await backend('a');
    const b = await backend('b');
    await b.set({ kind: 'status', status: 500 });
    const { proxy } = await proxyOver([a, b], {});
    expect(proxy.checks.targets.size).toBe(0);
    const config = (pool: PoolModel['options']) =>
      configModel([serviceModel('svc', 'pool')], [poolModel('pool', [a.port, b.port], { balance_method: 'roundrobin', options: pool })]);
    expect((await proxy.reload(config(CHECKS))).ok).toBe(true);
    expect(proxy.checks.targets.size).toBe(2);
    await until('b down', () => proxy.engine.health.get(b.key)!.state === 'down', 5000);
    expect((await proxy.reload(config({}))).ok).toBe(true);
    expect(proxy.checks.targets.size).toBe(0);
    expect(proxy.engine.health.get(b.key)!.checkers).toBe(0);
    const stopped = performance.now();
    await Bun.sleep(INTERVAL * 2);
    expect(b.checksSince(stopped).length).toBe(0);
    expect(a.checksSince(stopped).length).toBe(0);
  });
});
