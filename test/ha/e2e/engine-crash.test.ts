// kill -9 of the active node's engine, at the tutorial's timing (keepalive 2 s, deadtime 10 s), two tsbal nodes in the
// namespace lab started as rc.local starts them (supervised): the supervisor starts the engine again and the VIP's
// clients lose about a second of requests, not a deadtime. Without the supervisor (TSBAL_TEST_NO_SUPERVISE=1, today's
// unsupervised `tsbal run`) the same test fails: lb1 keeps the VIP refusing connections until lb2 takes over at
// deadtime (issue 14: 9.4 s, 841 failed requests).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { looksLikeTsbalRun } from '../../../src/cli/pidfile.ts';
import { haTimeMs, type HaSettings } from '../../harness/hacluster.ts';
import { loadavg } from 'node:os';
import type { Lab, LabHost } from '../../harness/netns.ts';
import { createPair, waitForSoleHolder, waitJoined, type HaPair } from '../../harness/pair.ts';
import { sleep, wallNow } from '../../harness/proc.ts';
import { failuresBetween, startClientLoop, type ClientLoop } from '../../harness/web.ts';

const SUPERVISED = process.env.TSBAL_TEST_NO_SUPERVISE !== '1';
const settings: HaSettings = { keepalive: '2', deadtime: '10', initdead: '10', autoFailback: 'on', preferred: 'lb1' };
const CLIENT_TIMEOUT_MS = 300;
/** How long after the kill the holders are watched and further failures counted. */
const WATCH_MS = 6_000;

let pair: HaPair | null = null;
let client: ClientLoop | null = null;

beforeAll(async () => {
  pair = await createPair({ lb1: 'tsbal', lb2: 'tsbal' }, settings, { tsbalRunArgs: SUPERVISED ? ['--supervise'] : [] });
  await pair.nodes.lb1.start();
  await pair.nodes.lb2.start();
  await waitForSoleHolder(pair.lab, 'lb1', 30_000);
  await waitJoined(pair.nodes.lb2, 30_000);
}, 60_000);

afterAll(async () => {
  await client?.stop();
  await pair?.dispose();
}, 30_000);

/** The engine of `host`: its `tsbal run` process that is not a supervisor. */
async function enginePid(lab: Lab, host: LabHost): Promise<number> {
  const engines: number[] = [];
  for (const pid of await lab.pids(host)) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue;
    }
    if (looksLikeTsbalRun(argv) && !argv.includes('--supervise')) engines.push(pid);
  }
  if (engines.length !== 1) throw new Error(`expected one tsbal engine on ${host}, found [${engines.join(' ')}]`);
  return engines[0]!;
}

/** Samples the VIP holders every 20 ms for durationMs; returns each change, timed from the start. */
async function holderTrace(lab: Lab, durationMs: number): Promise<string[]> {
  const trace: string[] = [];
  const start = performance.now();
  let last = '';
  while (performance.now() - start < durationMs) {
    const holders = (await lab.holders()).join('+') || 'nobody';
    if (holders !== last) trace.push(`${holders}@${Math.round(performance.now() - start)}ms`);
    last = holders;
    await sleep(20);
  }
  return trace;
}

describe(`kill -9 of the active node's engine (${SUPERVISED ? 'supervised, as rc.local starts it' : 'NOT supervised'}), keepalive 2 s, deadtime 10 s`, () => {
  test('the engine is started again: the outage clients see is about a second (not a deadtime) and the VIP never goes to lb2', async () => {
    const lab = pair!.lab;
    client = await startClientLoop(lab, { intervalMs: 10, timeoutMs: CLIENT_TIMEOUT_MS, maxRequests: 4_000, maxDurationMs: 40_000 });
    await sleep(1_000);
    const engine = await enginePid(lab, 'lb1');
    const killedAt = wallNow();
    process.kill(engine, 'SIGKILL');
    const trace = holderTrace(lab, WATCH_MS);
    const first = await client.firstSuccessSince(killedAt, 20_000);
    const holders = await trace;
    // Watch at least WATCH_MS, and a second past the first success when that came later (unsupervised).
    const watchEnd = Math.max(killedAt + WATCH_MS, (first?.e ?? 0) + 1_000);
    await sleep(Math.max(0, watchEnd - wallNow()) + CLIENT_TIMEOUT_MS + 100);
    const records = client.records();
    const log = (await pair!.nodes.lb1.log()).slice(-6_000);
    expect(first, `nothing served after the kill; lb1 log:\n${log}`).not.toBeNull();
    const servingMs = first!.e - killedAt;
    // Every failure from the kill to the end of the watch: the crash's whole cost, including the HA engine's removal of
    // the left-over VIP after the new engine may already have served a few requests.
    const failed = failuresBetween(records, killedAt - CLIENT_TIMEOUT_MS, watchEnd);
    const outageMs = Math.max(servingMs, ...failed.map((r) => r.e - killedAt));
    const reasons: Record<string, number> = {};
    for (const r of failed) if (!r.ok) reasons[r.err] = (reasons[r.err] ?? 0) + 1;
    const figures = `first served ${Math.round(servingMs)} ms after the kill; outage ${Math.round(outageMs)} ms (to the end of the last failure); ` +
      `${failed.length} failed requests (${JSON.stringify(reasons)}); VIP holders ${holders.join(' > ')}; load ${loadavg()[0]!.toFixed(1)}`;
    if (process.env.TSBAL_TEST_LOG) console.log(log);
    console.log(`engine crash, ${SUPERVISED ? 'supervised' : 'unsupervised'}: ${figures}`);

    if (SUPERVISED) expect(await enginePid(lab, 'lb1')).not.toBe(engine);
    // About a second on a quiet machine: the supervisor's 250 ms, the engine's start (Bun from source), the HA engine's
    // removal of the left-over VIP until lb2 answers (nobody holds it meanwhile). Measured 0.7-2.4 s at load 3-6,
    // 2.6-4.6 s at load 10 and 4.0-5.1 s at load 30-40 on this shared 2-core machine. Without the supervisor the
    // outage lasts until lb2 declares lb1 dead: deadtime less the time since lb1's last heartbeat, so never less than
    // deadtime - keepalive (8 s; measured 8.7-10 s). The bound stays a second under that, whatever the load.
    expect(outageMs, figures).toBeLessThan(haTimeMs(settings.deadtime) - haTimeMs(settings.keepalive) - 1_000);
    // The new HA engine drops and re-adds the VIP (inside the restart); lb2 never takes it.
    expect(holders.filter((h) => !/^(lb1|nobody)@/.test(h)), figures).toEqual([]);
    expect(holders.at(-1), figures).toMatch(/^lb1@/);
  }, 60_000);
});
