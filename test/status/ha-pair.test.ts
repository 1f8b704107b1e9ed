// `tsbal status` on a real pair of tsbal nodes in the namespace lab: this node's role, the peer and when it was
// heard, the VIP and who holds it, through a crash of the VIP's home and its return (auto_failback on), with the peer
// dying and the VIP moving kept as transitions.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { HaSummary, StatusSnapshot } from '../../src/status/snapshot.ts';
import { runTsbal } from '../harness/cli.ts';
import type { HaSettings } from '../harness/hacluster.ts';
import { LAB_ADDRESSES, LAB_VIP } from '../harness/netns.ts';
import { createPair, waitForSoleHolder, waitJoined, waitServing, type HaPair } from '../harness/pair.ts';
import { waitFor } from '../harness/proc.ts';
import type { TsbalNode } from '../harness/tsbalnode.ts';

const settings: HaSettings = { keepalive: '100ms', deadtime: '500ms', initdead: '1', autoFailback: 'on', preferred: 'lb1' };
let pair: HaPair;

beforeAll(async () => {
  pair = await createPair({ lb1: 'tsbal', lb2: 'tsbal' }, settings);
}, 30_000);
afterAll(async () => {
  await pair?.dispose();
});

async function status(node: TsbalNode): Promise<StatusSnapshot> {
  const r = await runTsbal(['status', '--json', '--state-dir', node.stateDir]);
  if (r.code !== 0) throw new Error(`tsbal status on ${node.host} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusSnapshot;
}

function haOf(s: StatusSnapshot): HaSummary {
  if (s.ha === null || 'error' in s.ha) throw new Error(`no HA in the status: ${JSON.stringify(s.ha)}`);
  return s.ha;
}

/** Polls `tsbal status` on `node` until `ok` holds (10 s at most). */
function statusWhere(node: TsbalNode, what: string, ok: (s: StatusSnapshot) => boolean): Promise<StatusSnapshot> {
  let last: StatusSnapshot | null = null;
  return waitFor(
    `${node.host}: ${what}`,
    async () => {
      last = await status(node);
      return ok(last) ? last : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 100, describe: () => JSON.stringify(last?.ha ?? null) },
  );
}

describe('tsbal status on an HA pair', () => {
  test('role, peer, VIP holder and the backends, through a crash of the VIP home and its return', async () => {
    const lb1 = pair.nodes.lb1 as TsbalNode;
    const lb2 = pair.nodes.lb2 as TsbalNode;
    await lb1.start();
    await waitForSoleHolder(pair.lab, 'lb1', 5_000);
    await lb2.start();
    await waitJoined(lb2, 5_000);
    await waitServing(pair.lab, 5_000);

    const s1 = await statusWhere(lb1, 'peer lb2 active', (s) => haOf(s).peer.status === 'active');
    const ha1 = haOf(s1);
    expect([ha1.node, ha1.role, ha1.state, ha1.vips, ha1.splitBrain]).toEqual(['lb1', 'active', 'settled', [{ address: `${LAB_VIP}/24 on eth0`, home: 'lb1', holder: 'lb1' }], []]);
    expect(ha1.peer.heardMsAgo).toBeLessThan(500);
    expect(s1.services[0]).toMatchObject({ name: 'balancer', listen: `${LAB_VIP}:80`, listening: 'listening' });
    expect(s1.services[0]!.backends.map((b) => [b.address, b.health])).toEqual([
      [`${LAB_ADDRESSES.web1}:80`, 'up'],
      [`${LAB_ADDRESSES.web2}:80`, 'up'],
    ]);
    const s2 = await status(lb2);
    expect([haOf(s2).role, haOf(s2).vips[0]!.holder]).toEqual(['standby', 'lb1']);

    // lb1 crashes: lb2 sees it dead, takes the VIP, serves, and keeps both as transitions.
    await lb1.crash();
    await waitForSoleHolder(pair.lab, 'lb2', 5_000);
    const after = await statusWhere(lb2, 'VIP held here', (s) => haOf(s).vips[0]!.holder === 'lb2');
    expect([haOf(after).role, haOf(after).peer.status]).toEqual(['active', 'dead']);
    const texts = after.transitions.filter((t) => t.source === 'ha').map((t) => t.text);
    expect(texts).toContainEqual(expect.stringMatching(/^node lb1: is dead/));
    expect(texts).toContainEqual(expect.stringMatching(new RegExp(`^acquired IPaddr::${LAB_VIP.replace(/\./g, '\\.')}`)));
    const plain = await runTsbal(['status', '--state-dir', lb2.stateDir]);
    expect(plain.stdout).toContain(`vip: ${LAB_VIP}/24 on eth0: held by lb2 (this node), home lb1`);
    expect(plain.stdout).toMatch(/peer: lb1 dead, /);

    // lb1 back: it takes the VIP back (auto_failback on); lb2 says who holds it and that it released it.
    await lb1.start();
    await waitForSoleHolder(pair.lab, 'lb1', 10_000);
    const back = await statusWhere(lb2, 'VIP back on lb1', (s) => haOf(s).vips[0]!.holder === 'lb1' && haOf(s).role === 'standby');
    expect(back.transitions.map((t) => t.text)).toContainEqual(expect.stringMatching(/^released /));
    expect(haOf(await status(lb1)).vips[0]!.holder).toBe('lb1');
  }, 60_000);
});
