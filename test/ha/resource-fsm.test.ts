// The resource machine on its own, for states the two-node simulation reaches only by timing luck.
import { describe, expect, test } from 'bun:test';
import * as fsm from '../../src/ha/resource-fsm.ts';
import type { Body } from '../../src/ha/messages.ts';
import { VIP_GROUP } from './sim.ts';

interface Seen {
  sent: Body[];
  acts: Array<{ kind: string; groups: string[]; reason: string }>;
  announced?: string[][];
}

function ctx(me: string, seen: Seen, over: Partial<fsm.RscCtx> = {}): fsm.RscCtx {
  return {
    now: 10_000,
    me,
    peer: me === 'lb1' ? 'lb2' : 'lb1',
    groups: [VIP_GROUP],
    autoFailback: 'on',
    rqstDelayMs: 10_000,
    shutdownWaitMs: 5_000,
    retryFailedMs: 2_000,
    keepaliveMs: 100,
    peerAlive: true,
    canTakeOver: true,
    send: (body) => seen.sent.push(body),
    log: () => undefined,
    act: (kind, _opId, groups, reason) => seen.acts.push({ kind, groups: groups.map((g) => g.key), reason }),
    announce: (groups) => (seen.announced ??= []).push(groups.map((g) => g.key)),
    reply: () => undefined,
    exit: () => undefined,
    ...over,
  };
}

describe('auto_failback after a healed partition', () => {
  test('a node holding its peer\'s groups while the peer holds them too releases them at once instead of a standby handshake', () => {
    // lb2 took lb1's VIP over while they were apart; lb1 (the VIP's home) kept or took it too and reports holding
    // its own groups. A failback handshake would hand lb1 what it has, and the audit cannot release ours while a
    // standby is in progress: both would hold the VIP until it ends.
    const s = fsm.newRscState();
    Object.assign(s, { rstate: 'stable', hold: fsm.ALL, otherHolds: fsm.ALL, otherStable: true, needsFailback: true, autoFailbackAt: 10_000 });
    s.up.add(VIP_GROUP.key);
    const seen: Seen = { sent: [], acts: [] };
    fsm.rscTick(s, ctx('lb2', seen));
    expect(seen.sent.filter((b) => b.t === 'ask_resources')).toEqual([]);
    expect(seen.acts).toEqual([{ kind: 'release', groups: [VIP_GROUP.key], reason: 'split_brain' }]);
    expect(s.hold).toBe(fsm.LOCAL);
  });

  test('with the peer holding nothing, the failback handshake starts as in heartbeat', () => {
    const s = fsm.newRscState();
    Object.assign(s, { rstate: 'stable', hold: fsm.ALL, otherHolds: fsm.NONE, otherStable: true, needsFailback: true, autoFailbackAt: 10_000 });
    const seen: Seen = { sent: [], acts: [] };
    fsm.rscTick(s, ctx('lb2', seen));
    expect(seen.sent).toEqual([{ t: 'ask_resources', rsc_hold: 'foreign', info: 'me' }]);
    expect(s.standby).toBe('me');
  });
});

describe('a peer back from a partition (heartbeat would restart itself)', () => {
  /** lb2 took lb1's groups over while lb1 was cut off; lb1 had said it holds nothing (stable) before the partition. */
  const holdingPeers = (): fsm.RscState => Object.assign(fsm.newRscState(), { rstate: 'stable', hold: fsm.ALL, otherHolds: fsm.NONE, otherStable: true, needsFailback: false });

  test('auto_failback on: the holder of the peer\'s groups starts the failback on the peer\'s next stable report, even though it saw the peer stable before', () => {
    const s = holdingPeers();
    const seen: Seen = { sent: [], acts: [] };
    fsm.rscPeerBack(s, ctx('lb2', seen));
    expect(seen.sent).toEqual([{ t: 'resource', rsc_hold: 'all', full: true, isstable: true, info: null }]);
    fsm.rscPeerResource(s, ctx('lb2', seen), { t: 'resource', rsc_hold: 'none', full: true, isstable: true, info: null });
    expect(seen.sent.filter((b) => b.t === 'ask_resources')).toEqual([{ t: 'ask_resources', rsc_hold: 'foreign', info: 'me' }]);
    expect(s.standby).toBe('me');
  });

  test('auto_failback off: the same report moves nothing', () => {
    const s = holdingPeers();
    const seen: Seen = { sent: [], acts: [] };
    fsm.rscPeerBack(s, ctx('lb2', seen, { autoFailback: 'off' }));
    fsm.rscPeerResource(s, ctx('lb2', seen, { autoFailback: 'off' }), { t: 'resource', rsc_hold: 'none', full: true, isstable: true, info: null });
    expect(seen.sent.filter((b) => b.t === 'ask_resources')).toEqual([]);
    expect(s.standby).toBe('not');
  });

  test('a node whose link is not trusted yet reports itself unstable until it is, then stable (whatever the peer reported meanwhile)', () => {
    const s = Object.assign(fsm.newRscState(), { rstate: 'stable', hold: fsm.NONE, otherHolds: fsm.ALL, otherStable: true });
    const seen: Seen = { sent: [], acts: [] };
    fsm.rscPeerBack(s, ctx('lb1', seen, { canTakeOver: false }));
    fsm.rscPeerResource(s, ctx('lb1', seen, { canTakeOver: false }), { t: 'resource', rsc_hold: 'all', full: true, isstable: false, info: null });
    fsm.rscTick(s, ctx('lb1', seen, { canTakeOver: false }));
    expect(seen.sent.map((b) => (b.t === 'resource' ? b.isstable : b.t))).toEqual([false]);
    fsm.rscTick(s, ctx('lb1', seen));
    expect(seen.sent.map((b) => (b.t === 'resource' ? b.isstable : b.t))).toEqual([false, true]);
    expect(seen.acts).toEqual([]);
  });
});

describe('nobody holding our groups', () => {
  const unowned = (over: Partial<fsm.RscState>): fsm.RscState => Object.assign(fsm.newRscState(), { rstate: 'stable', hold: fsm.NONE, otherHolds: fsm.NONE, otherStable: true, peerReported: true, ...over });

  test('the home node takes them when its live, stable peer has reported holding none of them', () => {
    const s = unowned({});
    const seen: Seen = { sent: [], acts: [] };
    fsm.rscTick(s, ctx('lb1', seen));
    expect(seen.acts).toEqual([{ kind: 'acquire', groups: [VIP_GROUP.key], reason: 'req_our' }]);
  });

  test('but not on a stale view (no report since the peer came back or a standby moved things), nor while its link is not trusted', () => {
    const cases: Array<[string, fsm.RscState, Partial<fsm.RscCtx>]> = [
      ['no report since', unowned({ peerReported: false }), {}],
      ['ping says we may be cut off', unowned({}), { canTakeOver: false }],
      ['peer not alive', unowned({}), { peerAlive: false }],
      ['peer in flux', unowned({ otherStable: false }), {}],
      ['peer holds them', unowned({ otherHolds: fsm.FOREIGN }), {}],
    ];
    const acted = cases.filter(([, s, over]) => {
      const seen: Seen = { sent: [], acts: [] };
      fsm.rscTick(s, ctx('lb1', seen, over));
      return seen.acts.length > 0;
    });
    expect(acted.map(([name]) => name)).toEqual([]);
  });
});
