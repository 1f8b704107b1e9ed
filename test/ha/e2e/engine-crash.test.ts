// kill -9 of the active node's engine, at the tutorial's timing (keepalive 2 s, deadtime 10 s), two tsbal nodes in the
// namespace lab started as rc.local starts them (supervised): the supervisor starts the engine again and the VIP's
// clients lose about a second of requests, not a deadtime. Without the supervisor (TSBAL_TEST_NO_SUPERVISE=1, today's
// unsupervised `tsbal run`) the same test fails: lb1 keeps the VIP refusing connections until lb2 takes over at
// deadtime (issue 14: 9.4 s, 841 failed requests).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { looksLikeTsbalRun } from '../../../src/cli/pidfile.ts';
import type { HaSettings } from '../../harness/hacluster.ts';
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
  test('the engine is started again and serves within about a second; the VIP never goes to lb2; no failure after that', async () => {
    const lab = pair!.lab;
    client = await startClientLoop(lab, { intervalMs: 10, timeoutMs: CLIENT_TIMEOUT_MS, maxRequests: 4_000, maxDurationMs: 40_000 });
    await sleep(1_000);
    const engine = await enginePid(lab, 'lb1');
    const killedAt = wallNow();
    process.kill(engine, 'SIGKILL');
    const trace = holderTrace(lab, WATCH_MS);
    const first = await client.firstSuccessSince(killedAt, 20_000);
    const holders = await trace;
    await sleep(CLIENT_TIMEOUT_MS + 100);
    const records = client.records();
    const log = (await pair!.nodes.lb1.log()).slice(-6_000);
    expect(first, `nothing served after the kill; lb1 log:\n${log}`).not.toBeNull();
    const servingMs = first!.e - killedAt;
    const failed = failuresBetween(records, killedAt - CLIENT_TIMEOUT_MS, first!.s);
    const later = failuresBetween(records, first!.s, killedAt + WATCH_MS);
    const reasons: Record<string, number> = {};
    for (const r of failed) if (!r.ok) reasons[r.err] = (reasons[r.err] ?? 0) + 1;
    const figures = `served again ${Math.round(servingMs)} ms after the kill; ${failed.length} failed requests (${JSON.stringify(reasons)}); ` +
      `${later.length} failures after that within ${WATCH_MS} ms; VIP holders ${holders.join(' > ')}`;
    if (process.env.TSBAL_TEST_LOG) console.log(log);
    console.log(`engine crash, ${SUPERVISED ? 'supervised' : 'unsupervised'}: ${figures}`);

    if (SUPERVISED) expect(await enginePid(lab, 'lb1')).not.toBe(engine);
    // About a second: the supervisor's 250 ms, the engine's start (Bun from source: 0.4-2 s on this shared 2-core
    // machine), the HA engine's removal of the left-over VIP until lb2 answers (0.2-1.3 s). Measured 0.7-2.4 s; without
    // the supervisor 8.7 s (deadtime 10 s less the time since lb2's last heartbeat). 4 s tells the two apart under load.
    expect(servingMs, figures).toBeLessThan(4_000);
    expect(later.length, figures).toBe(0);
    // The new engine's HA start drops and re-adds the VIP (a few hundred ms, inside the restart); lb2 never takes it.
    expect(holders.filter((h) => !/^(lb1|nobody)@/.test(h)), figures).toEqual([]);
    expect(holders.at(-1), figures).toMatch(/^lb1@/);
  }, 60_000);
});
