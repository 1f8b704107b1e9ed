// The HA engine's figures for `GET /metrics` (Prometheus), from the same snapshot `tsbal ha status` prints. Pure.
import type { MetricFamily } from '../proxy/management/metrics.ts';
import type { StatusReport } from './status.ts';

export function haMetrics(s: StatusReport): MetricFamily[] {
  const family = (name: string, type: MetricFamily['type'], help: string): MetricFamily => ({ name, help, type, samples: [] });
  const packets = family('tsbal_ha_packets_total', 'counter', 'Heartbeat packets, by what happened to them (received, accepted, sent, resent, lost).');
  const dropped = family('tsbal_ha_dropped_packets_total', 'counter', 'Heartbeat packets dropped, by reason (badAuth, malformed, oldSeq, ...).');
  const authFailures = family('tsbal_ha_peer_auth_failures_total', 'counter', "Packets naming the peer as sender that failed authentication (the nodes' authkeys differ).");
  const keysDiffer = family('tsbal_ha_peer_keys_differ', 'gauge', "1 while the peer's packets fail authentication and none has passed since: authkeys differ.");
  const peerUp = family('tsbal_ha_peer_up', 'gauge', 'Whether the peer is heard (1) or dead or never heard (0).');
  const deaths = family('tsbal_ha_peer_deaths_total', 'counter', 'Times the peer was declared dead.');
  const groupUp = family('tsbal_ha_group_up', 'gauge', 'Whether this node has the haresources group up (1) or not (0), by group.');

  const c = s.counters;
  for (const [kind, value] of [['received', c.received], ['accepted', c.accepted], ['sent', c.sent], ['resent', c.resent], ['lost', c.lost]] as const) {
    packets.samples.push({ labels: { kind }, value });
  }
  for (const [reason, value] of Object.entries(c.dropped)) dropped.samples.push({ labels: { reason }, value });
  const peer = s.peer.name;
  authFailures.samples.push({ labels: { peer }, value: s.peer.authFailures?.count ?? 0 });
  keysDiffer.samples.push({ labels: { peer }, value: s.peer.keysDiffer ? 1 : 0 });
  peerUp.samples.push({ labels: { peer }, value: s.peer.status === 'dead' || s.peer.status === 'unknown' ? 0 : 1 });
  deaths.samples.push({ labels: { peer }, value: c.deaths });
  for (const group of s.resources.groups) groupUp.samples.push({ labels: { group }, value: s.resources.up.includes(group) ? 1 : 0 });
  return [packets, dropped, authFailures, keysDiffer, peerUp, deaths, groupUp];
}
