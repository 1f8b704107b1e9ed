// The tutorial scenario with real Debian Apache backends: a balancer with persist_client, persist_backend and
// verify_backend in front of two Apache 2.4. Killing one Apache (SIGKILL of its whole process group) under a
// bounded keep-alive load must lose no request; killing both must give a fast 503 with a short body.
// The same steps against Perlbal 1.80 are kept as a bounded contrast: it never retries and never answers 503.
import { afterEach, describe, expect, test } from 'bun:test';
import { type Apache, startApache } from '../harness/apache.ts';
import { runKeepAliveLoad } from '../harness/load.ts';
import { type PerlbalConfProxy, startPerlbal } from '../harness/perlbal.ts';
import { TUTORIAL_OPTIONS } from '../harness/perlbalconf.ts';
import { establishedTo, sleep } from '../harness/ports.ts';
import { stopAll } from '../harness/procs.ts';
import { describeOutcome, exchange } from '../harness/rawclient.ts';
import { startTsbal } from '../harness/tsbal.ts';
import { testFor } from './diffkit.ts';

let running: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  await stopAll(running);
  running = [];
});

async function tutorial(kind: 'perlbal' | 'tsbal'): Promise<{ apaches: [Apache, Apache]; proxy: PerlbalConfProxy }> {
  const apaches = await Promise.all([startApache({ name: 'a1' }), startApache({ name: 'a2' })]);
  running.push(...apaches);
  const spec = { backends: apaches.map((a) => a.port), set: TUTORIAL_OPTIONS };
  const proxy = kind === 'perlbal' ? await startPerlbal(spec) : await startTsbal(spec);
  running.push(proxy);
  return { apaches: [apaches[0]!, apaches[1]!], proxy };
}

async function kill(apache: Apache): Promise<void> {
  apache.signalGroup('SIGKILL');
  expect(await apache.waitGone(3000), `${apache.name} gone after SIGKILL`).toBe(true);
}

/**
 * Runs `clients` keep-alive clients of `perClient` GETs each through the proxy, and SIGKILLs the busier Apache
 * once `killAt` requests have completed. Asserts that no request failed and that the survivor took the rest.
 */
async function killOneUnderLoad(
  proxy: PerlbalConfProxy,
  apaches: [Apache, Apache],
  clients: number,
  perClient: number,
  killAt: number,
): Promise<Apache> {
  let victim: Apache | null = null;
  let killing: Promise<void> = Promise.resolve();
  const load = await runKeepAliveLoad({
    port: proxy.port,
    clients,
    requestsPerClient: perClient,
    path: '/slow?ms=10', // keeps requests in flight on both backends at the moment of the kill
    requestTimeoutMs: 3000,
    deadlineMs: 20_000,
    onProgress: (completed) => {
      if (completed !== killAt) return;
      // Kill the busier backend, so the kill certainly hits connections in use.
      victim = apaches[0].hits().length >= apaches[1].hits().length ? apaches[0] : apaches[1];
      killing = kill(victim);
    },
  });
  await killing;
  expect(victim).not.toBeNull();
  const survivor = victim === apaches[0] ? apaches[1] : apaches[0];
  const summary = `${JSON.stringify(load.byStatus)}; first failures: ${JSON.stringify(load.failures.slice(0, 3))}`;
  expect(load.failures.length, summary).toBe(0);
  expect(load.ok).toBe(clients * perClient);
  const rest = clients * perClient - killAt;
  expect((await survivor.waitForHits(rest)).length, 'the survivor carried the rest').toBeGreaterThanOrEqual(rest);
  return survivor;
}

describe('tsbal in front of two Apache backends (tutorial options)', () => {
  testFor('tsbal')(
    'killing one Apache under load (8 keep-alive clients) loses no request, then killing both gives a 503 with a short body in under 1 s',
    async () => {
      const { apaches, proxy } = await tutorial('tsbal');
      const survivor = await killOneUnderLoad(proxy, apaches, 8, 150, 400);
      await kill(survivor);
      for (let i = 0; i < 3; i++) {
        const { outcome } = await exchange(proxy.port, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n', { timeoutMs: 3000 });
        const res = outcome.kind === 'response' ? outcome.response : null;
        expect(res?.status, describeOutcome(outcome)).toBe(503);
        expect(outcome.ms).toBeLessThan(1000);
        expect(res!.body.length).toBeGreaterThan(0);
        expect(res!.body.length).toBeLessThan(1024);
      }
    },
    40_000,
  );

  // With 64 clients the survivor runs at MaxRequestWorkers, and mpm event closes idle keep-alive connections,
  // including ones that just passed the verify probe: the keep-alive race, which tsbal retries on a new connection.
  testFor('tsbal')('killing one Apache under heavier load (64 keep-alive clients) loses no request', async () => {
    const { apaches, proxy } = await tutorial('tsbal');
    await killOneUnderLoad(proxy, apaches, 64, 30, 600);
  }, 40_000);
});

describe('contrast: Perlbal 1.80 in the same scenario (bounded, never waiting out its 30 s hang)', () => {
  test(
    'perlbal: killing the Apache that holds in-flight requests leaves them hanging with no bytes (no retry)',
    async () => {
      const { apaches, proxy } = await tutorial('perlbal');
      const loading = runKeepAliveLoad({
        port: proxy.port,
        clients: 8,
        requestsPerClient: 1,
        path: '/slow?ms=1500',
        requestTimeoutMs: 2500,
        deadlineMs: 5000,
      });
      await sleep(500);
      const inFlight = apaches.map((a) => establishedTo(a.port));
      const victim = inFlight[0]! >= inFlight[1]! ? apaches[0] : apaches[1];
      expect(Math.max(...inFlight), `connections per Apache: ${inFlight.join(', ')}`).toBeGreaterThan(0);
      await kill(victim);
      const load = await loading;
      expect(load.failures.length, JSON.stringify(load.byStatus)).toBeGreaterThanOrEqual(1);
      for (const failure of load.failures) expect(failure.what).toMatch(/^no complete response within \d+ ms, received ""$/);
    },
    20_000,
  );

  test(
    'perlbal: with both Apaches dead a request gets no byte within 1.5 s (it waits for idle_timeout, then closes)',
    async () => {
      const { apaches, proxy } = await tutorial('perlbal');
      await Promise.all(apaches.map(kill));
      const { outcome } = await exchange(proxy.port, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n', { timeoutMs: 1500 });
      expect(outcome.kind, describeOutcome(outcome)).toBe('timeout');
      expect(outcome.kind !== 'response' && outcome.received.length).toBe(0);
    },
    20_000,
  );
});
