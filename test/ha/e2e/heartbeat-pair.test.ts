// Validates the lab harness against the reference implementation: two real heartbeat 3.0.6 nodes (run with
// the lab's safety measures) and perlbal, at 100 ms / 500 ms. If this fails, the harness is wrong, not tsbal.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { haTimeMs, type HaSettings } from '../../harness/hacluster.ts';
import { createPair, measureCrashFailover, waitForSoleHolder, waitJoined, waitServing, type HaPair } from '../../harness/pair.ts';
import { startClientLoop } from '../../harness/web.ts';

const settings: HaSettings = {
  keepalive: '100ms',
  deadtime: '500ms',
  // heartbeat only warns below 10 s; a lone node waits this long before declaring its peer dead.
  initdead: '1',
  autoFailback: 'on',
  preferred: 'lb1',
};
// heartbeat: deadtime + up to 250 ms poll + 1-1.7 s of resource scripts on a quiet machine (reference section 7).
// The scripts fork a hundred processes: 4.4-4.8 s in all at load 9. Generous: this pins the harness, not a speed.
const HEARTBEAT_TAKEOVER_BOUND_MS = haTimeMs(settings.deadtime) + 8_000;

describe('real heartbeat pair in the namespace lab', () => {
  let pair: HaPair;
  beforeAll(async () => {
    pair = await createPair({ lb1: 'heartbeat', lb2: 'heartbeat' }, settings);
  });
  afterAll(async () => {
    await pair?.dispose();
  });

  test('the VIP ends on the preferred node when it joins after the other', async () => {
    // lb2 alone takes lb1's group after initdead; lb1 then joins and auto_failback hands the VIP back.
    await pair.nodes.lb2.start();
    await waitForSoleHolder(pair.lab, 'lb2', 15_000);
    await pair.nodes.lb1.start();
    await waitJoined(pair.nodes.lb1, 10_000);
    await waitForSoleHolder(pair.lab, 'lb1', 15_000);
    expect(await waitServing(pair.lab, 3_000)).toMatch(/^web[12]$/);
  }, 45_000);

  test('kill -9 of the VIP holder moves the VIP to the survivor, which serves', async () => {
    const client = await startClientLoop(pair.lab, { intervalMs: 20, timeoutMs: 300, maxDurationMs: 20_000, maxRequests: 1_000 });
    try {
      const before = await client.firstSuccessSince(0, 3_000);
      expect(before?.ok).toBe(true);
      const sample = await measureCrashFailover(pair, client, 'lb1', HEARTBEAT_TAKEOVER_BOUND_MS, 300);
      expect(await pair.lab.holders()).toEqual(['lb2']);
      expect(sample.servingMs, `kill → serving must be < ${HEARTBEAT_TAKEOVER_BOUND_MS} ms; got ${JSON.stringify(sample)}`).toBeLessThan(HEARTBEAT_TAKEOVER_BOUND_MS);
      // Sanity of the measurement itself: nothing can take over faster than deadtime.
      expect(sample.vipMs).toBeGreaterThan(haTimeMs(settings.deadtime));
      const log = await pair.nodes.lb2.log();
      expect(log).toContain('node lb1: is dead');
    } finally {
      await client.stop();
    }
  }, 30_000);
});
