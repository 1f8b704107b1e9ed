// /metrics of a real `tsbal run` with the HA engine, two tsbal nodes in the namespace lab: the families an admin alerts
// on follow the cluster (lb1 holds its VIP, the peer is heard; garbage on UDP 694 is counted by reason; the peer
// crashes and is dead), and `tsbal ha status` says the same in words. The same lab also shows a second `tsbal run` on
// lb1 (its listener on another port, so no bind collides) refused as `tsbal is already running` by the HA socket.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LAB_UDP_PORT, type HaSettings } from '../harness/hacluster.ts';
import { LAB_ADDRESSES, LAB_VIP } from '../harness/netns.ts';
import { createPair, waitForSoleHolder, waitJoined, type HaPair } from '../harness/pair.ts';
import { waitFor } from '../harness/proc.ts';
import { CLI_ENTRY } from '../harness/cli.ts';
import type { TsbalNode } from '../harness/tsbalnode.ts';

const settings: HaSettings = { keepalive: '100ms', deadtime: '500ms', initdead: '1', autoFailback: 'on', preferred: 'lb1' };
const MGMT = '127.0.0.1:60000';
let pair: HaPair | null = null;

beforeAll(async () => {
  pair = await createPair({ lb1: 'tsbal', lb2: 'tsbal' }, settings);
  const lb1 = pair.nodes.lb1 as TsbalNode;
  await appendFile(join(lb1.dir, 'perlbal.conf'), `\nCREATE SERVICE mgmt\n  SET role = management\n  SET listen = ${MGMT}\nENABLE mgmt\n`);
  await lb1.start();
  await waitForSoleHolder(pair.lab, 'lb1', 10_000);
  await pair.nodes.lb2.start();
  await waitJoined(pair.nodes.lb2, 10_000);
}, 60_000);

afterAll(async () => {
  await pair?.dispose();
}, 30_000);

async function scrape(): Promise<Map<string, number>> {
  const r = await pair!.lab.exec('lb1', ['curl', '-s', '-m', '3', `http://${MGMT}/metrics`], { timeoutMs: 5_000 });
  const samples = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(tsbal_ha_\S+) (\S+)$/.exec(line);
    if (m) samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

async function waitSample(name: string, accept: (v: number | undefined) => boolean): Promise<Map<string, number>> {
  let last = new Map<string, number>();
  return waitFor(`${name} to change`, async () => ((last = await scrape()), accept(last.get(name)) ? last : undefined), {
    timeoutMs: 5_000,
    intervalMs: 100,
    describe: () => [...last].map(([k, v]) => `${k} ${v}`).join('\n'),
  });
}

describe('HA state in /metrics of tsbal run', () => {
  test('holder, peer, last heard and dropped packets follow the cluster; a crashed peer shows dead', async () => {
    const lab = pair!.lab;
    const m = await scrape();
    expect(Object.fromEntries([...m].filter(([k]) => !/last_heard|packets_(received|accepted|sent|lost|resent)/.test(k)))).toMatchObject({
      tsbal_ha_up: 1,
      tsbal_ha_active: 1,
      'tsbal_ha_node_info{node="lb1",peer="lb2",status="active"}': 1,
      'tsbal_ha_holds_resources{home="lb1"}': 1,
      'tsbal_ha_holds_resources{home="lb2"}': 0,
      'tsbal_ha_peer_holds_resources{peer="lb2",home="lb1"}': 0,
      tsbal_ha_split_brain: 0,
      [`tsbal_ha_resource_up{resource="IPaddr::${LAB_VIP}/24/eth0"}`]: 1,
      'tsbal_ha_peer_up{peer="lb2",status="active"}': 1,
      'tsbal_ha_peer_deadtime_seconds{peer="lb2"}': 0.5,
      'tsbal_ha_packets_dropped_total{reason="malformed"}': 0,
    });
    expect(m.get('tsbal_ha_peer_last_heard_seconds{peer="lb2"}')).toBeLessThan(0.5);

    // Garbage on the heartbeat port, from the client's namespace: counted by reason.
    const garbage = await lab.exec('client', ['bash', '-c', `printf 'not a heartbeat' > /dev/udp/${LAB_ADDRESSES.lb1}/${LAB_UDP_PORT}`]);
    expect(garbage.code).toBe(0);
    await waitSample('tsbal_ha_packets_dropped_total{reason="malformed"}', (v) => v === 1);

    await pair!.nodes.lb2.crash();
    const after = await waitSample('tsbal_ha_peer_up{peer="lb2",status="dead"}', (v) => v === 0);
    // One more death than before (lb1, started alone, had already declared the silent lb2 dead at initdead).
    expect(after.get('tsbal_ha_peer_deaths_total')).toBe(m.get('tsbal_ha_peer_deaths_total')! + 1);
    expect(after.get('tsbal_ha_holds_resources{home="lb1"}')).toBe(1);
    expect(after.get('tsbal_ha_active')).toBe(1);

    const status = await (pair!.nodes.lb1 as TsbalNode).ha('status');
    // With lb2 dead, lb1 takes over lb2's groups too (none in this haresources): it holds all.
    expect(status.stdout).toContain("lb1 is active: holds all resources (its own and lb2's); settled");
    expect(status.stdout).toMatch(/\npeer lb2: dead, heard \d+ ms ago \(deadtime 500 ms\), holds no resources/);
  }, 30_000);
});

describe('a second tsbal run on a node', () => {
  test('whose ports do not collide is refused by the HA control socket as: tsbal is already running (pid N)', async () => {
    const lb1 = pair!.nodes.lb1 as TsbalNode;
    const conf = join(lb1.dir, 'second.conf');
    await writeFile(conf, `CREATE SERVICE web\n  SET listen = 127.0.0.1:18080\n  SET role = web_server\n  SET docroot = ${lb1.dir}\nENABLE web\n`);
    const r = await pair!.lab.exec('lb1', [process.execPath, CLI_ENTRY, 'run', '-c', conf, '--ha-dir', lb1.haDir, '--node', 'lb1', '--state-dir', lb1.stateDir], { timeoutMs: 15_000 });
    const m = /tsbal: tsbal is already running \(pid (\d+), its HA engine answers on (\S+)\); stop it first/.exec(r.stderr);
    expect([r.code, m?.[2]], r.stderr).toEqual([1, join(lb1.stateDir, 'ha.sock')]);
    expect(await pair!.lab.pids('lb1')).toContain(Number(m![1]));
  }, 30_000);
});
