// A real heartbeat 3.0.6 node (with perlbal) and a tsbal node in one cluster, from identical ha.cf/authkeys/
// haresources: how users migrate one node at a time. Each takes the VIP from the other (crash and graceful
// stop) and hands it back on failback, in both roles.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { haTimeMs, type HaImpl, type HaSettings, type LbHost } from '../../harness/hacluster.ts';
import { createPair, measureCrashFailover, waitForSoleHolder, waitJoined, waitServing, type HaPair } from '../../harness/pair.ts';
import { wallNow } from '../../harness/proc.ts';
import { startClientLoop } from '../../harness/web.ts';

const settings: HaSettings = { keepalive: '100ms', deadtime: '500ms', initdead: '1', autoFailback: 'on', preferred: 'lb1' };
const DEADTIME_MS = haTimeMs(settings.deadtime);
/**
 * How long the survivor may take: tsbal is fast; real heartbeat adds its resource scripts, which fork a hundred
 * processes: 1-1.7 s on a quiet machine, 4 s at load 9 (4502 ms kill -> serving).
 */
const takeoverBoundMs = (impl: HaImpl): number => (impl === 'tsbal' ? DEADTIME_MS + 300 : DEADTIME_MS + 8_000);
/** Failback runs heartbeat's ask_resources handshake (5.65 s measured with a real pair); bounded well above. */
const FAILBACK_BOUND_MS = 15_000;

for (const roles of [
  { lb1: 'tsbal', lb2: 'heartbeat' },
  { lb1: 'heartbeat', lb2: 'tsbal' },
] as const satisfies ReadonlyArray<Record<LbHost, HaImpl>>) {
  describe(`mixed cluster: ${roles.lb1} preferred on lb1, ${roles.lb2} on lb2`, () => {
    let pair: HaPair;
    beforeAll(async () => {
      pair = await createPair(roles, settings);
      await pair.nodes.lb1.start();
      await waitForSoleHolder(pair.lab, 'lb1', 10_000);
      await pair.nodes.lb2.start();
      await waitJoined(pair.nodes.lb2, 10_000);
    }, 40_000);
    afterAll(async () => {
      await pair?.dispose();
    });

    test(`${roles.lb2} takes the VIP when ${roles.lb1} is killed, and serves`, async () => {
      const client = await startClientLoop(pair.lab, { intervalMs: 20, timeoutMs: 300, maxDurationMs: 15_000, maxRequests: 700 });
      try {
        expect(await client.firstSuccessSince(0, 3_000)).not.toBeNull();
        const bound = takeoverBoundMs(roles.lb2);
        const sample = await measureCrashFailover(pair, client, 'lb1', bound + 2_000, 300);
        expect(sample.servingMs, `kill → serving must be < ${bound} ms; got ${JSON.stringify(sample)}`).toBeLessThan(bound);
      } finally {
        await client.stop();
      }
    }, 30_000);

    test(`${roles.lb2} hands the VIP back when ${roles.lb1} returns (auto_failback on)`, async () => {
      await pair.nodes.lb1.start();
      await waitJoined(pair.nodes.lb1, 10_000);
      await waitForSoleHolder(pair.lab, 'lb1', FAILBACK_BOUND_MS);
      expect(await waitServing(pair.lab, 3_000)).toMatch(/^web[12]$/);
    }, 30_000);

    test(`${roles.lb2} takes the VIP at once on ${roles.lb1}'s graceful stop, and hands it back`, async () => {
      const stoppedAt = wallNow();
      const stopping = pair.nodes.lb1.stop();
      const seenAt = await waitForSoleHolder(pair.lab, 'lb2', 10_000);
      await stopping;
      // The shutdone handshake, not deadtime expiry; heartbeat's own scripts take seconds (4.85 s measured).
      expect(seenAt - stoppedAt).toBeLessThan(6_000);
      expect(await waitServing(pair.lab, 3_000)).toMatch(/^web[12]$/);
      await pair.nodes.lb1.start();
      await waitJoined(pair.nodes.lb1, 10_000);
      await waitForSoleHolder(pair.lab, 'lb1', FAILBACK_BOUND_MS);
    }, 45_000);
  });
}
