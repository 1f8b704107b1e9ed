// Dropped heartbeat packets are counted one by one but logged a few at a time (issue 14: 50k garbage datagrams wrote
// 49,283 log lines), and a peer whose authkeys differ is named as such in the log, the status and the metrics.
import { describe, expect, test } from 'bun:test';
import { DROP_LOG_FIRST, DROP_LOG_MAX_SOURCES, DROP_SUMMARY_MS, dropSummary, newDropLog, noteDrop } from '../../src/ha/droplog.ts';
import { encodePacket } from '../../src/ha/wire.ts';
import { haMetrics } from '../../src/ha/metrics.ts';
import { formatStatus } from '../../src/cli/ha.ts';
import { Sim } from './sim.ts';

describe('droplog (pure)', () => {
  test('the first few per reason and sender are logged, the rest summed up once per interval, then forgotten when quiet', () => {
    const d = newDropLog();
    const lines: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const l = noteDrop(d, 1000 + i, 'malformed', '10.0.0.1', `bad ${i}`);
      if (l) lines.push(l);
    }
    expect(lines.length).toBe(DROP_LOG_FIRST);
    expect(lines.at(-1)).toContain('are counted and summed up every 10 s');
    expect(dropSummary(d, 1000 + DROP_SUMMARY_MS - 1)).toEqual([]);
    expect(dropSummary(d, 1000 + DROP_SUMMARY_MS)).toEqual([`dropped ${1000 - DROP_LOG_FIRST} more packet(s) from 10.0.0.1 in the last 10 s: malformed (1000 since first seen)`]);
    // A quiet interval: no line, and the sender is forgotten, so its next drop is logged in full again.
    expect(dropSummary(d, 1000 + 2 * DROP_SUMMARY_MS)).toEqual([]);
    expect(d.summaryAt).toBeNull();
    expect(noteDrop(d, 1000 + 2 * DROP_SUMMARY_MS + 1, 'malformed', '10.0.0.1', 'again')).toBe('again');
  });

  test('spoofed senders share one entry beyond the cap: lines stay bounded whatever the sources', () => {
    const d = newDropLog();
    let lines = 0;
    for (let i = 0; i < 10_000; i++) if (noteDrop(d, 0, 'badAuth', `10.0.${i >> 8}.${i & 255}`, 'x')) lines++;
    expect(d.entries.size).toBe(DROP_LOG_MAX_SOURCES + 1);
    // One line for each of the first senders (each sent once), then the first few of all the others together.
    expect(lines).toBe(DROP_LOG_MAX_SOURCES + DROP_LOG_FIRST);
    expect(dropSummary(d, DROP_SUMMARY_MS).length).toBe(1);
  });
});

describe('a node under a flood of bad packets', () => {
  test('50k garbage datagrams from one address: a handful of log lines, every one counted', () => {
    const sim = new Sim();
    sim.start('lb1');
    sim.start('lb2');
    sim.run(2000);
    const before = sim.get('lb1').logs.length;
    const garbage = new TextEncoder().encode('###\nnot a heartbeat\n%%%\n');
    for (let i = 0; i < 50_000; i++) sim.inject('lb1', garbage);
    sim.run(2 * DROP_SUMMARY_MS + 100);
    const lines = sim.get('lb1').logs.slice(before).filter((l) => l.level === 'warn');
    expect(lines.length).toBeLessThanOrEqual(DROP_LOG_FIRST + 1);
    expect(lines.at(-1)!.msg).toBe(`dropped ${50_000 - DROP_LOG_FIRST} more packet(s) from 198.18.0.250 in the last 10 s: malformed (50000 since first seen)`);
    expect(sim.report('lb1').counters.dropped.malformed).toBe(50_000);
    expect(sim.holder()).toEqual(['lb1']);
  });

  test('replays of one valid packet: "already seen" is logged 3 times, not once per copy', () => {
    const sim = new Sim();
    sim.start('lb1');
    sim.start('lb2');
    sim.run(2000);
    const old = sim.get('lb2').sent.find((s) => s.type === 'status')!.bytes;
    const before = sim.get('lb1').logs.length;
    for (let i = 0; i < 1000; i++) sim.inject('lb1', old);
    sim.run(100);
    const seen = sim.get('lb1').logs.slice(before).filter((l) => l.msg.includes('already seen'));
    expect(seen.length).toBe(DROP_LOG_FIRST);
    expect(sim.report('lb1').counters.dropped.oldSeq).toBe(1000);
  });
});

describe('mismatched keys', () => {
  test('the log names the peer and its address and says the authkeys differ; status and metrics show it', () => {
    const sim = new Sim();
    const other = { index: 1, method: 'sha1' as const, key: 'NotTheSame' };
    sim.start('lb1');
    sim.start('lb2', { authKey: other, keys: [other] });
    sim.run(5000);
    expect(sim.holder()).toEqual(['lb1', 'lb2']);
    const lines = sim.get('lb1').logs.filter((l) => l.msg.includes('authentication failed'));
    expect(lines.length).toBeLessThanOrEqual(DROP_LOG_FIRST + 1);
    expect(lines[0]!.msg).toBe(
      'dropped packet from lb2 (lb2): authentication failed (bad-digest, signed with another key): the authkeys of lb1 and lb2 differ; make /etc/ha.d/authkeys the same on both nodes',
    );
    const r = sim.report('lb1');
    expect(r.peer.keysDiffer).toBe(true);
    expect(r.peer.authFailures).toMatchObject({ address: 'lb2', reason: 'bad-digest' });
    expect(r.peer.authFailures!.count).toBeGreaterThan(30);
    const text = formatStatus({ ...r, media: [], heartbeatLag: { samples: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 }, thread: 'main', muted: false });
    expect(text).toContain('peer lb2: KEYS DIFFER: its packets from lb2 fail authentication (bad-digest,');
    const m = haMetrics({ ...r, media: [], heartbeatLag: { samples: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 }, thread: 'main', muted: false });
    expect(m.find((f) => f.name === 'tsbal_ha_peer_keys_differ')!.samples).toEqual([{ labels: { peer: 'lb2' }, value: 1 }]);
    expect(m.find((f) => f.name === 'tsbal_ha_peer_auth_failures_total')!.samples[0]!.value).toBe(r.peer.authFailures!.count);
  });

  test('another key index (auth 2 on one side) is named as such', () => {
    const sim = new Sim();
    const two = { index: 2, method: 'sha1' as const, key: 'LabSecret42' };
    sim.start('lb1');
    sim.start('lb2', { authKey: two, keys: [two] });
    sim.run(3000);
    expect(sim.get('lb1').logs.find((l) => l.msg.includes('authentication failed'))!.msg).toContain('(unknown-key, signed with a key index our authkeys does not have)');
  });

  test('once the keys match, keys_differ goes back to 0', () => {
    const sim = new Sim();
    const other = { index: 1, method: 'sha1' as const, key: 'NotTheSame' };
    sim.start('lb1');
    sim.start('lb2', { authKey: other, keys: [other] });
    sim.run(3000);
    sim.kill('lb2');
    sim.start('lb2');
    sim.run(3000);
    expect(sim.report('lb1').peer.keysDiffer).toBe(false);
    expect(sim.holder()).toEqual(['lb1']);
  });

  test('a packet signed with another key that names some other sender is not blamed on the peer', () => {
    const sim = new Sim();
    sim.start('lb1');
    sim.start('lb2');
    sim.run(2000);
    const bytes = encodePacket([{ name: 't', type: 0, value: 'status' }, { name: 'src', type: 0, value: 'mallory' }], { index: 1, method: 'sha1', key: 'x' }, { innerAuth: false });
    sim.inject('lb1', bytes);
    expect(sim.get('lb1').logs.at(-1)!.msg).toBe("dropped packet from 198.18.0.250 (claims to be 'mallory'): authentication failed (bad-digest)");
    expect(sim.report('lb1').peer.keysDiffer).toBe(false);
  });
});
