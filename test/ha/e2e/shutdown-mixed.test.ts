// Issue 14 item 1 with a real heartbeat 3.0.6 peer: node lb1 (heartbeat, preferred, auto_failback on) crashes, tsbal
// on lb2 takes the VIP, lb1 returns and tsbal hands the VIP back (`Local standby process completed [foreign]`), and
// tsbal gets SIGTERM right then, while heartbeat's resource scripts are still acquiring. tsbal must exit at once,
// never logging "Shutdown delayed", and never take the VIP again, even when lb1 dies right after.
import { afterEach, describe, expect, test } from 'bun:test';
import type { HaSettings } from '../../harness/hacluster.ts';
import { createPair, waitForSoleHolder, waitJoined, type HaPair } from '../../harness/pair.ts';
import { sleep, waitFor } from '../../harness/proc.ts';

const settings: HaSettings = { keepalive: '100ms', deadtime: '500ms', initdead: '1', autoFailback: 'on', preferred: 'lb1' };

let pair: HaPair | null = null;
afterEach(async () => {
  await pair?.dispose();
  pair = null;
});

/** Samples whether lb2 holds the VIP every 10 ms until `until` resolves; returns how many samples saw it. */
async function lb2Holds(p: HaPair, until: Promise<unknown>): Promise<number> {
  let done = false;
  void until.finally(() => (done = true));
  let seen = 0;
  for (let i = 0; i < 2_000 && !done; i++) {
    // An `ip` that times out on a loaded machine is a lost sample, not a verdict (the log check below is the other).
    if ((await p.lab.holders().catch((): string[] => [])).includes('lb2')) seen++;
    await sleep(10);
  }
  return seen;
}

async function sigtermAfterFailback(killPeerAfterMs: number | null): Promise<{ exitMs: number; afterTerm: string }> {
  pair = await createPair({ lb1: 'heartbeat', lb2: 'tsbal' }, settings);
  const [lb1, lb2] = [pair.nodes.lb1, pair.nodes.lb2];
  await lb1.start();
  await waitForSoleHolder(pair.lab, 'lb1', 15_000);
  await lb2.start();
  await waitJoined(lb2, 10_000);
  await lb1.crash();
  await waitForSoleHolder(pair.lab, 'lb2', 5_000);
  await lb1.start();
  await waitFor('tsbal to complete its side of the failback', async () => ((await lb2.log()).includes('Local standby process completed [foreign]') ? true : undefined), {
    timeoutMs: 20_000,
    intervalMs: 5,
  });
  const termAt = performance.now();
  const stopping = lb2.stop();
  const killing = killPeerAfterMs === null ? Promise.resolve() : sleep(killPeerAfterMs).then(() => lb1.crash());
  const held = lb2Holds(pair, stopping);
  await stopping;
  const exitMs = Math.round(performance.now() - termAt);
  await killing;
  expect(await held).toBe(0);
  const log = await lb2.log();
  // The node's log is stdout then ha.cf's logfile: what the logfile says after the handshake (the SIGTERM came then).
  const afterTerm = log.slice(log.lastIndexOf('Local standby process completed [foreign]'));
  console.log(`SIGTERM right after tsbal's 'Local standby process completed'${killPeerAfterMs === null ? '' : `, heartbeat killed ${killPeerAfterMs} ms later`}: tsbal exited in ${exitMs} ms`);
  return { exitMs, afterTerm };
}

describe('SIGTERM right after a failback to a real heartbeat node', () => {
  test('tsbal exits at once without taking anything, and the heartbeat node keeps the VIP', async () => {
    const { exitMs, afterTerm } = await sigtermAfterFailback(null);
    expect(afterTerm).not.toContain('Shutdown delayed');
    expect(afterTerm).not.toMatch(/acquired|Resources being acquired|takeover complete/);
    expect(exitMs).toBeLessThan(2_000);
    const from = performance.now();
    // heartbeat's own resource scripts (run twice here: the standby acquire, and the takeover on our shutdone) take
    // 1-2 s on an idle machine, over 10 s on a loaded one.
    await waitForSoleHolder(pair!.lab, 'lb1', 30_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${(await pair!.nodes.lb1.log()).slice(-6000)}`);
    });
    console.log(`lb1 (heartbeat) alone with the VIP ${Math.round(performance.now() - from)} ms after tsbal exited`);
  }, 90_000);

  test('the heartbeat node dies 300 ms after the SIGTERM: tsbal still never takes the VIP', async () => {
    const { exitMs, afterTerm } = await sigtermAfterFailback(300);
    expect(afterTerm).not.toContain('Shutdown delayed');
    expect(afterTerm).not.toMatch(/acquired|Resources being acquired|takeover complete/);
    expect(exitMs).toBeLessThan(2_000);
    expect(await pair!.lab.holders()).not.toContain('lb2');
  }, 90_000);
});
