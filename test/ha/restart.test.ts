// A fast restart (issue 14, item 4: "a crash of the active node costs about a second, not a deadtime"): the engine
// started again after a kill -9 keeps the VIP its predecessor left up when that one held it, the peer did not, and its
// last heartbeat is less than a deadtime old; otherwise it removes it as before. The decision (restart.ts) is pure;
// the simulator then restarts the home node at every moment from the kill to past the peer's takeover.
import { describe, expect, test } from 'bun:test';
import type { ResourceGroup } from '../../src/config/model.ts';
import { heldRecord, judgeLeftovers, parseHeldRecord, type HeldRecord } from '../../src/ha/restart.ts';
import type { EngineConfig } from '../../src/ha/types.ts';
import { Sim, VIP_GROUP } from './sim.ts';

/** The tutorial's timing (keepalive 2 s, deadtime 10 s), as the namespace test (e2e/engine-crash) runs it. */
const TUTORIAL: Partial<EngineConfig> = { keepaliveMs: 2000, deadtimeMs: 10_000, warntimeMs: 5000, initdeadMs: 10_000 };
const KEY = VIP_GROUP.key;
const PRESENT = new Map([[KEY, true]]);

const record = (over: Partial<HeldRecord> = {}): HeldRecord => ({ node: 'lb1', generation: 5, at: 100_000, deadtimeMs: 10_000, held: [KEY], peerHoldsOurs: false, ...over });
const judge = (r: HeldRecord | null, nowWall: number, present = PRESENT, groups: ResourceGroup[] = [VIP_GROUP], me = 'lb1') =>
  judgeLeftovers(r, me, groups, present, 10_000, nowWall);

describe('judgeLeftovers: keep the VIP only when the peer cannot have taken it', () => {
  test('keeps our home group held by the previous engine whose last heartbeat is less than a deadtime old', () => {
    const v = judge(record(), 100_000 + 9_999);
    expect(v.adopt).toBe(true);
    if (v.adopt) expect(v.groups.map((g) => g.key)).toEqual([KEY]);
  });

  test('removes it once a deadtime has passed since that heartbeat (the peer may hold it by now)', () => {
    const v = judge(record(), 100_000 + 10_000);
    expect(v).toMatchObject({ adopt: false });
    expect(v.why).toContain('not within deadtime');
  });

  test('uses the smaller of the deadtime advertised then and the one configured now', () => {
    expect(judge(record({ deadtimeMs: 2_000 }), 100_000 + 2_500).adopt).toBe(false);
    expect(judge(record({ deadtimeMs: 20_000 }), 100_000 + 12_000).adopt).toBe(false);
  });

  test('removes it when the peer said it held our groups too, or the previous engine did not hold them', () => {
    expect(judge(record({ peerHoldsOurs: true }), 101_000)).toMatchObject({ adopt: false, why: 'the peer said it held them too' });
    expect(judge(record({ held: [] }), 101_000).adopt).toBe(false);
  });

  test('removes it without a record, with a torn or foreign record, or one from the future', () => {
    expect(judge(null, 101_000).adopt).toBe(false);
    expect(parseHeldRecord('{"node":"lb1","generation":5,"at":1')).toBeNull();
    expect(parseHeldRecord('{"node":"lb1"}')).toBeNull();
    expect(parseHeldRecord(JSON.stringify(record()))).toEqual(record());
    expect(judge(record({ node: 'lb2' }), 101_000).adopt).toBe(false);
    expect(judge(record(), 99_000).adopt).toBe(false);
  });

  test('never keeps a group whose home is the peer, and keeps ours only when all of them are still up', () => {
    const theirs: ResourceGroup = { ...VIP_GROUP, node: 'lb2' };
    expect(judge(record(), 101_000, PRESENT, [theirs]).adopt).toBe(false);
    const second: ResourceGroup = { ...VIP_GROUP, key: 'IPaddr::198.18.0.98/24/eth0' };
    const both = record({ held: [KEY, second.key] });
    expect(judge(both, 101_000, new Map([[KEY, true], [second.key, false]]), [VIP_GROUP, second]).adopt).toBe(false);
    expect(judge(both, 101_000, new Map([[KEY, true], [second.key, true]]), [VIP_GROUP, second]).adopt).toBe(true);
  });
});

/** lb1 (the home) and lb2 at the tutorial's timing, settled: lb1 holds the VIP. */
function settled(over: Partial<EngineConfig> = {}): Sim {
  const sim = new Sim();
  sim.start('lb1', { ...TUTORIAL, ...over });
  sim.start('lb2', { ...TUTORIAL, ...over });
  sim.until(() => sim.holder().join() === 'lb1' && sim.report('lb1').resources.stable && sim.report('lb2').resources.stable, 30_000);
  sim.run(5_000);
  return sim;
}

/** What the crashed lb1 left in its state dir: the record as of its last heartbeat sent. */
function recordAtKill(sim: Sim): HeldRecord {
  const n = sim.get('lb1');
  const lastStatus = n.sent.filter((s) => s.type === 'status').at(-1)!.at;
  return heldRecord(n.node, lastStatus);
}

interface Outcome {
  adopted: boolean;
  /** From lb1's restart to its first acquire (of any kind). */
  acquireAfterMs: number | null;
  lb2Acquired: boolean;
  holders: string;
  splitBrainLogged: boolean;
  lb1Announced: boolean;
}

/** kill -9 of lb1 `killAt` ms after settling, restarted `downMs` later with the VIP still on its interface. */
function crashAndRestart(killAt: number, downMs: number, over: Partial<EngineConfig> = {}, forceAdopt = false): Outcome {
  const sim = settled(over);
  sim.run(killAt);
  const rec = recordAtKill(sim);
  sim.kill('lb1');
  const lb2OpsBefore = sim.get('lb2').ops.length;
  sim.run(downMs);
  const verdict = judgeLeftovers(rec, 'lb1', [VIP_GROUP], PRESENT, TUTORIAL.deadtimeMs!, sim.now);
  const adopt = forceAdopt || verdict.adopt ? [KEY] : [];
  const restartAt = sim.now;
  const lb1 = sim.start('lb1', { ...TUTORIAL, ...over, adopt });
  sim.run(20_000);
  const firstAcquire = lb1.ops.find((o) => o.kind === 'acquire');
  return {
    adopted: adopt.length > 0,
    acquireAfterMs: firstAcquire ? firstAcquire.at - restartAt : null,
    lb2Acquired: sim.get('lb2').ops.slice(lb2OpsBefore).some((o) => o.kind === 'acquire'),
    holders: sim.holder().join('+'),
    splitBrainLogged: [...lb1.logs, ...sim.get('lb2').logs].some((l) => l.msg.includes('SPLIT BRAIN')),
    lb1Announced: lb1.announces.length > 0,
  };
}

describe('a restarted home node in the simulator (keepalive 2 s, deadtime 10 s)', () => {
  test('restarted within the deadtime, it keeps the VIP from its first moment; lb2 never acquires, nothing is audited as a split brain', () => {
    const o = crashAndRestart(700, 800);
    expect(o).toEqual({ adopted: true, acquireAfterMs: 0, lb2Acquired: false, holders: 'lb1', splitBrainLogged: false, lb1Announced: false });
  });

  test('without the record (today\'s removal) the VIP comes back only after lb2 answers: the gap adoption closes', () => {
    const sim = settled();
    sim.kill('lb1');
    sim.run(800);
    const restartAt = sim.now;
    const lb1 = sim.start('lb1', TUTORIAL);
    sim.run(20_000);
    const first = lb1.ops.find((o) => o.kind === 'acquire')!;
    // The join (status, reqnodes/repnodes, starting, resource) must go round before the acquire: several wire hops.
    expect(first.at - restartAt).toBeGreaterThan(3 * sim.wireMs);
    expect(first.reason).toBe('req_our');
    expect(sim.holder()).toEqual(['lb1']);
  });

  test('restarted after lb2 took over (the record is past deadtime), it removes the VIP and gets it back by failback', () => {
    const o = crashAndRestart(0, 12_000);
    expect(o.adopted).toBe(false);
    expect(o.lb2Acquired).toBe(true);
    expect(o.holders).toBe('lb1');
  });

  test('adopting although lb2 took it over meanwhile: the double ownership is audited, lb2 releases, lb1 keeps and re-announces', () => {
    const o = crashAndRestart(0, 12_000, {}, true);
    expect(o).toMatchObject({ adopted: true, acquireAfterMs: 0, lb2Acquired: true, holders: 'lb1', splitBrainLogged: true, lb1Announced: true });
  });

  test('the same with auto_failback off: the home node still keeps its group (the split-brain rule), lb2 releases', () => {
    const o = crashAndRestart(0, 12_000, { autoFailback: 'off' }, true);
    expect(o).toMatchObject({ adopted: true, lb2Acquired: true, holders: 'lb1', splitBrainLogged: true });
  });

  test('every restart delay from 250 ms to 12 s, at every phase of the keepalive: adopted exactly while lb2 has not taken over, and lb1 ends the sole holder', () => {
    let adopted = 0;
    let removed = 0;
    for (const killAt of [0, 500, 1_000, 1_500, 1_999]) {
      for (let downMs = 250; downMs <= 12_000; downMs += 250) {
        const o = crashAndRestart(killAt, downMs);
        const where = `kill at +${killAt} ms, down ${downMs} ms: ${JSON.stringify(o)}`;
        expect(o.holders, where).toBe('lb1');
        if (o.adopted) {
          adopted++;
          expect(o.lb2Acquired, where).toBe(false);
          expect(o.acquireAfterMs, where).toBe(0);
          expect(o.splitBrainLogged, where).toBe(false);
        } else {
          removed++;
          expect(downMs, where).toBeGreaterThanOrEqual(8_000);
        }
      }
    }
    // Not vacuous: both branches are taken.
    expect(adopted).toBeGreaterThan(100);
    expect(removed).toBeGreaterThan(10);
  }, 120_000);
});
