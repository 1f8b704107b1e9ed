// The ring of recent transitions `tsbal status` shows, and which HA log lines count as transitions.
import { describe, expect, test } from 'bun:test';
import { isHaTransition, newTransitionRing, noteTransition, recentTransitions } from '../../src/status/transitions.ts';

describe('transition ring', () => {
  test('keeps the last N, oldest first, however many came', () => {
    const ring = newTransitionRing(3);
    for (let i = 1; i <= 7; i++) noteTransition(ring, 'backend', `t${i}`, i);
    expect(recentTransitions(ring).map((t) => t.text)).toEqual(['t5', 't6', 't7']);
    expect(ring.items.length).toBe(3);
  });
  test('below capacity it is the whole history', () => {
    const ring = newTransitionRing(3);
    noteTransition(ring, 'ha', 'a', 1);
    noteTransition(ring, 'backend', 'b', 2);
    expect(recentTransitions(ring)).toEqual([
      { at: 1, source: 'ha', text: 'a' },
      { at: 2, source: 'backend', text: 'b' },
    ]);
  });
});

describe('isHaTransition', () => {
  test("the HA engine's lines for a peer dying or coming back, resources moving or failing are transitions", () => {
    for (const line of [
      'node lb2: is dead (no heartbeat for 512 ms)',
      'node lb2 is up (first heard after initdead)',
      'node lb2 is back (restarted)',
      'Cluster node lb2 returning after partition.',
      'Status update for node lb2: status active',
      'acquired IPaddr::198.18.0.99/24/eth0 in 41 ms, started 0 ms after the decision (peer dead)',
      'released IPaddr::198.18.0.99/24/eth0 in 12 ms, started 1 ms after the decision (failback)',
      'acquiring IPaddr::198.18.0.99/24/eth0: ip: RTNETLINK answers: File exists',
      'ping node 198.18.0.254 is dead (no reply for 2000 ms)',
      'ping node 198.18.0.254 is up again',
    ]) {
      expect([line, isHaTransition(line)]).toEqual([line, true]);
    }
  });
  test('routine noise is not: lost packets, late heartbeats, re-announcements, the startup line', () => {
    for (const line of [
      '2 lost packet(s) for [lb2] [10:13]',
      'Late heartbeat: Node lb2: interval 180 ms',
      're-announcing our status and resources (what we sent meanwhile was lost)',
      'lb1: generation 4, peer lb2, keepalive 100 ms, deadtime 500 ms, initdead 1000 ms',
    ]) {
      expect([line, isHaTransition(line)]).toEqual([line, false]);
    }
  });
});
