// The HA status in an admin's words: who holds which node's resources, whether both do (a split brain), and what the
// resource state machine's internal names mean. Pure; `tsbal ha status` (src/cli/ha.ts) and /metrics (metrics.ts)
// both read a status through it, so they never disagree.
import type { HaStatus } from './cluster.ts';
import type { RscHold } from './messages.ts';

/** The nodes whose resource groups (haresources' first column) a hold covers; `local` is the holder's own. */
export function homesHeld(hold: string, holder: string, other: string): string[] {
  switch (hold as RscHold) {
    case 'local':
      return [holder];
    case 'foreign':
      return [other];
    case 'all':
      return [holder, other];
    default:
      return [];
  }
}

/** The homes whose groups both this node and (by its last report) the peer hold: non-empty is a double ownership. */
export function doublyHeld(s: HaStatus): string[] {
  const mine = homesHeld(s.resources.hold, s.node, s.peer.name);
  const peers = s.peer.status === 'dead' ? [] : homesHeld(s.peer.holds, s.peer.name, s.node);
  return mine.filter((home) => peers.includes(home));
}

/** What a node holds, as a sentence fragment: `its own resources (home lb1)`, `lb2's resources only (taken over)`. */
export function holdWords(hold: string, holder: string, other: string): string {
  switch (hold as RscHold) {
    case 'local':
      return `its own resources (home ${holder})`;
    case 'foreign':
      return `${other}'s resources only (taken over)`;
    case 'all':
      return `all resources (its own and ${other}'s)`;
    default:
      return 'no resources';
  }
}

const RSTATE_WORDS: Record<string, string> = {
  init: 'starting up',
  starting: 'negotiating resources with the peer',
  bothstarting: 'negotiating resources (both nodes starting)',
  rscrcvd: 'resources negotiated, settling',
  stable: 'settled',
  shutdown: 'shutting down (releasing resources)',
};

const STANDBY_WORDS: Record<string, string> = {
  me: 'handing resources to the peer (standby requested here)',
  other: 'taking resources over (the peer asked for standby)',
  done: 'standby handover done',
};

const NODE_WORDS: Record<string, string> = { init: 'starting', up: 'up', active: 'active' };

/** A node's role: `active` while it holds any resource group, else `standby`. */
export function roleOf(hold: string): 'active' | 'standby' {
  return hold === 'none' ? 'standby' : 'active';
}

export function rstateWords(rstate: string): string {
  return RSTATE_WORDS[rstate] ?? rstate;
}

/** `tsbal ha status`: one screen in plain words (the internal names stay in --json). */
export function statusLines(s: HaStatus): string[] {
  const r = s.resources;
  const p = s.peer;
  const double = doublyHeld(s);
  // `own`: our own broadcasts heard back, normal with bcast; said apart so it does not read as trouble.
  const droppedBy = Object.entries(s.counters.dropped).filter(([k, n]) => k !== 'own' && typeof n === 'number' && n > 0);
  const own = (s.counters.dropped as Record<string, number>).own ?? 0;
  const dropped = (droppedBy.map(([k, n]) => `${k} ${n}`).join(', ') || 'none') + (own > 0 ? ` (and ${own} of our own broadcasts heard back, normal with bcast)` : '');
  const transition = r.stable ? 'settled' : `in transition: ${rstateWords(r.state)}`;
  const heard = p.heardMsAgo === null ? 'never heard' : `heard ${Math.round(p.heardMsAgo)} ms ago`;
  return [
    `${s.node} is ${roleOf(r.hold)}: holds ${holdWords(r.hold, s.node, p.name)}; ${transition}` +
      (r.standby !== 'not' ? `; ${STANDBY_WORDS[r.standby] ?? `standby ${r.standby}`}` : '') +
      (r.busy ? `; working on: ${r.busy}` : ''),
    `heartbeat: ${s.commUp ? 'in the cluster' : 'joining the cluster (waiting to hear the peer)'}, node status ${NODE_WORDS[s.status] ?? s.status}, generation ${s.generation}`,
    `resources up here: ${r.up.length > 0 ? r.up.join(', ') : 'none'}` + (r.failed.length > 0 ? `; FAILED: ${r.failed.join(', ')} (retried every 2 s)` : ''),
    `peer ${p.name}: ${p.status}, ${heard} (deadtime ${p.deadtimeMs} ms), holds ${holdWords(p.holds, p.name, s.node)}` +
      (p.stable ? '' : ' (in transition)') +
      (p.generation === null ? '' : `, generation ${p.generation}`),
    ...(p.keysDiffer && p.authFailures
      ? [`peer ${p.name}: KEYS DIFFER: its packets from ${p.authFailures.address} fail authentication (${p.authFailures.reason}, ${p.authFailures.count} so far, last ${Math.round(p.authFailures.lastMsAgo)} ms ago); make authkeys the same on both nodes`]
      : []),
    ...(double.length > 0
      ? [`SPLIT BRAIN: both ${s.node} and ${p.name} hold ${double.map((h) => `${h}'s resources`).join(' and ')}; one of them must release`]
      : []),
    ...s.ping.map((t) => `ping ${t.target}: ${t.up ? 'up' : 'DEAD'}${t.lastReplyMsAgo === null ? ' (never answered)' : ` (reply ${Math.round(t.lastReplyMsAgo)} ms ago)`}`),
    `heartbeat media: ${s.media.join('; ')}`,
    `packets: received ${s.counters.received}, accepted ${s.counters.accepted}, sent ${s.counters.sent}, resent ${s.counters.resent}, lost ${s.counters.lost}; dropped: ${dropped}`,
    `heartbeats sent from the ${s.thread} thread${s.muted ? ' (MUTED: the main thread stalled, so the peer will take over)' : ''}; ` +
      `lateness against keepalive: p50 ${s.heartbeatLag.p50Ms} ms, p99 ${s.heartbeatLag.p99Ms} ms, max ${s.heartbeatLag.maxMs} ms (last ${s.heartbeatLag.samples})`,
  ];
}
