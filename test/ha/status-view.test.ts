// `tsbal ha status` in plain words and the HA families of /metrics, from one status snapshot: who holds whose
// resources, a split brain named as such, dropped packets by reason, and an engine that does not answer.
import { describe, expect, test } from 'bun:test';
import type { HaStatus } from '../../src/ha/cluster.ts';
import { haMetrics, scrapeHa } from '../../src/ha/metrics.ts';
import { doublyHeld, homesHeld, statusLines } from '../../src/ha/status-view.ts';
import { prometheusText } from '../../src/proxy/management/metrics.ts';

function status(over: { hold?: string; peerHolds?: string; peerStatus?: HaStatus['peer']['status']; stable?: boolean; state?: string; dropped?: Record<string, number> } = {}): HaStatus {
  return {
    node: 'lb1',
    generation: 7,
    status: 'active',
    commUp: true,
    resources: { state: (over.state ?? 'stable') as HaStatus['resources']['state'], hold: over.hold ?? 'local', groups: ['lb1', 'lb2'], up: over.hold === 'none' ? [] : ['IPaddr::198.18.0.99/24/eth0'], failed: [], standby: 'not', stable: over.stable ?? true, busy: null },
    peer: { name: 'lb2', status: over.peerStatus ?? 'active', heardMsAgo: 120.4, deadtimeMs: 10_000, generation: 3, holds: over.peerHolds ?? 'none', stable: true, pingUp: null, keysDiffer: false, authFailures: null },
    ping: [{ target: '198.18.0.254', up: true, lastReplyMsAgo: 800 }],
    counters: {
      received: 10, accepted: 9, sent: 11, resent: 0, rexmitRequested: 0, lost: 1, deaths: 2,
      dropped: { malformed: 0, badAuth: 0, unknownNode: 0, impostor: 0, staleGeneration: 0, oldSeq: 0, duplicate: 0, notForUs: 0, own: 0, ...over.dropped },
    },
    media: ['bcast eth0 -> 198.18.0.255:694'],
    heartbeatLag: { samples: 5, p50Ms: 1, p99Ms: 3, maxMs: 3 },
    thread: 'worker',
    muted: false,
  } as HaStatus;
}

describe('ha status in plain words', () => {
  test('the home node holding its VIP, the peer standing by', () => {
    expect(statusLines(status())).toEqual([
      'lb1 is active: holds its own resources (home lb1); settled',
      'heartbeat: in the cluster, node status active, generation 7',
      'resources up here: IPaddr::198.18.0.99/24/eth0',
      'peer lb2: active, heard 120 ms ago (deadtime 10000 ms), holds no resources, generation 3',
      'ping 198.18.0.254: up (reply 800 ms ago)',
      'heartbeat media: bcast eth0 -> 198.18.0.255:694',
      'packets: received 10, accepted 9, sent 11, resent 0, lost 1; dropped: none',
      'heartbeats sent from the worker thread; lateness against keepalive: p50 1 ms, p99 3 ms, max 3 ms (last 5)',
    ]);
  });

  test('a takeover in progress and a split brain are said in words, with the dropped packets by reason', () => {
    const lines = statusLines(status({ hold: 'all', peerHolds: 'local', stable: false, state: 'starting', dropped: { badAuth: 4, own: 9 } }));
    expect(lines[0]).toBe("lb1 is active: holds all resources (its own and lb2's); in transition: negotiating resources with the peer");
    expect(statusLines(status({ hold: 'none' }))[0]).toBe('lb1 is standby: holds no resources; settled');
    expect(lines[3]).toBe('peer lb2: active, heard 120 ms ago (deadtime 10000 ms), holds its own resources (home lb2), generation 3');
    expect(lines[4]).toBe("SPLIT BRAIN: both lb1 and lb2 hold lb2's resources; one of them must release");
    expect(lines.at(-2)).toBe('packets: received 10, accepted 9, sent 11, resent 0, lost 1; dropped: badAuth 4 (and 9 of our own broadcasts heard back, normal with bcast)');
  });

  test('whose resources a hold covers, from the holder\'s side; a dead peer holds nothing', () => {
    expect(homesHeld('local', 'lb2', 'lb1')).toEqual(['lb2']);
    expect(homesHeld('foreign', 'lb2', 'lb1')).toEqual(['lb1']);
    expect(homesHeld('all', 'lb1', 'lb2')).toEqual(['lb1', 'lb2']);
    expect(homesHeld('none', 'lb1', 'lb2')).toEqual([]);
    expect(doublyHeld(status({ hold: 'local', peerHolds: 'foreign' }))).toEqual(['lb1']);
    expect(doublyHeld(status({ hold: 'local', peerHolds: 'foreign', peerStatus: 'dead' }))).toEqual([]);
    expect(doublyHeld(status({ hold: 'local', peerHolds: 'local' }))).toEqual([]);
  });
});

describe('HA families of /metrics', () => {
  test('role, holder, peer, last heard and dropped packets by reason, as Prometheus text', () => {
    const text = prometheusText(haMetrics(status({ hold: 'foreign', peerHolds: 'none', peerStatus: 'dead', dropped: { badAuth: 4 } })));
    for (const line of [
      'tsbal_ha_up 1',
      'tsbal_ha_node_info{node="lb1",peer="lb2",status="active"} 1',
      'tsbal_ha_active 1',
      'tsbal_ha_holds_resources{home="lb1"} 0',
      'tsbal_ha_holds_resources{home="lb2"} 1',
      'tsbal_ha_peer_holds_resources{peer="lb2",home="lb1"} 0',
      'tsbal_ha_split_brain 0',
      'tsbal_ha_resource_up{resource="IPaddr::198.18.0.99/24/eth0"} 1',
      'tsbal_ha_peer_up{peer="lb2",status="dead"} 0',
      'tsbal_ha_peer_last_heard_seconds{peer="lb2"} 0.12',
      'tsbal_ha_peer_deadtime_seconds{peer="lb2"} 10',
      'tsbal_ha_ping_node_up{target="198.18.0.254"} 1',
      'tsbal_ha_peer_deaths_total 2',
      'tsbal_ha_packets_dropped_total{reason="badAuth"} 4',
      'tsbal_ha_packets_dropped_total{reason="malformed"} 0',
      '# TYPE tsbal_ha_packets_dropped_total counter',
    ]) {
      expect(text.split('\n')).toContain(line);
    }
    expect(prometheusText(haMetrics(status({ hold: 'local', peerHolds: 'foreign' })))).toContain('\ntsbal_ha_split_brain 1\n');
  });

  test('an engine that does not answer within the timeout is tsbal_ha_up 0, and the scrape does not wait for it', async () => {
    const t0 = performance.now();
    const families = await scrapeHa(() => new Promise(() => {}), 50);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(prometheusText(families)).toBe('# HELP tsbal_ha_up Whether the HA engine answered this scrape (1) or not within 1 s (0).\n# TYPE tsbal_ha_up gauge\ntsbal_ha_up 0\n');
    expect(prometheusText(await scrapeHa(() => Promise.reject(new Error('gone')), 50))).toContain('\ntsbal_ha_up 0\n');
  });
});
