// Partitions in the simulator: a one-way partition heals (what a node said while its peer could not hear it is said
// again), and whichever node keeps the VIP after any double ownership re-announces it (gratuitous ARP) once the other
// has released it (issue 14 items 2 and 3). The namespace tests in e2e/partition.test.ts measure the same for real.
import { describe, test, expect } from 'bun:test';
import { Sim, VIP_GROUP } from './sim.ts';

function pair(over: Parameters<Sim['add']>[1] = {}): Sim {
  const sim = new Sim();
  sim.start('lb1', over);
  sim.start('lb2', over);
  sim.until(() => sim.holder().join() === 'lb1' && sim.report('lb1').resources.stable && sim.report('lb2').resources.stable, 3000);
  return sim;
}

/** Drops packets `from` → `to` while the returned `cut` flag is set. */
function cuttable(sim: Sim, pairs: Array<[string, string]>): { cut: (on: boolean) => void } {
  let on = false;
  sim.link = (from, to) => !(on && pairs.some(([f, t]) => f === from && t === to));
  return { cut: (v) => (on = v) };
}

/** The last moment each node released the VIP. */
const lastRelease = (sim: Sim, name: string): number | undefined => sim.get(name).ops.filter((o) => o.kind === 'release').at(-1)?.at;

describe('one-way partition (lb1 → lb2 dropped)', () => {
  for (const autoFailback of ['on', 'off'] as const) {
    test(`auto_failback ${autoFailback}: lb2 takes over while deaf; after the heal lb2 releases and lb1 re-announces, within a keepalive or two`, () => {
      const sim = pair({ autoFailback });
      const link = cuttable(sim, [['lb1', 'lb2']]);
      link.cut(true);
      sim.until(() => sim.holder().length === 2, 2000);
      sim.run(10_000);
      expect(sim.holder()).toEqual(['lb1', 'lb2']);
      const announcesBefore = sim.get('lb1').announces.length;
      link.cut(false);
      const healedAt = sim.now;
      const took = sim.until(() => sim.holder().join() === 'lb1', 5000);
      // lb2 hears lb1's next status (≤ keepalive), answers, lb1 says again what it holds, lb2 releases.
      expect(took).toBeLessThan(100 + 20 + 2 * sim.opMs);
      sim.run(200);
      const announces = sim.get('lb1').announces.slice(announcesBefore);
      expect(announces.every((a) => a.groups.join() === VIP_GROUP.key)).toBe(true);
      // Once when lb2 can hear lb1 again (before lb2 releases: clients move before the VIP leaves lb2), and once
      // after lb2's release (the double ownership is over).
      const released = lastRelease(sim, 'lb2')!;
      expect(announces.filter((a) => a.at <= released).map((a) => a.reason)).toContain('lb2 holds them too and we are their home node');
      expect(announces.filter((a) => a.at >= released + sim.opMs).map((a) => a.reason)).toEqual(['lb2 released them: the double ownership is over']);
      expect(announces.at(-1)!.at - healedAt).toBeLessThan(200);
      sim.run(5000);
      expect(sim.holder()).toEqual(['lb1']);
      expect(sim.report('lb1').resources).toMatchObject({ hold: 'local', stable: true, standby: 'not' });
      expect(sim.report('lb2').resources).toMatchObject({ hold: 'local', stable: true, standby: 'not' });
    });
  }

  test('lb1 says what it holds again every second while lb2 holds the VIP too (the first report fell on deaf ears)', () => {
    const sim = pair();
    const link = cuttable(sim, [['lb1', 'lb2']]);
    link.cut(true);
    sim.until(() => sim.holder().length === 2, 2000);
    const from = sim.now;
    sim.run(5000);
    const reports = sim.get('lb1').sent.filter((s) => s.type === 'resource' && s.at > from);
    expect(reports.length).toBeGreaterThanOrEqual(4);
    expect(reports.length).toBeLessThanOrEqual(7);
    link.cut(false);
    sim.until(() => sim.holder().join() === 'lb1', 1000);
    const after = sim.now;
    sim.run(5000);
    // Once it is over, it stops.
    expect(sim.get('lb1').sent.filter((s) => s.type === 'resource' && s.at > after)).toEqual([]);
  });

  test('a short spurious takeover (lb1 → lb2 lost for 1.5 deadtimes): lb2 releases and lb1 re-announces', () => {
    const sim = pair();
    const link = cuttable(sim, [['lb1', 'lb2']]);
    link.cut(true);
    sim.until(() => sim.holder().length === 2, 2000);
    link.cut(false);
    const announcesBefore = sim.get('lb1').announces.length;
    sim.until(() => sim.holder().join() === 'lb1', 500);
    sim.run(200);
    expect(sim.get('lb1').announces.length).toBeGreaterThan(announcesBefore);
    expect(sim.get('lb1').announces.at(-1)!.at).toBeGreaterThanOrEqual(lastRelease(sim, 'lb2')!);
  });

  test('the other way (lb2 → lb1 dropped): lb1 keeps the VIP throughout, lb2 never takes it; lb1 re-announces when lb2 is heard again', () => {
    const sim = pair();
    const link = cuttable(sim, [['lb2', 'lb1']]);
    link.cut(true);
    for (let i = 0; i < 5000; i++) {
      sim.run(1);
      expect(sim.holder()).toEqual(['lb1']);
    }
    const announcesBefore = sim.get('lb1').announces.length;
    link.cut(false);
    sim.run(1000);
    expect(sim.holder()).toEqual(['lb1']);
    expect(sim.get('lb1').announces.length).toBe(announcesBefore + 1);
    expect(sim.get('lb1').announces.at(-1)!.reason).toContain('lb2 is heard again');
  });
});

describe('two-way partition', () => {
  test('after the heal lb2 releases, and lb1 re-announces both when lb2 is heard again and once lb2 has released', () => {
    const sim = pair();
    const link = cuttable(sim, [['lb1', 'lb2'], ['lb2', 'lb1']]);
    link.cut(true);
    sim.until(() => sim.holder().length === 2, 2000);
    sim.run(3000);
    const announcesBefore = sim.get('lb1').announces.length;
    link.cut(false);
    const took = sim.until(() => sim.holder().join() === 'lb1', 2000);
    expect(took).toBeLessThan(300);
    sim.run(2000);
    const announces = sim.get('lb1').announces.slice(announcesBefore);
    expect(announces[0]!.reason).toBe('lb2 is heard again');
    expect(announces.at(-1)!.reason).toBe('lb2 released them: the double ownership is over');
    expect(announces.length).toBeLessThanOrEqual(4);
    expect(announces.at(-1)!.at).toBeGreaterThanOrEqual(lastRelease(sim, 'lb2')!);
    expect(sim.get('lb2').announces).toEqual([]);
  });
});

describe('mismatched keys, then fixed', () => {
  test('both hold the VIP while the keys differ; lb2 restarted with the right key joins without it and lb1 re-announces', () => {
    const sim = new Sim();
    sim.start('lb1');
    sim.start('lb2', { authKey: { index: 1, method: 'sha1', key: 'Other' }, keys: [{ index: 1, method: 'sha1', key: 'Other' }] });
    sim.run(5000);
    expect(sim.holder()).toEqual(['lb1', 'lb2']);
    const announcesBefore = sim.get('lb1').announces.length;
    sim.kill('lb2');
    sim.start('lb2');
    sim.until(() => sim.holder().join() === 'lb1', 3000);
    sim.until(() => sim.get('lb1').announces.length > announcesBefore, 3000);
    expect(sim.get('lb1').announces.at(-1)!.groups).toEqual([VIP_GROUP.key]);
  });
});
