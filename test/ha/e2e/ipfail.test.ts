// ipfail's give-back in the namespace lab (issue 14 item 3): lb1 (the VIP's home) stops reaching its ping node (nft
// drops its echo requests), hands the VIP to lb2; when the ping node answers lb1 again, the VIP returns to lb1 with
// auto_failback on (after the counts balance and 2 x keepalive) and stays on lb2 with it off. Never two holders.
import { afterEach, describe, expect, test } from 'bun:test';
import { execOk, execProc, sleep, waitFor } from '../../harness/proc.ts';
import { LAB_GATEWAY, type Lab } from '../../harness/netns.ts';
import { createPair, waitForSoleHolder, waitJoined, waitServing, type HaPair } from '../../harness/pair.ts';

const TABLE = 'lab_noping';

/** lb1's echo requests to the ping node dropped (or not): heartbeats and clients are untouched. */
async function pingNodeLost(lab: Lab, lost: boolean): Promise<void> {
  if (!lost) {
    await execProc(['ip', 'netns', 'exec', lab.ns.lb1, 'nft', 'delete', 'table', 'inet', TABLE]);
    return;
  }
  const rules = `table inet ${TABLE} {\n  chain output {\n    type filter hook output priority 0;\n    ip daddr ${LAB_GATEWAY} icmp type echo-request drop\n  }\n}\n`;
  await execOk(['ip', 'netns', 'exec', lab.ns.lb1, 'nft', '-f', '-'], { input: rules });
}

/** Samples the holders every 20 ms for `ms`; throws on two holders; returns the sequence of changes with times. */
async function trace(lab: Lab, ms: number): Promise<Array<{ atMs: number; holders: string }>> {
  const out: Array<{ atMs: number; holders: string }> = [];
  const start = performance.now();
  while (performance.now() - start < ms) {
    const h = (await lab.holders()).join('+') || 'nobody';
    if (out.at(-1)?.holders !== h) out.push({ atMs: Math.round(performance.now() - start), holders: h });
    await sleep(20);
  }
  return out;
}

const show = (t: Array<{ atMs: number; holders: string }>): string => t.map((e) => `${e.holders}@${e.atMs}ms`).join(' > ');

let pair: HaPair | null = null;
afterEach(async () => {
  if (pair) await pingNodeLost(pair.lab, false).catch(() => undefined);
  await pair?.dispose();
  pair = null;
});

async function outageAndRecovery(autoFailback: 'on' | 'off'): Promise<Array<{ atMs: number; holders: string }>> {
  pair = await createPair({ lb1: 'tsbal', lb2: 'tsbal' }, { keepalive: '100ms', deadtime: '500ms', initdead: '1', autoFailback, preferred: 'lb1', ping: [LAB_GATEWAY] });
  await pair.nodes.lb1.start();
  await waitForSoleHolder(pair.lab, 'lb1', 15_000);
  await pair.nodes.lb2.start();
  await waitJoined(pair.nodes.lb2, 15_000);
  await sleep(1_000);
  await pingNodeLost(pair.lab, true);
  // deadping (= deadtime, 500 ms) without replies, then lb1 hands everything over.
  await waitForSoleHolder(pair.lab, 'lb2', 3_000);
  await sleep(1_000);
  expect(await pair.lab.holders()).toEqual(['lb2']);
  await pingNodeLost(pair.lab, false);
  const t = await trace(pair.lab, 3_000);
  console.log(`ping node back for lb1, auto_failback ${autoFailback}: ${show(t)}`);
  expect(t.filter((e) => e.holders.includes('+')), show(t)).toEqual([]);
  expect(await waitServing(pair.lab, 1_000)).toMatch(/^web[12]$/);
  return t;
}

describe('ipfail give-back in namespaces', () => {
  test('auto_failback on: the VIP returns to lb1 within 1.5 s of its ping node answering again', async () => {
    const t = await outageAndRecovery('on');
    expect(t.at(-1)?.holders, show(t)).toBe('lb1');
    const back = t.find((e) => e.holders === 'lb1')!.atMs;
    // First reply (one ping interval, 100 ms), lb1's next status (100 ms), 2 x keepalive (200 ms), the handshake.
    expect(back, show(t)).toBeLessThan(1_500);
    const log = await pair!.nodes.lb2.log();
    expect(log).toContain('Giving up foreign resources (auto_failback).');
  }, 60_000);

  test('auto_failback off: the VIP stays on lb2', async () => {
    const t = await outageAndRecovery('off');
    expect(show(t).replace(/@\d+ms/g, '')).toBe('lb2');
  }, 60_000);
});
