// Draining under load, for real: `tsbal run` in front of three node:http backends, a bounded keep-alive load loop,
// and one backend taken out by the management console (drain, POOL REMOVE), by a nodefile edit, or by a SIGHUP reload
// of a config without it. Each way: not one request fails, the backend gets nothing new once the change is in (at
// most the requests already placed on it), and its idle keep-alive connections close.
import { afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir, removeDir } from '../../harness/procs.ts';
import { consoleLine, labBackend, labProxy, loadLoop, sleep, waitFor, type LabBackend, type LabProxy } from './live-lab.ts';

setDefaultTimeout(40_000);
const CONCURRENCY = 6;
let proxy: LabProxy | null = null;
let backends: LabBackend[] = [];
let tmp: string | null = null;

afterEach(async () => {
  await proxy?.stop();
  proxy = null;
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
  if (tmp !== null) removeDir(tmp);
  tmp = null;
});

async function threeBackends(): Promise<[LabBackend, LabBackend, LabBackend]> {
  backends = await Promise.all(['a', 'b', 'c'].map((n) => labBackend(n, 5)));
  return backends as [LabBackend, LabBackend, LabBackend];
}

/**
 * Runs the load loop; once `gone` took 20 requests calls `takeOut`, which resolves once the change is in; keeps loading 800 ms
 * more. Returns the load result and how many requests `gone` received after the change was in.
 */
async function underLoad(gone: LabBackend, takeOut: () => Promise<void>) {
  let stop = false;
  const load = loadLoop(proxy!.port, { concurrency: CONCURRENCY, maxRequests: 20_000, maxMs: 15_000, stop: () => stop });
  await waitFor(`${gone.name} to take 20 requests`, () => gone.requests >= 20, 5000);
  const before = gone.requests;
  await takeOut();
  const atChange = gone.requests;
  await sleep(800);
  const lateOnes = gone.requests - atChange;
  stop = true;
  const result = await load;
  return { result, before, lateOnes };
}

function expectDrained(r: Awaited<ReturnType<typeof underLoad>>, gone: LabBackend, others: LabBackend[]): void {
  expect({ failed: r.result.failed, failures: r.result.failures }).toEqual({ failed: 0, failures: [] });
  // It did take traffic before, and nothing new after (at most what was already placed on it when the change landed).
  expect(r.before).toBeGreaterThanOrEqual(20);
  expect(r.lateOnes).toBeLessThanOrEqual(CONCURRENCY);
  for (const o of others) expect(o.requests).toBeGreaterThan(10);
  expect(r.result.ok).toBeGreaterThan(100);
}

async function idleClosed(b: LabBackend): Promise<void> {
  await waitFor(`${b.name}'s keep-alive connections to close`, () => b.openSockets === 0, 3000);
}

describe('a backend taken out under load loses no request', () => {
  test('pool p drain ip:port on the console: in flight finish, nothing new, idle connections close; ready brings it back', async () => {
    const [a, b, c] = await threeBackends();
    proxy = await labProxy(backends.map((x) => `POOL p ADD ${x.key}`).join('\n'));
    const r = await underLoad(a, async () => {
      expect(await consoleLine(proxy!.mgmt, `pool p drain ${a.key}`)).toEqual(['OK']);
    });
    expectDrained(r, a, [b, c]);
    await idleClosed(a);
    expect(await consoleLine(proxy.mgmt, `node ${a.key}`)).toContain(`${a.key} admin drain`);
    expect(await consoleLine(proxy.mgmt, `pool p ready ${a.key}`)).toEqual(['OK']);
    const back = await loadLoop(proxy.port, { concurrency: 3, maxRequests: 60, maxMs: 5000 });
    expect(back.failed).toBe(0);
    expect(back.byBody.get('a') ?? 0).toBeGreaterThan(0);
  });

  test('POOL p REMOVE ip:port on the console drains it (Perlbal kept using it)', async () => {
    const [a, b, c] = await threeBackends();
    proxy = await labProxy(backends.map((x) => `POOL p ADD ${x.key}`).join('\n'));
    const r = await underLoad(a, async () => {
      expect(await consoleLine(proxy!.mgmt, `POOL p REMOVE ${a.key}`)).toEqual(['OK']);
    });
    expectDrained(r, a, [b, c]);
    await idleClosed(a);
    expect((await consoleLine(proxy.mgmt, 'show pool p')).map((l) => l.split(' ')[0])).toEqual([b.key, c.key, '.']);
  });

  test('a nodefile edit that drops it is applied within 1.5 s and drains it', async () => {
    const [a, b, c] = await threeBackends();
    tmp = makeTempDir('nodefile');
    const nodefile = path.join(tmp, 'nodes.txt');
    fs.writeFileSync(nodefile, backends.map((x) => `${x.key}\n`).join(''));
    proxy = await labProxy(`SET nodefile = ${nodefile}`);
    let tookMs = 0;
    const r = await underLoad(a, async () => {
      // Replaced by rename, as editors and config management do.
      fs.writeFileSync(`${nodefile}.new`, `# a is out\n${b.key}\n${c.key} weight=1\n`);
      fs.renameSync(`${nodefile}.new`, nodefile);
      tookMs = await waitFor('the nodefile change to show in show pool', async () => !(await consoleLine(proxy!.mgmt, 'show pool p')).some((l) => l.startsWith(a.key)), 3000);
    });
    expectDrained(r, a, [b, c]);
    expect(tookMs).toBeLessThanOrEqual(1500);
    await idleClosed(a);
    expect(proxy.daemon.output()).toContain(`nodefile ${nodefile} changed: draining ${a.key}`);
  });

  test('a reload (SIGHUP) of a config without it drains it', async () => {
    const [a, b, c] = await threeBackends();
    proxy = await labProxy(backends.map((x) => `POOL p ADD ${x.key}`).join('\n'));
    const r = await underLoad(a, async () => {
      proxy!.writeConf([b, c].map((x) => `POOL p ADD ${x.key}`).join('\n'));
      process.kill(proxy!.daemon.pid, 'SIGHUP');
      await waitFor('the reload to drop a from show pool', async () => !(await consoleLine(proxy!.mgmt, 'show pool p')).some((l) => l.startsWith(a.key)), 5000);
    });
    expectDrained(r, a, [b, c]);
    await idleClosed(a);
  });
});

describe('live nodefile', () => {
  test('a malformed nodefile keeps the running list and logs file:line; the fixed file then applies, weights included', async () => {
    const [a, b] = await threeBackends();
    tmp = makeTempDir('nodefile');
    const nodefile = path.join(tmp, 'nodes.txt');
    fs.writeFileSync(nodefile, `${a.key}\n${b.key}\n`);
    proxy = await labProxy(`SET nodefile = ${nodefile}`);
    fs.writeFileSync(nodefile, `${a.key}\n${b.key} weight=lots\n`);
    await waitFor('the bad line to be reported', () => proxy!.daemon.output().includes(`${nodefile}:2: weight must be an integer from 0 to 256, not 'lots'`), 3000);
    expect(proxy.daemon.output()).toContain(`nodefile ${nodefile} not applied: keeping the 2 current backends of pool p`);
    expect(await consoleLine(proxy.mgmt, 'show pool p')).toEqual([`${a.key} 0`, `${b.key} 0`, '.']);
    expect((await consoleLine(proxy.mgmt, `node ${b.key}`)).some((l) => l.startsWith(`${b.key} weight`))).toBe(false);
    fs.writeFileSync(nodefile, `${a.key}\n${b.key} weight=3\n`);
    await waitFor('the fixed file to apply', async () => (await consoleLine(proxy!.mgmt, `node ${b.key}`)).includes(`${b.key} weight 3`), 3000);
  });
});
