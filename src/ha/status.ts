// What `tsbal ha status` shows: a plain snapshot of the node, safe to send across threads and print.
import * as fsm from './resource-fsm.ts';
import { keysDiffer, type Counters, type HaNode, type PeerStatus } from './node.ts';

export interface StatusReport {
  node: string;
  generation: number;
  status: string;
  commUp: boolean;
  resources: { state: fsm.RState; hold: string; groups: string[]; up: string[]; failed: string[]; standby: fsm.Standby; stable: boolean; busy: string | null };
  peer: {
    name: string;
    status: PeerStatus;
    heardMsAgo: number | null;
    deadtimeMs: number;
    generation: number | null;
    holds: string;
    stable: boolean;
    pingUp: number | null;
    /** Its packets fail authentication and none has passed since: the authkeys differ. */
    keysDiffer: boolean;
    /** Packets naming it as sender that failed authentication (any time), from where, why, and how long ago. */
    authFailures: { count: number; address: string; reason: string; lastMsAgo: number } | null;
  };
  ping: Array<{ target: string; up: boolean; lastReplyMsAgo: number | null }>;
  counters: Counters;
}

export function statusReport(node: HaNode, now: number): StatusReport {
  const r = node.rsc;
  const p = node.peer;
  return {
    node: node.cfg.me,
    generation: node.cfg.generation,
    status: node.status,
    commUp: node.commUp,
    resources: {
      state: r.rstate,
      hold: fsm.holdName(r.hold),
      groups: node.cfg.groups.map((g) => g.key),
      up: [...r.up],
      failed: [...r.failed],
      standby: r.standby,
      stable: fsm.isStable(r),
      busy: r.busy ? `${r.busy.kind} ${r.busy.groups.map((g) => g.key).join(' ')}` : null,
    },
    peer: {
      name: p.name,
      status: p.status,
      heardMsAgo: p.heardAt === null ? null : now - p.heardAt,
      deadtimeMs: p.dtMs,
      generation: p.seq.generation,
      holds: fsm.holdName(r.otherHolds),
      stable: r.otherStable,
      pingUp: p.pingUp,
      keysDiffer: keysDiffer(node),
      authFailures: node.authMismatch && { count: node.authMismatch.count, address: node.authMismatch.address, reason: node.authMismatch.reason, lastMsAgo: now - node.authMismatch.at },
    },
    ping: [...node.ping].map(([target, s]) => ({ target, up: s.up, lastReplyMsAgo: s.lastReply === null ? null : now - s.lastReply })),
    counters: node.counters,
  };
}
