// Weights and max_conns through a real `tsbal run` and real backends: 1,000 requests over weights 1/3 land within
// ±5 points of 25/75 (random and roundrobin), the console's `pool p weight` turns the shares round; with max_conns 2 a
// slow backend never sees more than 2 requests at once while the others wait in the queue (visible in `queues` and
// /metrics), and a request that waits past queue_timeout gets 503, counted and logged.
import { afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test';
import http from 'node:http';
import { consoleLine, labBackend, labProxy, loadLoop, waitFor, type LabBackend, type LabProxy } from './live-lab.ts';

setDefaultTimeout(40_000);
let proxy: LabProxy | null = null;
let backends: LabBackend[] = [];

afterEach(async () => {
  await proxy?.stop();
  proxy = null;
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

function share(byBody: Map<string, number>, name: string): number {
  let total = 0;
  for (const n of byBody.values()) total += n;
  return (byBody.get(name) ?? 0) / total;
}

/** One GET on a fresh connection: status, body and how long it took. */
function get(port: number, path = '/'): Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, ms: Date.now() - t0 }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
  });
}

describe('weights', () => {
  for (const method of ['random', 'roundrobin'] as const) {
    test(`${method}: 1,000 requests over weights 1/3 land within ±5 points of 25/75`, async () => {
      backends = [await labBackend('a'), await labBackend('b')];
      const [a, b] = backends as [LabBackend, LabBackend];
      proxy = await labProxy(`SET balance_method = ${method}\nPOOL p ADD ${a.key} weight=1\nPOOL p ADD ${b.key} weight=3`);
      const r = await loadLoop(proxy.port, { concurrency: 4, maxRequests: 1000, maxMs: 30_000 });
      expect(r.failed).toBe(0);
      expect(r.ok).toBe(1000);
      const aShare = share(r.byBody, 'a');
      expect(aShare).toBeGreaterThanOrEqual(0.2);
      expect(aShare).toBeLessThanOrEqual(0.3);
      expect(await consoleLine(proxy.mgmt, 'show pool p')).toEqual([`${a.key} ${a.requests}`, `${b.key} ${b.requests}`, '.']);
      expect(await consoleLine(proxy.mgmt, `node ${b.key}`)).toContain(`${b.key} weight 3`);
    });
  }

  test('pool p weight on the console turns the shares round; weight 0 takes it out without a failed request', async () => {
    backends = [await labBackend('a'), await labBackend('b')];
    const [a, b] = backends as [LabBackend, LabBackend];
    proxy = await labProxy(`SET balance_method = roundrobin\nPOOL p ADD ${a.key}\nPOOL p ADD ${b.key}`);
    expect(await consoleLine(proxy.mgmt, `pool p weight ${a.key} 3`)).toEqual(['OK']);
    const r = await loadLoop(proxy.port, { concurrency: 4, maxRequests: 400, maxMs: 20_000 });
    expect(share(r.byBody, 'a')).toBeGreaterThanOrEqual(0.7);
    expect(share(r.byBody, 'a')).toBeLessThanOrEqual(0.8);
    expect(await consoleLine(proxy.mgmt, `node ${a.key}`)).toContain(`${a.key} weight 3`);
    expect(await consoleLine(proxy.mgmt, `pool p weight ${a.key} 0`)).toEqual(['OK']);
    const before = a.requests;
    const z = await loadLoop(proxy.port, { concurrency: 4, maxRequests: 200, maxMs: 20_000 });
    expect([z.failed, z.ok, a.requests - before]).toEqual([0, 200, 0]);
    expect(await consoleLine(proxy.mgmt, `pool p weight ${a.key} 300`)).toEqual(["ERROR: weight must be an integer from 0 to 256, not '300'"]);
    expect(await consoleLine(proxy.mgmt, `pool p weight 127.0.0.9:1 2`)).toEqual(["ERROR: 127.0.0.9:1 is not in pool 'p'"]);
  });
});

describe('max_conns', () => {
  test('with max_conns 2 a slow backend never sees more than 2 requests at once; the rest wait in the queue and all succeed', async () => {
    backends = [await labBackend('slow', 300)];
    const [slow] = backends as [LabBackend];
    proxy = await labProxy(`POOL p ADD ${slow.key}\nSET max_conns = 2\nSET queue_timeout = 10s`);
    const all = Promise.all(Array.from({ length: 8 }, () => get(proxy!.port)));
    // While they wait: the console's queues and /metrics show them.
    await waitFor('queued requests in `queues`', async () => (await consoleLine(proxy!.mgmt, 'queues')).includes('web-normal.count 6'), 3000);
    const metrics = (await get(proxy.mgmt, '/metrics')).body;
    expect(metrics).toMatch(/^tsbal_queue_depth\{service="web"\} [4-6]$/m);
    const answers = await all;
    expect(answers.map((x) => x.status)).toEqual(Array(8).fill(200));
    expect(slow.maxInFlight).toBe(2);
    expect(slow.requests).toBe(8);
    // 8 requests, 2 at a time, 300 ms each: the last ones waited about three rounds.
    expect(Math.max(...answers.map((x) => x.ms))).toBeGreaterThanOrEqual(1100);
    expect((await get(proxy.mgmt, '/metrics')).body).toMatch(/^tsbal_queued_total\{service="web"\} 6$/m);
  });

  test('SET p max_conns on the console applies from the next request on', async () => {
    backends = [await labBackend('slow', 200)];
    const [slow] = backends as [LabBackend];
    proxy = await labProxy(`POOL p ADD ${slow.key}`);
    expect(await consoleLine(proxy.mgmt, 'SET p max_conns = 1')).toEqual(['OK']);
    expect(await consoleLine(proxy.mgmt, 'SET p max_conns = lots')).toEqual(["ERROR: Expecting integer value for parameter 'max_conns'"]);
    const answers = await Promise.all(Array.from({ length: 3 }, () => get(proxy!.port)));
    expect(answers.map((x) => x.status)).toEqual([200, 200, 200]);
    expect(slow.maxInFlight).toBe(1);
  });

  test('a request that waits past queue_timeout gets 503, counted in /metrics and logged', async () => {
    backends = [await labBackend('slow', 1500)];
    const [slow] = backends as [LabBackend];
    proxy = await labProxy(`POOL p ADD ${slow.key}\nSET max_conns = 2\nSET queue_timeout = 300ms`);
    const answers = await Promise.all(Array.from({ length: 3 }, () => get(proxy!.port)));
    const statuses = answers.map((x) => x.status).sort();
    expect(statuses).toEqual([200, 200, 503]);
    const refused = answers.find((x) => x.status === 503)!;
    // Answered once queue_timeout passed (the sweep runs every 100 ms), long before the backend would have had a slot.
    expect(refused.ms).toBeGreaterThanOrEqual(300);
    expect(refused.ms).toBeLessThan(1200);
    expect(refused.body).toContain('max_conns');
    expect(slow.maxInFlight).toBe(2);
    expect((await get(proxy.mgmt, '/metrics')).body).toMatch(/^tsbal_queue_timeouts_total\{service="web"\} 1$/m);
    await waitFor('the queue_timeout warning', () => proxy!.daemon.output().includes('service web: 1 request(s) got 503 after waiting queue_timeout 300 ms'), 2000);
  });
});
