// Heartbeat's active/active without a BGP router: two resource groups in haresources, one home on each node
// (`lb1 IPaddr::VIP1`, `lb2 IPaddr::VIP2`), each VIP served by its own service, DNS round robin in front. Each node
// holds its own; when one dies the survivor holds both and serves both; when it returns each VIP goes home.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { HaStatus } from '../../../src/ha/cluster.ts';
import { type HaSettings, type LbHost } from '../../harness/hacluster.ts';
import { LAB_ADDRESSES, LAB_VIP, type Lab } from '../../harness/netns.ts';
import { createPair, otherHost, waitJoined, type HaPair } from '../../harness/pair.ts';
import { waitFor } from '../../harness/proc.ts';
import { BACKEND_PORT } from '../../harness/web.ts';

const VIP: Readonly<Record<LbHost, string>> = { lb1: LAB_VIP, lb2: '198.18.0.98' };

const settings: HaSettings = {
  keepalive: '100ms',
  deadtime: '500ms',
  initdead: '1',
  autoFailback: 'on',
  preferred: 'lb1',
  resources: [`lb1 IPaddr::${VIP.lb1}/24/eth0`, `lb2 IPaddr::${VIP.lb2}/24/eth0`],
};

/** One service per VIP, both on the same pool: each node listens on both (ip_nonlocal_bind is on in the lab). */
const perlbalConf = [
  'CREATE POOL webs',
  `  POOL webs ADD ${LAB_ADDRESSES.web1}:${BACKEND_PORT}`,
  `  POOL webs ADD ${LAB_ADDRESSES.web2}:${BACKEND_PORT}`,
  '',
  ...(['lb1', 'lb2'] as const).flatMap((home) => [
    `CREATE SERVICE www_${home}`,
    `  SET listen          = ${VIP[home]}:80`,
    '  SET role            = reverse_proxy',
    '  SET pool            = webs',
    `ENABLE www_${home}`,
    '',
  ]),
].join('\n');

/** Who holds each VIP now, as `VIP1@lb1 VIP2@lb2` (`nobody`, or `lb1+lb2` for a double holder). */
async function placement(lab: Lab): Promise<string> {
  const parts: string[] = [];
  for (const home of ['lb1', 'lb2'] as const) parts.push(`${VIP[home]}@${(await lab.holders(VIP[home])).join('+') || 'nobody'}`);
  return parts.join(' ');
}

const expected = (holder1: LbHost, holder2: LbHost): string => `${VIP.lb1}@${holder1} ${VIP.lb2}@${holder2}`;

async function waitPlacement(pair: HaPair, want: string, timeoutMs: number): Promise<void> {
  let last = '';
  await waitFor(`VIPs placed as ${want}`, async () => ((last = await placement(pair.lab)) === want ? true : undefined), {
    timeoutMs,
    intervalMs: 20,
    describe: async () => `${last}\n--- lb1 log:\n${(await pair.nodes.lb1.log()).slice(-2_000)}\n--- lb2 log:\n${(await pair.nodes.lb2.log()).slice(-2_000)}`,
  });
}

/** One GET to `vip` from the client namespace; the backend's name, or null when it failed. */
async function fetchFrom(lab: Lab, vip: string): Promise<string | null> {
  const r = await lab.exec('client', ['curl', '-s', '-f', '-m', '0.5', `http://${vip}/`], { timeoutMs: 3_000 });
  return r.code === 0 ? r.stdout.trim() : null;
}

/** Both VIPs answer (bounded: 2 s each). */
async function bothServed(lab: Lab): Promise<void> {
  for (const vip of [VIP.lb1, VIP.lb2]) {
    const backend = await waitFor(`an answer on ${vip}`, async () => (await fetchFrom(lab, vip)) ?? undefined, { timeoutMs: 2_000, intervalMs: 50 });
    expect(backend).toMatch(/^web[12]$/);
  }
}

/**
 * A host crash as the pair harness makes it, plus the second VIP: a dead host answers for neither address (the
 * harness removes only the lab's usual VIP).
 */
async function crash(pair: HaPair, host: LbHost): Promise<void> {
  await pair.nodes[host].crash();
  await pair.lab.exec(host, ['ip', 'addr', 'del', `${VIP.lb2}/24`, 'dev', 'eth0']);
}

/** What a tsbal node says it holds, and what it says its peer holds (`tsbal ha status --json`). */
async function holdings(pair: HaPair, host: LbHost): Promise<{ hold: string; up: number; peerHolds: string }> {
  const node = pair.nodes[host];
  if (node.impl !== 'tsbal') throw new Error(`${host} is not tsbal`);
  const r = await node.ha('status', ['--json']);
  const status = JSON.parse(r.stdout) as Pick<HaStatus, 'resources' | 'peer'>;
  return { hold: status.resources.hold, up: status.resources.up.length, peerHolds: status.peer.holds };
}

let pair: HaPair;
beforeAll(async () => {
  pair = await createPair({ lb1: 'tsbal', lb2: 'tsbal' }, settings, { perlbalConf });
  await pair.nodes.lb1.start();
  await pair.nodes.lb2.start();
  await waitJoined(pair.nodes.lb2, 10_000);
}, 60_000);
afterAll(async () => {
  await pair?.dispose();
}, 30_000);

describe('active/active: one VIP home on each node (heartbeat haresources, no router)', () => {
  test('each node holds its own VIP, and both VIPs are served', async () => {
    await waitPlacement(pair, expected('lb1', 'lb2'), 5_000);
    await bothServed(pair.lab);
    // Each says so: its own group up, the peer holding its own.
    for (const host of ['lb1', 'lb2'] as const) {
      const said = await waitFor(`${host} settled`, async () => {
        const h = await holdings(pair, host);
        return h.peerHolds === 'local' ? h : undefined;
      }, { timeoutMs: 3_000, intervalMs: 100 });
      expect(said).toEqual({ hold: 'local', up: 1, peerHolds: 'local' });
    }
  }, 20_000);

  for (const victim of ['lb1', 'lb2'] as const) {
    const survivor = otherHost(victim);
    test(`${victim} dies: ${survivor} holds and serves both; ${victim} returns: each VIP goes home`, async () => {
      await waitPlacement(pair, expected('lb1', 'lb2'), 5_000);
      await crash(pair, victim);
      // deadtime 500 ms, plus the takeover; bounded generously for a loaded 2-core machine.
      await waitPlacement(pair, expected(survivor, survivor), 5_000);
      await bothServed(pair.lab);
      expect(await holdings(pair, survivor)).toMatchObject({ hold: 'all', up: 2 });
      await pair.nodes[victim].start();
      await waitJoined(pair.nodes[victim], 10_000);
      await waitPlacement(pair, expected('lb1', 'lb2'), 10_000);
      await bothServed(pair.lab);
      // Settled: neither VIP ever sits on both nodes, nor moves again.
      for (let i = 0; i < 10; i++) {
        expect(await placement(pair.lab)).toBe(expected('lb1', 'lb2'));
        await Bun.sleep(50);
      }
    }, 40_000);
  }
});
