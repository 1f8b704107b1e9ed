// The pure node in a simulated two-node cluster: join, failover timing, failback, standby, shutdown, split brain.
import { describe, test, expect } from 'bun:test';
import { pingNode, pingPair, Sim, VIP_GROUP, WITH_PING } from './sim.ts';
import { decodePacket } from '../../src/ha/wire.ts';
import { parseMessage } from '../../src/ha/messages.ts';

function types(n: { sent: Array<{ type: string }> }): string[] {
  return n.sent.map((s) => s.type);
}

function bodies(n: { sent: Array<{ bytes: Uint8Array }> }): Array<Record<string, unknown>> {
  return n.sent.map((s) => {
    const p = decodePacket(s.bytes);
    if (!p.ok) throw new Error(p.error);
    const m = parseMessage(p.fields);
    if ('error' in m) throw new Error(m.error);
    return m.body as unknown as Record<string, unknown>;
  });
}

/** Two nodes started together and settled: lb1 (the VIP's home) holds it. */
function pair(over: Parameters<Sim['add']>[1] = {}): Sim {
  const sim = new Sim();
  sim.start('lb1', over);
  sim.start('lb2', over);
  sim.until(() => sim.holder().join() === 'lb1' && sim.report('lb1').resources.stable && sim.report('lb2').resources.stable, 3000);
  return sim;
}

describe('joining', () => {
  test('both starting together: the home node holds the VIP within a second, without the 10 s RQSTDELAY', () => {
    const sim = new Sim();
    sim.start('lb1');
    sim.start('lb2');
    const took = sim.until(() => sim.holder().length === 1, 10_000);
    expect(sim.holder()).toEqual(['lb1']);
    expect(took).toBeLessThan(1000);
    sim.run(2000);
    expect(sim.holder()).toEqual(['lb1']);
    expect(sim.report('lb1').resources).toMatchObject({ state: 'stable', hold: 'local', stable: true });
    expect(sim.report('lb2').resources).toMatchObject({ state: 'stable', hold: 'local', stable: true });
    expect(sim.report('lb2').peer).toMatchObject({ name: 'lb1', status: 'active', holds: 'local', stable: true });
  });

  test('status goes init, up, then active after reqnodes/repnodes; dt advertises the deadtime; protocol=1', () => {
    const sim = pair();
    const lb2 = bodies(sim.get('lb2'));
    const statuses = lb2.filter((b) => b.t === 'status');
    expect(statuses.slice(0, 2).map((s) => s.st)).toEqual(['init', 'up']);
    expect(statuses.some((s) => s.st === 'active')).toBe(true);
    expect(statuses.every((s) => s.dt === 500 && s.protocol === '1')).toBe(true);
    expect(types(sim.get('lb2'))).toContain('reqnodes');
    expect(types(sim.get('lb1'))).toContain('repnodes');
    expect(bodies(sim.get('lb1')).find((b) => b.t === 'repnodes')).toEqual({ t: 'repnodes', dest: 'lb2', nodelist: ['lb1', 'lb2'], delnodelist: [] });
    // The starting/resource exchange happens once comm is up.
    expect(types(sim.get('lb1'))).toContain('starting');
  });

  test('a status goes out every keepalive', () => {
    const sim = pair();
    const before = sim.get('lb1').sent.filter((s) => s.type === 'status').length;
    sim.run(1000);
    const after = sim.get('lb1').sent.filter((s) => s.type === 'status').length;
    expect(after - before).toBe(10);
  });

  test('a node alone takes every group after initdead', () => {
    const sim = new Sim();
    sim.start('lb2');
    sim.run(999);
    expect(sim.holder()).toEqual([]);
    const took = sim.until(() => sim.holder().length > 0, 2000);
    expect(sim.holder()).toEqual(['lb2']);
    expect(took).toBeLessThan(20);
    expect(sim.report('lb2').resources).toMatchObject({ hold: 'all', state: 'stable' });
    expect(bodies(sim.get('lb2')).find((b) => b.t === 'stonith')).toEqual({ t: 'stonith', node: 'lb1', result: 'n_stnth' });
  });
});

describe('late joiner', () => {
  test('a peer first heard after initdead is a join, not a partition; the VIP goes home (auto_failback on)', () => {
    const sim = new Sim();
    sim.start('lb2');
    sim.until(() => sim.holder().join() === 'lb2', 2000);
    sim.run(500);
    sim.start('lb1');
    sim.until(() => sim.holder().join() === 'lb1', 3000);
    expect(sim.get('lb2').logs.some((l) => l.msg === 'node lb1 is up (first heard after initdead)')).toBe(true);
    expect(sim.get('lb2').logs.some((l) => l.msg.includes('returning after partition'))).toBe(false);
  });
});

describe('failover', () => {
  test('kill -9 of the holder: the survivor declares it dead at deadtime and holds the VIP within deadtime + 20 ms', () => {
    const sim = pair();
    sim.run(37); // kill at an arbitrary point between two heartbeats
    const lastHeard = sim.now - (sim.report('lb2').peer.heardMsAgo ?? 0);
    sim.kill('lb1');
    const killedAt = sim.now;
    sim.until(() => sim.holder().join() === 'lb2', 2000);
    const sinceLastHeard = sim.now - lastHeard;
    expect(sinceLastHeard).toBeGreaterThanOrEqual(500);
    expect(sinceLastHeard).toBeLessThanOrEqual(500 + 2 * sim.opMs + 5);
    expect(sim.now - killedAt).toBeLessThanOrEqual(500 + 2 * sim.opMs + 5);
    const lb2 = bodies(sim.get('lb2'));
    expect(lb2).toContainEqual({ t: 'stonith', node: 'lb1', result: 'n_stnth' });
    expect(lb2).toContainEqual({ t: 'resource', rsc_hold: 'foreign', full: false, isstable: null, info: 'mach_down' });
    expect(sim.get('lb2').logs.some((l) => l.msg.startsWith('node lb1: is dead'))).toBe(true);
  });

  test('no false failover in 60 s of steady heartbeats with 20 ms jitter-free delivery', () => {
    const sim = pair();
    sim.run(60_000);
    expect(sim.report('lb2').counters.deaths).toBe(0);
    expect(sim.report('lb1').counters.deaths).toBe(0);
    expect(sim.holder()).toEqual(['lb1']);
  });

  test('the dead timer follows the dt the peer advertises, not our own deadtime', () => {
    const sim = new Sim();
    sim.start('lb1', { deadtimeMs: 2000 });
    sim.start('lb2');
    sim.until(() => sim.holder().join() === 'lb1', 3000);
    sim.run(500);
    sim.kill('lb1');
    const t = sim.until(() => sim.holder().join() === 'lb2', 5000);
    expect(t).toBeGreaterThan(1800);
  });
});

describe('failback', () => {
  test('auto_failback on: a restarted home node gets the VIP back through the ask_resources handshake', () => {
    const sim = pair();
    sim.kill('lb1');
    sim.until(() => sim.holder().join() === 'lb2', 2000);
    sim.run(200);
    sim.start('lb1');
    const t = sim.until(() => sim.holder().join() === 'lb1', 5000);
    expect(t).toBeLessThan(1000);
    const asks = bodies(sim.get('lb2')).filter((b) => b.t === 'ask_resources').map((b) => b.info);
    expect(asks).toEqual(['me', 'done']);
    expect(bodies(sim.get('lb1')).filter((b) => b.t === 'ask_resources').map((b) => b.info)).toEqual(['other', 'done']);
    sim.run(1000);
    expect(sim.holder()).toEqual(['lb1']);
    expect(sim.report('lb1').resources).toMatchObject({ hold: 'local', stable: true });
    expect(sim.report('lb2').resources).toMatchObject({ hold: 'local', stable: true });
    // Never two holders during the handover.
  });

  test('auto_failback off: the survivor keeps the VIP when the home node returns', () => {
    const sim = pair({ autoFailback: 'off' });
    sim.kill('lb1');
    sim.until(() => sim.holder().join() === 'lb2', 2000);
    sim.start('lb1', { autoFailback: 'off' });
    sim.run(15_000);
    expect(sim.holder()).toEqual(['lb2']);
    expect(sim.report('lb1').resources).toMatchObject({ hold: 'none', stable: true });
    expect(sim.report('lb2').resources).toMatchObject({ hold: 'all', stable: true });
  });

  test('the VIP is never held by both nodes at any point of a failback', () => {
    const sim = pair();
    sim.kill('lb1');
    sim.until(() => sim.holder().join() === 'lb2', 2000);
    sim.start('lb1');
    for (let i = 0; i < 3000; i++) {
      sim.run(1);
      expect(sim.holder().length).toBeLessThanOrEqual(1);
    }
    expect(sim.holder()).toEqual(['lb1']);
  });
});

describe('graceful shutdown and commands', () => {
  test('shutdown hands the VIP over at once: resource none/shutdown, release, shutdone; the peer takes it', () => {
    const sim = pair();
    sim.command('lb1', 'shutdown');
    const t = sim.until(() => sim.holder().join() === 'lb2', 1000);
    expect(t).toBeLessThan(30);
    expect(sim.get('lb1').exited).toBe(true);
    const lb1 = bodies(sim.get('lb1'));
    const tail = lb1.filter((b) => b.t === 'resource' || b.t === 'shutdone').slice(-2);
    expect(tail).toEqual([
      { t: 'resource', rsc_hold: 'none', full: true, isstable: false, info: 'shutdown' },
      { t: 'shutdone', st: 'dead' },
    ]);
    expect(sim.get('lb2').logs.some((l) => l.msg === "Received shutdown notice from 'lb1'.")).toBe(true);
    // When lb1's silence passes deadtime, lb2 knows it gave its resources up: no stonith needed.
    sim.run(1000);
    expect(bodies(sim.get('lb2'))).toContainEqual({ t: 'stonith', node: 'lb1', result: 'unneeded' });
    expect(sim.holder()).toEqual(['lb2']);
  });

  test('standby (hb_standby) moves the VIP to the peer; takeover (hb_takeover) brings it back', () => {
    const sim = pair({ autoFailback: 'off' });
    sim.command('lb1', 'standby');
    expect(sim.get('lb1').replies.at(-1)).toMatchObject({ ok: true });
    sim.until(() => sim.holder().join() === 'lb2', 1000);
    sim.until(() => sim.report('lb1').resources.stable && sim.report('lb2').resources.stable, 1000);
    expect(sim.report('lb2').resources.hold).toBe('all');
    sim.command('lb1', 'takeover');
    expect(sim.get('lb1').replies.at(-1)).toMatchObject({ ok: true });
    sim.until(() => sim.holder().join() === 'lb1', 1000);
    expect(bodies(sim.get('lb1'))).toContainEqual({ t: 'hb_takeover', rsc_hold: 'all' });
  });

  /** Holder changes over `ms`, sampled every ms: `lb1 > nobody > lb2`. */
  function holders(sim: Sim, ms: number): string {
    const seen: string[] = [];
    for (let t = 0; t < ms; t++) {
      const h = sim.holder().join('+') || 'nobody';
      if (seen.at(-1) !== h) seen.push(h);
      sim.run(1);
    }
    return seen.join(' > ');
  }
  const failbackLogs = (sim: Sim, name: string): string[] => sim.get(name).logs.filter((l) => l.msg.startsWith('auto_failback')).map((l) => l.msg);

  test('auto_failback on: standby drains the home node; the VIP stays on lb2 until takeover brings it back', () => {
    // QA: lb2 took the VIP, then handed it straight back ('auto_failback: handing foreign resources back to lb1').
    // heartbeat makes a failback due only after a death, so hb_standby before maintenance sticks.
    const sim = pair();
    sim.command('lb1', 'standby');
    expect(sim.get('lb1').replies.at(-1)).toMatchObject({ ok: true });
    expect(holders(sim, 3000)).toBe('lb1 > nobody > lb2');
    expect(failbackLogs(sim, 'lb2')).toEqual([]);
    expect(sim.report('lb1').resources).toMatchObject({ hold: 'none', stable: true, standby: 'not' });
    expect(sim.report('lb2').resources).toMatchObject({ hold: 'all', stable: true, standby: 'not' });
    sim.command('lb1', 'takeover');
    expect(sim.get('lb1').replies.at(-1)).toMatchObject({ ok: true });
    expect(holders(sim, 3000)).toBe('lb2 > nobody > lb1');
  });

  test('auto_failback on: hb_takeover from the non-home node keeps the VIP there until standby gives it back', () => {
    const sim = pair();
    sim.command('lb2', 'takeover');
    expect(sim.get('lb2').replies.at(-1)).toMatchObject({ ok: true });
    expect(holders(sim, 3000)).toBe('lb1 > nobody > lb2');
    expect(failbackLogs(sim, 'lb2')).toEqual([]);
    sim.command('lb2', 'standby');
    expect(sim.get('lb2').replies.at(-1)).toMatchObject({ ok: true });
    expect(holders(sim, 3000)).toBe('lb2 > nobody > lb1');
  });

  test('auto_failback on: a drained home node that dies and restarts gets the VIP back, as after any death', () => {
    const sim = pair();
    sim.command('lb1', 'standby');
    sim.until(() => sim.holder().join() === 'lb2' && sim.report('lb1').resources.stable && sim.report('lb2').resources.stable, 1000);
    sim.kill('lb1');
    sim.run(1000); // lb2 declares it dead (it had given everything up)
    expect(sim.holder()).toEqual(['lb2']);
    sim.start('lb1');
    expect(holders(sim, 3000)).toBe('lb2 > nobody > lb1');
    expect(failbackLogs(sim, 'lb2')).toEqual(['auto_failback: handing foreign resources back to lb1']);
  });

  test('auto_failback on: a home node that loses its ping node hands the VIP over once, without it bouncing back', () => {
    // The same cause as the standby case: the handover made lb2 fail back at once, lb1 (still without its ping node)
    // handed over again, and the VIP moved every 30 ms.
    const { sim, reach } = pingPair();
    sim.until(() => sim.holder().join() === 'lb1' && sim.report('lb1').resources.stable && sim.report('lb2').resources.stable, 3000);
    reach.set('lb1', false);
    expect(holders(sim, 3000)).toBe('lb1 > nobody > lb2');
  });

  test('standby is refused with a reason when there is no live peer', () => {
    const sim = new Sim();
    sim.start('lb1');
    sim.until(() => sim.holder().length > 0, 2000);
    sim.command('lb1', 'standby');
    expect(sim.get('lb1').replies.at(-1)).toEqual({ ok: false, msg: 'standby refused: no live peer to hand resources to (lb2 is not up)' });
    sim.command('lb1', 'takeover', 'everything');
    expect(sim.get('lb1').replies.at(-1)?.ok).toBe(false);
  });
});

describe('split brain', () => {
  test('a healed partition: both held the VIP; the non-home node releases it and says so loudly', () => {
    const sim = pair();
    let cut = true;
    sim.link = () => !cut;
    sim.until(() => sim.holder().length === 2, 2000);
    sim.run(300);
    cut = false;
    sim.until(() => sim.holder().length === 1, 2000);
    expect(sim.holder()).toEqual(['lb1']);
    expect(sim.get('lb2').logs.some((l) => l.level === 'error' && l.msg.startsWith('SPLIT BRAIN'))).toBe(true);
    expect(sim.get('lb2').logs.some((l) => l.msg === 'Cluster node lb1 returning after partition.')).toBe(true);
    sim.run(2000);
    expect(sim.holder()).toEqual(['lb1']);
  });

  test('a one-way outage (lb2 cannot hear lb1, lb1 hears lb2): lb2 takes over, and after it lb1 keeps the VIP alone', () => {
    const sim = pair();
    let cut = true;
    sim.link = (from) => !(cut && from === 'lb1');
    sim.until(() => sim.holder().length === 2, 2000);
    cut = false;
    sim.until(() => sim.holder().length === 1, 2000);
    expect(sim.holder()).toEqual(['lb1']);
    expect(sim.get('lb1').logs.some((l) => l.msg.startsWith('SPLIT BRAIN: both lb1 and lb2 hold lb1'))).toBe(true);
    sim.run(2000);
    expect(sim.holder()).toEqual(['lb1']);
  });

  test('a standby whose link goes down never takes the VIP, even though its peer times out before its ping node does', () => {
    const sim = new Sim();
    sim.start('lb1', WITH_PING);
    sim.start('lb2', WITH_PING);
    const reach = new Map([['lb1', true], ['lb2', true]]);
    let cutNow = false;
    // The worst case: the cable goes right after a ping reply, so lb1 (last heard earlier) times out first.
    pingNode(sim, reach, () => {
      if (!cutNow) return;
      sim.link = (from, to) => from !== 'lb2' && to !== 'lb2';
      reach.set('lb2', false);
      cutNow = false;
    });
    sim.until(() => sim.holder().join() === 'lb1', 3000);
    cutNow = true;
    for (let i = 0; i < 3000; i++) {
      sim.run(1);
      expect(sim.holder()).toEqual(['lb1']);
    }
    expect(sim.get('lb2').logs.some((l) => l.msg.startsWith('not taking over from lb1'))).toBe(true);
  });

  test('after a partition heals, what was sent during it is not requested again nor acted on', () => {
    const sim = pair();
    let cut = true;
    sim.link = () => !cut;
    sim.until(() => sim.holder().length === 2, 2000);
    sim.run(1000);
    cut = false;
    sim.run(3000);
    expect(sim.get('lb1').sent.filter((s) => s.type === 'NS_rexmit')).toEqual([]);
    expect(sim.get('lb2').sent.filter((s) => s.type === 'NS_rexmit')).toEqual([]);
    expect(sim.holder()).toEqual(['lb1']);
  });

  test('with a ping node, the side that loses it releases the VIP and the other side takes it', () => {
    const { sim, reach } = pingPair();
    sim.until(() => sim.holder().join() === 'lb1', 3000);
    // lb1's link goes down: it hears neither lb2 nor the ping node.
    sim.link = (from, to) => from !== 'lb1' && to !== 'lb1';
    reach.set('lb1', false);
    sim.until(() => sim.holder().join() === 'lb2', 3000);
    sim.run(3000);
    expect(sim.holder()).toEqual(['lb2']);
    expect(sim.get('lb1').logs.some((l) => l.msg.startsWith('isolated:'))).toBe(true);
  });
});

describe('partition heal', () => {
  /** lb1 (the holder) loses its link, lb2 takes over; `afterCut` runs during the partition, then the link heals. */
  function cutOffHolder(healAfterMs: number, afterCut: (sim: Sim) => void = () => undefined, over: Parameters<Sim['add']>[1] = {}): Sim {
    const { sim, reach } = pingPair(over);
    sim.until(() => sim.holder().join() === 'lb1' && sim.report('lb2').resources.stable, 3000);
    sim.link = (from, to) => from !== 'lb1' && to !== 'lb1';
    reach.set('lb1', false);
    sim.until(() => sim.holder().join() === 'lb2', 3000);
    afterCut(sim);
    sim.run(healAfterMs);
    sim.link = () => true;
    reach.set('lb1', true);
    return sim;
  }

  test('a cut-off holder whose link heals waits to hear its peer instead of taking over, at every phase of the heal (auto_failback off)', () => {
    // Caught in the namespace lab (1 run in 6): the ping node answered lb1 before lb2's next heartbeat did, lb1 took
    // over from the "dead" lb2, and both then held the VIP. Every phase of the 100 ms ping/heartbeat cycle is tried.
    // With auto_failback off the VIP must then stay on lb2 (the same heal with it on is pinned below).
    const failures: string[] = [];
    for (let phase = 0; phase < 100; phase++) {
      const sim = cutOffHolder(1000 + phase, undefined, { autoFailback: 'off' });
      const seen = new Set<string>();
      for (let ms = 0; ms < 2000; ms++) {
        sim.run(1);
        seen.add(sim.holder().join() || 'nobody');
      }
      const lb1 = sim.get('lb1').logs.filter((l) => l.msg.startsWith('Resources being acquired'));
      if (seen.size !== 1 || !seen.has('lb2') || lb1.length > 0) failures.push(`phase ${phase}: holders seen [${[...seen].join(' | ')}], lb1 takeovers ${lb1.length}`);
    }
    expect(failures).toEqual([]);
  });

  test('a peer that died while we were cut off is taken over one dead time after the ping node answers again', () => {
    const sim = cutOffHolder(1000, (s) => s.kill('lb2'));
    const healedAt = sim.now;
    const waited = sim.until(() => sim.holder().join() === 'lb1', 3000);
    // Its dead time (500 ms) of working link, counted from the first ping reply (within 100 ms of the heal).
    expect(waited).toBeGreaterThanOrEqual(500);
    expect(waited).toBeLessThan(500 + 100 + 20);
    expect(sim.get('lb1').logs.some((l) => l.at >= healedAt && l.msg.startsWith('lb2 stayed silent for its whole dead time'))).toBe(true);
  });

  test('without ping nodes both sides held the VIP; after the heal the non-home side releases it within a keepalive of hearing its peer, at every phase', () => {
    const failures: string[] = [];
    for (let phase = 0; phase < 100; phase += 7) {
      const sim = pair();
      let cut = true;
      sim.link = () => !cut;
      sim.until(() => sim.holder().length === 2, 2000);
      sim.run(phase);
      cut = false;
      const healedAt = sim.now;
      const firstHeard = (): number | undefined => sim.get('lb2').logs.find((l) => l.at >= healedAt && l.msg.includes('returning after partition'))?.at;
      sim.until(() => firstHeard() !== undefined, 1000);
      const both = sim.until(() => sim.holder().length === 1, 1000);
      sim.run(2000);
      if (both > 100 + 20 || sim.holder().join() !== 'lb1' || sim.report('lb1').resources.standby !== 'not') {
        failures.push(`phase ${phase}: both held for ${both} ms after lb2 heard lb1; holders [${sim.holder().join()}]`);
      }
    }
    expect(failures).toEqual([]);
  });
});

describe('auto_failback after a partition heals (heartbeat restarts itself; tsbal fails back in place)', () => {
  /** Like cutOffHolder above: lb1 (home) cut off from lb2 and the ping node, the VIP on lb2, then the heal. */
  function healedPartition(healAfterMs: number, over: Parameters<Sim['add']>[1] = {}): { sim: Sim; healedAt: number; cut: (on: boolean) => void } {
    const { sim, reach } = pingPair(over);
    sim.until(() => sim.holder().join() === 'lb1' && sim.report('lb2').resources.stable, 3000);
    const cut = (on: boolean): void => {
      sim.link = on ? (from, to) => from !== 'lb1' && to !== 'lb1' : () => true;
      reach.set('lb1', !on);
    };
    cut(true);
    sim.until(() => sim.holder().join() === 'lb2' && sim.report('lb2').resources.stable, 3000);
    sim.run(healAfterMs);
    cut(false);
    return { sim, healedAt: sim.now, cut };
  }

  /** Holder changes after the heal, one entry per change: `lb2`, `nobody`, `lb1`, `lb1+lb2`. */
  function holderTrace(sim: Sim, ms: number): Array<{ at: number; holders: string }> {
    const trace: Array<{ at: number; holders: string }> = [];
    const start = sim.now;
    for (let t = 0; t < ms; t++) {
      const h = sim.holder().join('+') || 'nobody';
      if (trace.at(-1)?.holders !== h) trace.push({ at: sim.now - start, holders: h });
      sim.run(1);
    }
    return trace;
  }

  test('on: the VIP goes back to lb1 once its link has worked for lb2\'s dead time, by release-then-acquire, at every phase of the heal', () => {
    const failures: string[] = [];
    for (let phase = 0; phase < 100; phase++) {
      const { sim } = healedPartition(1000 + phase);
      const trace = holderTrace(sim, 3000);
      const shape = trace.map((e) => e.holders).join(' > ');
      const back = trace.find((e) => e.holders === 'lb1')?.at ?? -1;
      const gap = back - (trace.find((e) => e.holders === 'nobody')?.at ?? back);
      const takeovers = sim.get('lb1').logs.filter((l) => l.msg.startsWith('Resources being acquired')).length;
      // Trusted after the first ping reply (within 100 ms of the heal) plus lb2's dead time (500 ms); then lb1's
      // stable report and the three-phase handshake take a few wire/operation delays.
      if (shape !== 'lb2 > nobody > lb1' || back < 500 || back > 500 + 100 + 50 || gap > 2 * sim.opMs + 5 || takeovers > 0) {
        failures.push(`phase ${phase}: holders ${trace.map((e) => `${e.holders}@${e.at}`).join(' > ')}; lb1 takeovers ${takeovers}`);
      }
    }
    expect(failures).toEqual([]);
  });

  test('on: the handover is heartbeat\'s ask_resources handshake, started by lb2 on lb1\'s stable report', () => {
    const { sim, healedAt } = healedPartition(1000);
    sim.until(() => sim.holder().join() === 'lb1' && sim.report('lb1').resources.stable && sim.report('lb2').resources.stable, 2000);
    const after = (name: string): Array<Record<string, unknown>> => bodies({ sent: sim.get(name).sent.filter((s) => s.at >= healedAt) });
    const lb1 = after('lb1').filter((b) => b.t === 'resource' || b.t === 'ask_resources');
    // lb1 first reports holding nothing and unstable (its link is not trusted yet), then stable; then the handshake.
    expect(lb1.slice(0, 2)).toEqual([
      { t: 'resource', rsc_hold: 'none', full: true, isstable: false, info: null },
      { t: 'resource', rsc_hold: 'none', full: true, isstable: true, info: null },
    ]);
    expect(lb1.filter((b) => b.t === 'ask_resources').map((b) => b.info)).toEqual(['other', 'done']);
    expect(after('lb2').filter((b) => b.t === 'ask_resources').map((b) => b.info)).toEqual(['me', 'done']);
    expect(sim.report('lb1').resources).toMatchObject({ hold: 'local', stable: true, standby: 'not' });
    // lb2 has no groups of its own, and reports 'local' once that (empty) set is up, as heartbeat does.
    expect(sim.report('lb2').resources).toMatchObject({ hold: 'local', up: [], stable: true, standby: 'not' });
    expect(sim.get('lb1').logs.some((l) => l.msg === 'Cluster node lb2 returning after partition.')).toBe(true);
  });

  test('off: the VIP stays on lb2 and both settle stable, at every phase of the heal', () => {
    const failures: string[] = [];
    for (let phase = 0; phase < 100; phase += 3) {
      const { sim } = healedPartition(1000 + phase, { autoFailback: 'off' });
      const trace = holderTrace(sim, 3000);
      const settled = sim.report('lb1').resources.stable && sim.report('lb2').resources.stable;
      if (trace.map((e) => e.holders).join(' > ') !== 'lb2' || !settled) failures.push(`phase ${phase}: holders ${trace.map((e) => `${e.holders}@${e.at}`).join(' > ')}; settled ${settled}`);
    }
    expect(failures).toEqual([]);
    const { sim } = healedPartition(1000, { autoFailback: 'off' });
    sim.run(3000);
    expect(sim.get('lb2').sent.filter((s) => s.type === 'ask_resources')).toEqual([]);
  });

  test('on: a link that fails again before it is trusted moves nothing; after a lasting heal the VIP goes home', () => {
    const { sim, cut } = healedPartition(1000);
    sim.run(300); // they hear each other again; lb1 does not trust its link yet
    expect(sim.get('lb1').logs.some((l) => l.msg === 'Cluster node lb2 returning after partition.')).toBe(true);
    cut(true);
    expect(holderTrace(sim, 2000).map((e) => e.holders)).toEqual(['lb2']);
    cut(false);
    const trace = holderTrace(sim, 2000);
    expect(trace.map((e) => e.holders)).toEqual(['lb2', 'nobody', 'lb1']);
    expect(sim.get('lb1').logs.filter((l) => l.msg.startsWith('Resources being acquired'))).toEqual([]);
  });
});

describe('nobody holding', () => {
  test('after both sides released as isolated (a cut-off node, then its peer stalled past deadping), the home node takes its groups back', () => {
    // Seen in the namespace lab: lb1 was cut off and released; lb2 took over, then was paused for 600 ms (a VM
    // pause), found its ping replies stale and lb1 dead, and released as well. Both were then stable, each heard the
    // other hold nothing, and heartbeat's audit only logs 'No one owns our local resources!': the VIP stayed down.
    const { sim, reach } = pingPair();
    sim.until(() => sim.holder().join() === 'lb1' && sim.report('lb2').resources.stable, 3000);
    sim.link = (from, to) => from !== 'lb1' && to !== 'lb1';
    reach.set('lb1', false);
    sim.until(() => sim.holder().join() === 'lb2', 3000);
    reach.set('lb2', false);
    sim.until(() => sim.holder().length === 0, 3000);
    sim.link = () => true;
    reach.set('lb1', true);
    reach.set('lb2', true);
    const healedAt = sim.now;
    const took = sim.until(() => sim.holder().join() === 'lb1', 3000);
    sim.run(2000);
    expect(sim.holder()).toEqual(['lb1']);
    // Once lb1's link has worked for lb2's dead time (500 ms) and both have said what they hold.
    expect(took).toBeLessThan(500 + 200);
    expect(sim.get('lb1').logs.some((l) => l.at >= healedAt && l.msg.startsWith('No one owns our local resources'))).toBe(true);
  });
});

describe('crossed standby requests', () => {
  const LB2_GROUP = { ...VIP_GROUP, node: 'lb2', key: 'IPaddr::198.18.0.98/24/eth0', resources: [{ ...VIP_GROUP.resources[0]!, ip: '198.18.0.98', raw: 'IPaddr::198.18.0.98/24/eth0' }] };

  test('both nodes asking to go standby at once: one yields at once (heartbeat lets both time out after 10 s)', () => {
    const sim = pair({ groups: [VIP_GROUP, LB2_GROUP] });
    sim.until(() => sim.get('lb2').up.has(LB2_GROUP.key), 3000);
    sim.command('lb1', 'standby', 'all');
    sim.command('lb2', 'standby', 'all');
    // Neither request is a failback only: the name that sorts first (lb1) goes standby, lb2 yields.
    const took = sim.until(() => sim.holder().join() === 'lb2' && sim.get('lb2').up.has(LB2_GROUP.key) && sim.report('lb1').resources.stable && sim.report('lb2').resources.stable, 2000);
    expect(took).toBeLessThan(100);
    expect(sim.get('lb2').logs.some((l) => l.msg.startsWith('standby requests crossed') && l.msg.includes('lb2 yields'))).toBe(true);
    expect([...sim.get('lb1').up]).toEqual([]);
  });

  test('whatever the two requested sets, exactly one side yields and both are settled within 100 ms', () => {
    // Both sides must pick the same winner from what they both know (the two requests and the names): two nodes that
    // both yielded would each wait for the other's giveup for an hour.
    const failures: string[] = [];
    for (const a of ['all', 'local', 'foreign']) {
      for (const b of ['all', 'local', 'foreign']) {
        const sim = pair({ groups: [VIP_GROUP, LB2_GROUP] });
        sim.until(() => sim.get('lb2').up.has(LB2_GROUP.key), 3000);
        sim.command('lb1', 'standby', a);
        sim.command('lb2', 'standby', b);
        const settled = (): boolean => ['lb1', 'lb2'].every((n) => sim.report(n).resources.stable && sim.report(n).resources.standby === 'not');
        let took = -1;
        try {
          took = sim.until(settled, 1000);
        } catch {
          // reported below
        }
        const yields = ['lb1', 'lb2'].filter((n) => sim.get(n).logs.some((l) => l.msg.startsWith('standby requests crossed')));
        if (took < 0 || took > 100 || yields.length !== 1) failures.push(`lb1 ${a} / lb2 ${b}: settled after ${took} ms, yielded: [${yields.join()}]`);
      }
    }
    expect(failures).toEqual([]);
  });

  test('a failback-only request wins over the name order', () => {
    const sim = pair({ groups: [VIP_GROUP, LB2_GROUP], autoFailback: 'off' });
    sim.until(() => sim.get('lb2').up.has(LB2_GROUP.key), 3000);
    sim.command('lb1', 'standby', 'all');
    sim.until(() => sim.get('lb2').up.size === 2 && sim.report('lb1').resources.stable && sim.report('lb2').resources.stable, 2000);
    // lb2 asks for foreign only (hands lb1's VIP home); lb1 asks for all. lb1 yields although its name sorts first.
    sim.command('lb2', 'standby', 'foreign');
    sim.command('lb1', 'standby', 'all');
    const took = sim.until(() => sim.holder().join() === 'lb1' && sim.get('lb2').up.has(LB2_GROUP.key) && sim.report('lb1').resources.stable && sim.report('lb2').resources.stable, 2000);
    expect(took).toBeLessThan(100);
    expect(sim.get('lb1').logs.some((l) => l.msg.startsWith('standby requests crossed') && l.msg.includes('lb1 yields'))).toBe(true);
  });
});

describe('resource failures', () => {
  test('a VIP the shell cannot hold is reported failed and retried, not claimed as up', () => {
    const sim = new Sim();
    const lb1 = sim.start('lb1');
    lb1.failAcquire.add(VIP_GROUP.key);
    sim.start('lb2');
    sim.run(1500);
    expect(sim.holder()).toEqual([]);
    expect(sim.report('lb1').resources.failed).toEqual([VIP_GROUP.key]);
    lb1.failAcquire.clear();
    sim.until(() => sim.holder().join() === 'lb1', 3000);
    expect(sim.report('lb1').resources.failed).toEqual([]);
  });
});
