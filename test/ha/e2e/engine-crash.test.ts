// kill -9 of the active node's engine, at the tutorial's timing (keepalive 2 s, deadtime 10 s), two tsbal nodes in the
// namespace lab started as rc.local starts them (supervised): the supervisor starts the engine again, the new engine
// keeps the VIP its predecessor left (a fast restart, src/ha/restart.ts), and the VIP's clients lose requests only
// until the new engine listens: about a second, not a deadtime. Without the supervisor (TSBAL_TEST_NO_SUPERVISE=1)
// the same test fails: lb1 keeps the VIP refusing connections until lb2 takes over at deadtime (issue 14: 9.4 s, 841
// failed requests). Without the fast restart it fails too: the new engine removed the VIP until lb2 answered
// (nobody held it for 0.9-1.7 s after the engine was already serving).
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

/** The engine of `host`: its `tsbal run` process that is neither a supervisor nor a worker. */
async function enginePid(lab: Lab, host: LabHost): Promise<number> {
  const engines: number[] = [];
  for (const pid of await lab.pids(host)) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue;
    }
    // Not the supervisor, nor a SERVER workers process (`run --worker`): the owner is the engine.
    if (looksLikeTsbalRun(argv) && !argv.includes('--supervise') && !argv.includes('--worker')) engines.push(pid);
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
    const firstAnswer = await client.firstSuccessSince(killedAt, 20_000);
    // With SERVER workers a worker of the killed engine may still answer a request in flight for a few ms, before it
    // sees its owner gone: the new engine's first answer is the first success begun after the first failure.
    await sleep(500);
    const firstFailure = client.records().filter((r) => !r.ok && r.e >= killedAt).sort((a, b) => a.e - b.e)[0];
    const first = firstFailure === undefined ? firstAnswer : await client.firstSuccessSince(firstFailure.s, 20_000);
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
    // The fast restart: the VIP never leaves lb1 (before it, the new engine removed it until lb2 answered: nobody held it
    // for 0.9-1.7 s), and nothing fails once the new engine serves: the whole cost is the engine's restart.
    expect(holders, figures).toHaveLength(1);
    expect(holders[0], figures).toMatch(/^lb1@/);
    const afterServing = failed.filter((r) => r.s > first!.e);
    expect(afterServing, `${figures}; failures after the first success: ${JSON.stringify(afterServing.slice(0, 5))}`).toEqual([]);
    // What is left is the supervisor's 250 ms and the engine's start (Bun from source, transpiling): 0.85 s at load 13,
    // and 2.4-4.0 s at load 13-40 on this shared 2-core machine, where the same start before the fast restart added
    // its VIP gap on top (outage 2.3-4.5 s). That start time is the machine's load, not the HA engine's, so the bound
    // is the one only a restart can meet: without the supervisor the outage lasts until lb2 declares lb1 dead,
    // deadtime less the time since lb1's last heartbeat, never less than deadtime - keepalive (8 s; measured 8.7-10 s).
    expect(outageMs, figures).toBeLessThan(haTimeMs(settings.deadtime) - haTimeMs(settings.keepalive) - 1_000);
  }, 60_000);
});
