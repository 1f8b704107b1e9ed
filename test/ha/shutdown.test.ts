// Graceful shutdown (SIGTERM → `shutdown` command) at every moment of a standby or failback handshake, in the
// simulator: a stopping node never takes anything over, and it leaves within its own operation time, not the
// handshake's (issue 14 item 1: a tsbal that got SIGTERM right after a failback waited for the peer's `done`, then
// took the VIP when the peer died).
import { describe, test, expect } from 'bun:test';
import { Sim } from './sim.ts';

/** Two nodes started together and settled: lb1 (the VIP's home) holds it. */
function pair(over: Parameters<Sim['add']>[1] = {}): Sim {
  const sim = new Sim();
  sim.start('lb1', over);
  sim.start('lb2', over);
  sim.until(() => sim.holder().join() === 'lb1' && sim.report('lb1').resources.stable && sim.report('lb2').resources.stable, 3000);
  return sim;
}

/** A real heartbeat's resource scripts take 1.0–1.7 s (reference/heartbeat.md §7): lb1 plays that peer. */
const SLOW_PEER_OP_MS = 1500;

/** lb1 crashed, lb2 took the VIP, lb1 restarts: the failback handshake starts. Returns the sim at lb1's restart. */
function failbackScenario(): Sim {
  const sim = pair();
  sim.opMsOf.set('lb1', SLOW_PEER_OP_MS);
  sim.kill('lb1');
  sim.until(() => sim.holder().join() === 'lb2', 2000);
  sim.run(300);
  sim.start('lb1');
  return sim;
}

/** lb1 goes standby (hb_standby): lb2 takes the VIP through the handshake. Returns the sim at the command. */
function standbyScenario(): Sim {
  const sim = pair({ autoFailback: 'off' });
  sim.command('lb1', 'standby');
  return sim;
}

/**
 * Every moment the cluster does something in `windowMs` after the scenario starts (each packet sent or delivered,
 * each operation started or finished, each log line), and the millisecond before it: a SIGTERM lands before or after
 * every step of the handshake.
 */
function moments(scenario: () => Sim, windowMs: number): number[] {
  const sim = scenario();
  const from = sim.now;
  sim.run(windowMs);
  const at = new Set<number>();
  for (const n of sim.nodes.values()) {
    for (const t of [...n.sent.map((s) => s.at), ...n.sent.map((s) => s.at + sim.wireMs), ...n.ops.map((o) => o.at), ...n.logs.map((l) => l.at)]) {
      if (t < from || t > from + windowMs) continue;
      at.add(t - from);
      at.add(Math.max(0, t - from - 1));
    }
  }
  return [...at].sort((a, b) => a - b);
}

interface Outcome {
  offset: number;
  exitMs: number | null;
  acquiredAfterTerm: string[];
  holders: string[];
}

/**
 * Runs `scenario`, SIGTERMs `victim` `offset` ms in, optionally kills the other node `killPeerAfter` ms later, and
 * reports when the victim exited and whether it started any acquire after the SIGTERM.
 */
function sigtermAt(scenario: () => Sim, victim: string, offset: number, killPeerAfter: number | null): Outcome {
  const sim = scenario();
  const other = victim === 'lb1' ? 'lb2' : 'lb1';
  sim.run(offset);
  const termAt = sim.now;
  const v = sim.get(victim);
  const opsBefore = v.ops.length;
  sim.command(victim, 'shutdown');
  if (killPeerAfter !== null) {
    sim.run(killPeerAfter);
    sim.kill(other);
  }
  sim.run(5_000);
  return {
    offset,
    exitMs: v.exitedAt === null ? null : v.exitedAt - termAt,
    acquiredAfterTerm: v.ops.slice(opsBefore).filter((o) => o.kind === 'acquire').map((o) => `${o.at - termAt} ms: ${o.reason}`),
    holders: sim.holder(),
  };
}

/** Each sweep runs the scenario once per moment: a second or two on an idle machine, several under load. */
const SWEEP_TIMEOUT_MS = 60_000;

/** How long a stopping node may take to leave: its own release (5 ms in the sim) and a few wire hops, or the op it waits for. */
const exitBound = (sim: Sim, victim: string): number => (sim.opMsOf.get(victim) ?? sim.opMs) * 2 + 20;

describe('SIGTERM during a failback handshake (lb2 hands the VIP back to a slow lb1)', () => {
  const window = 4000;
  const at = moments(failbackScenario, window);

  test('the handshake window has many distinct moments (the sweep below is not vacuous)', () => {
    expect(at.length).toBeGreaterThan(40);
    // Baseline without SIGTERM: the VIP goes home, and lb2's standby waits for lb1's `done` for most of the window.
    const sim = failbackScenario();
    const start = sim.now;
    let waitingForDone = 0;
    for (let i = 0; i < window; i++) {
      sim.run(1);
      if (sim.report('lb2').resources.standby === 'done') waitingForDone++;
    }
    expect(sim.holder()).toEqual(['lb1']);
    expect(waitingForDone).toBeGreaterThan(SLOW_PEER_OP_MS - 100);
    expect(sim.now - start).toBe(window);
  });

  test('lb2 SIGTERMed at any moment, then lb1 dies 500 ms later: lb2 never acquires and exits at once', () => {
    const bad: Outcome[] = [];
    for (const offset of at) {
      const o = sigtermAt(failbackScenario, 'lb2', offset, 500);
      if (o.acquiredAfterTerm.length > 0 || o.exitMs === null || o.exitMs > exitBound(new Sim(), 'lb2')) bad.push(o);
    }
    expect(bad).toEqual([]);
  }, SWEEP_TIMEOUT_MS);

  test('lb2 SIGTERMed at any moment with lb1 staying up: lb2 never acquires, exits at once, lb1 ends up the one holder', () => {
    const bad: Outcome[] = [];
    for (const offset of at) {
      const o = sigtermAt(failbackScenario, 'lb2', offset, null);
      if (o.acquiredAfterTerm.length > 0 || o.exitMs === null || o.exitMs > exitBound(new Sim(), 'lb2') || o.holders.join() !== 'lb1') bad.push(o);
    }
    expect(bad).toEqual([]);
  }, SWEEP_TIMEOUT_MS);

  test('lb1 (the slow home node) SIGTERMed at any moment: it never starts an acquire afterwards; lb2 ends up the holder', () => {
    const bad: Outcome[] = [];
    for (const offset of at) {
      const o = sigtermAt(failbackScenario, 'lb1', offset, null);
      // An acquire already running when SIGTERM came is waited for (up to shutdownWaitMs), then released.
      if (o.acquiredAfterTerm.length > 0 || o.exitMs === null || o.exitMs > SLOW_PEER_OP_MS * 2 + 20 || o.holders.join() !== 'lb2') bad.push(o);
    }
    expect(bad).toEqual([]);
  }, SWEEP_TIMEOUT_MS);
});

describe('SIGTERM during a standby handshake (lb1 hb_standby, lb2 takes the VIP)', () => {
  const at = moments(standbyScenario, 1000);

  test('the taker (lb2) SIGTERMed at any moment: never acquires after it, exits at once, lb1 keeps or gets back the VIP', () => {
    expect(at.length).toBeGreaterThan(20);
    const bad: Outcome[] = [];
    for (const offset of at) {
      const o = sigtermAt(standbyScenario, 'lb2', offset, null);
      if (o.acquiredAfterTerm.length > 0 || o.exitMs === null || o.exitMs > exitBound(new Sim(), 'lb2') || o.holders.join() !== 'lb1') bad.push(o);
    }
    expect(bad).toEqual([]);
  }, SWEEP_TIMEOUT_MS);

  test('the taker (lb2) SIGTERMed, then lb1 dies: lb2 never acquires', () => {
    const bad: Outcome[] = [];
    for (const offset of at) {
      const o = sigtermAt(standbyScenario, 'lb2', offset, 200);
      if (o.acquiredAfterTerm.length > 0 || o.exitMs === null) bad.push(o);
    }
    expect(bad).toEqual([]);
  }, SWEEP_TIMEOUT_MS);

  test('the giver (lb1) SIGTERMed at any moment: never acquires after it, exits at once, lb2 ends up the holder', () => {
    const bad: Outcome[] = [];
    for (const offset of at) {
      const o = sigtermAt(standbyScenario, 'lb1', offset, null);
      if (o.acquiredAfterTerm.length > 0 || o.exitMs === null || o.exitMs > exitBound(new Sim(), 'lb1') || o.holders.join() !== 'lb2') bad.push(o);
    }
    expect(bad).toEqual([]);
  }, SWEEP_TIMEOUT_MS);
});

describe('SIGTERM with the peer up and nothing in flight', () => {
  test('logs no delay, releases, sends shutdone and exits within the release time', () => {
    const sim = pair();
    sim.command('lb1', 'shutdown');
    const t = sim.until(() => sim.get('lb1').exited, 1000);
    expect(t).toBeLessThanOrEqual(sim.opMs + 1);
    expect(sim.get('lb1').logs.some((l) => l.msg.startsWith('Shutdown delayed'))).toBe(false);
    sim.until(() => sim.holder().join() === 'lb2', 100);
  });
});
