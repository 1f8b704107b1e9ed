// The HA engine's state as Prometheus families for `GET /metrics` on the management port (tsbal run adds them to the
// proxy's). Made so an admin can alert on what matters: a failover (`tsbal_ha_holds_resources` changes), a split brain
// (`sum by (home) (tsbal_ha_holds_resources) > 1` across both nodes, or `tsbal_ha_split_brain` on either), a silent
// peer (`tsbal_ha_peer_last_heard_seconds`), and an attack or a key mismatch (`tsbal_ha_packets_dropped_total`).
import type { MetricFamily, Sample } from '../proxy/management/metrics.ts';
import type { HaStatus } from './cluster.ts';
import { doublyHeld, homesHeld, roleOf } from './status-view.ts';

const PEER_ALIVE = new Set(['up', 'active']);

/** `status` null: the engine did not answer in time (tsbal_ha_up 0, nothing else). */
export function haMetrics(status: HaStatus | null): MetricFamily[] {
  const family = (name: string, type: MetricFamily['type'], help: string, samples: Sample[] = []): MetricFamily => ({ name, help, type, samples });
  const up = family('tsbal_ha_up', 'gauge', 'Whether the HA engine answered this scrape (1) or not within 1 s (0).', [{ labels: {}, value: status === null ? 0 : 1 }]);
  if (status === null) return [up];
  const s = status;
  const me = s.node;
  const peer = s.peer.name;
  const mine = homesHeld(s.resources.hold, me, peer);
  const peers = homesHeld(s.peer.holds, peer, me);
  const flag = (b: boolean): number => (b ? 1 : 0);
  const ms = (v: number): number => Math.round(v) / 1000;
  const counter = (name: string, help: string, value: number): MetricFamily => family(name, 'counter', help, [{ labels: {}, value }]);
  return [
    up,
    family('tsbal_ha_node_info', 'gauge', "This node's name, its peer and its heartbeat status (init, up, active); always 1.", [
      { labels: { node: me, peer, status: s.status }, value: 1 },
    ]),
    family('tsbal_ha_active', 'gauge', 'Whether this node holds any resource group (1: active) or none (0: standby); a change is a failover.', [
      { labels: {}, value: flag(roleOf(s.resources.hold) === 'active') },
    ]),
    family('tsbal_ha_in_cluster', 'gauge', 'Whether this node has heard its peer since it started (heartbeat comm up).', [{ labels: {}, value: flag(s.commUp) }]),
    family(
      'tsbal_ha_holds_resources',
      'gauge',
      'Whether this node holds the resource groups (VIPs) whose home is `home` (the first column of haresources).',
      [me, peer].map((home) => ({ labels: { home }, value: flag(mine.includes(home)) })),
    ),
    family(
      'tsbal_ha_peer_holds_resources',
      'gauge',
      'Whether the peer, by its last report, holds the resource groups whose home is `home` (0 while it is dead).',
      [me, peer].map((home) => ({ labels: { peer, home }, value: flag(s.peer.status !== 'dead' && peers.includes(home)) })),
    ),
    family('tsbal_ha_split_brain', 'gauge', 'Whether this node and its peer both hold the same resource groups (1 until one releases).', [
      { labels: {}, value: flag(doublyHeld(s).length > 0) },
    ]),
    family('tsbal_ha_resource_up', 'gauge', 'Resource groups running on this node (1) or failed to start here (0), by group.', [
      ...s.resources.up.map((resource) => ({ labels: { resource }, value: 1 })),
      ...s.resources.failed.map((resource) => ({ labels: { resource }, value: 0 })),
    ]),
    family('tsbal_ha_resources_stable', 'gauge', 'Whether resource ownership is settled (0 while a takeover, handover or negotiation runs).', [
      { labels: {}, value: flag(s.resources.stable) },
    ]),
    family('tsbal_ha_peer_up', 'gauge', 'Whether the peer is heard (status up or active) rather than dead or not yet heard.', [
      { labels: { peer, status: s.peer.status }, value: flag(PEER_ALIVE.has(s.peer.status)) },
    ]),
    family(
      'tsbal_ha_peer_last_heard_seconds',
      'gauge',
      'Seconds since the last packet accepted from the peer (absent until one is).',
      s.peer.heardMsAgo === null ? [] : [{ labels: { peer }, value: ms(s.peer.heardMsAgo) }],
    ),
    family('tsbal_ha_peer_keys_differ', 'gauge', "1 while the peer's packets fail authentication and none has passed since: authkeys differ.", [
      { labels: { peer }, value: flag(s.peer.keysDiffer === true) },
    ]),
    family('tsbal_ha_peer_auth_failures_total', 'counter', "Packets naming the peer as sender that failed authentication (the nodes' authkeys differ).", [
      { labels: { peer }, value: s.peer.authFailures?.count ?? 0 },
    ]),
    family('tsbal_ha_peer_deadtime_seconds', 'gauge', 'How long the peer may stay silent before it is declared dead.', [{ labels: { peer }, value: ms(s.peer.deadtimeMs) }]),
    family(
      'tsbal_ha_ping_node_up',
      'gauge',
      'Whether a ping node (ha.cf ping) answers.',
      s.ping.map((t) => ({ labels: { target: t.target }, value: flag(t.up) })),
    ),
    counter('tsbal_ha_packets_received_total', 'Heartbeat packets received.', s.counters.received),
    counter('tsbal_ha_packets_accepted_total', 'Heartbeat packets that passed authentication and sequence checks.', s.counters.accepted),
    counter('tsbal_ha_packets_sent_total', 'Heartbeat packets sent.', s.counters.sent),
    counter('tsbal_ha_packets_resent_total', 'Heartbeat packets sent again on the peer\'s request.', s.counters.resent),
    counter('tsbal_ha_packets_lost_total', 'Heartbeat packets from the peer never received (sequence gaps).', s.counters.lost),
    counter('tsbal_ha_peer_deaths_total', 'Times the peer was declared dead.', s.counters.deaths),
    family(
      'tsbal_ha_packets_dropped_total',
      'counter',
      'Heartbeat packets dropped, by reason (badAuth: wrong key or authkeys differ; staleGeneration/oldSeq/duplicate: replays).',
      Object.entries(s.counters.dropped).map(([reason, n]) => ({ labels: { reason }, value: typeof n === 'number' ? n : 0 })),
    ),
    family('tsbal_ha_heartbeat_muted', 'gauge', 'Whether heartbeats are held back because the main thread stalled past deadtime.', [{ labels: {}, value: flag(s.muted) }]),
  ];
}

/** The HA families for a scrape: the engine's status, or tsbal_ha_up 0 when it does not answer within `timeoutMs`. */
export async function scrapeHa(status: () => Promise<HaStatus>, timeoutMs = 1000): Promise<MetricFamily[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
  try {
    return haMetrics(await Promise.race([status().catch(() => null), late]));
  } finally {
    clearTimeout(timer);
  }
}
