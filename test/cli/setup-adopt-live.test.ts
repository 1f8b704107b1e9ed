// The migration docs/setup.md describes, for real: a pair running the classic recipe (real heartbeat 3.0.6 and Debian's
// Perlbal on both nodes, started from rc.local), `tsbal setup --adopt` on lb2 (the standby), then on lb1 (the home
// node), under a bounded client loop against the VIP; then `--adopt --undo` on lb2 puts the recipe back. Each host
// has its own /etc, /var/lib, /run and /var/log (test/harness/recipehost.ts), so adopt acts as on a live system.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { haTimeMs, type HaSettings, type LbHost } from '../harness/hacluster.ts';
import { prepareHeartbeatLab, type HeartbeatLab } from '../harness/heartbeat.ts';
import { createLab, type Lab } from '../harness/netns.ts';
import { waitForSoleHolder, waitServing } from '../harness/pair.ts';
import { waitFor, wallNow } from '../harness/proc.ts';
import { createRecipeHost, RECIPE_RC_LOCAL, type RecipeHost } from '../harness/recipehost.ts';
import { startBackends, startClientLoop, type Backends, type ClientRecord } from '../harness/web.ts';

const settings: HaSettings = { keepalive: '100ms', deadtime: '500ms', initdead: '1', autoFailback: 'on', preferred: 'lb1' };
/** One failover's worth of failed requests: a crash failover to a tsbal survivor is bounded by deadtime + 300 ms (test/ha/e2e/mixed-cluster.test.ts). */
const ONE_FAILOVER_MS = haTimeMs(settings.deadtime) + 300;
const INTERVAL_MS = 20;

let lab: Lab | null = null;
let backends: Backends | null = null;
let hbLab: HeartbeatLab | null = null;
const hosts = {} as Record<LbHost, RecipeHost>;

beforeAll(async () => {
  lab = await createLab();
  backends = await startBackends(lab);
  hbLab = await prepareHeartbeatLab();
  for (const h of ['lb1', 'lb2'] as const) hosts[h] = await createRecipeHost(lab, hbLab, h, settings);
  await hosts.lb1.boot();
  await waitForSoleHolder(lab, 'lb1', 15_000);
  await hosts.lb2.boot();
  await heartbeatSaw(hosts.lb2, /Comm_now_up\(\)/, 15_000);
  await waitServing(lab, 5_000);
}, 60_000);

afterAll(async () => {
  await lab?.teardown();
  backends?.stop();
  await hbLab?.remove();
});

async function heartbeatSaw(host: RecipeHost, pattern: RegExp, timeoutMs: number): Promise<void> {
  await waitFor(`heartbeat on ${host.host} to log ${pattern}`, () => (pattern.test(readFileSync(join(host.dir, 'ha-log'), 'utf8')) ? true : undefined), {
    timeoutMs,
    intervalMs: 100,
    describe: () => host.logs(),
  });
}

/** tsbal on the host runs and has the peer: `tsbal ha status --json` says comm up, peer active. */
async function tsbalJoined(host: RecipeHost, timeoutMs: number): Promise<void> {
  let last = '';
  await waitFor(`tsbal on ${host.host} to join`, async () => {
    const r = await host.exec([host.tsbal, 'ha', 'status', '--json'], 10_000);
    last = `${r.stdout}${r.stderr}`;
    if (r.code !== 0) return undefined;
    const s = JSON.parse(r.stdout) as { commUp: boolean; peer: { status: string } };
    return s.commUp && s.peer.status === 'active' ? true : undefined;
  }, { timeoutMs, intervalMs: 200, describe: async () => `${last}\n${await host.logs()}` });
}

async function adopt(host: RecipeHost, ...extra: string[]): Promise<string> {
  const r = await host.exec([host.tsbal, 'setup', '--adopt', '--init', 'rc.local', '--exec', host.tsbal, ...extra], 90_000);
  expect(r.code, `adopt on ${host.host}: exit ${r.code}\n${r.stdout}${r.stderr}\n${await host.logs()}`).toBe(0);
  return r.stdout;
}

const failed = (records: readonly ClientRecord[], from: number, to: number): ClientRecord[] => records.filter((r) => !r.ok && r.s >= from && r.s < to);
const describeFailures = (list: readonly ClientRecord[]): string =>
  `${list.length} failed: ${list.slice(0, 5).map((r) => JSON.stringify(r)).join(' ')}${list.length > 5 ? ' ...' : ''}`;

describe('migrating a live Perlbal + heartbeat pair with tsbal setup --adopt', () => {
  test('lb2 then lb1: files kept byte for byte, daemons replaced, no failed request beyond one failover\'s worth', async () => {
    const before = Object.fromEntries((['lb1', 'lb2'] as const).map((h) => [h, ['ha.cf', 'authkeys', 'haresources'].map((f) => readFileSync(join(hosts[h].dir, 'etc-ha.d', f), 'utf8')).join('\0') + readFileSync(join(hosts[h].dir, 'etc-up/perlbal/perlbal.conf'), 'utf8')]));
    const client = await startClientLoop(lab!, { intervalMs: INTERVAL_MS, timeoutMs: 300, maxDurationMs: 110_000, maxRequests: 5_500 });
    let records: readonly ClientRecord[] = [];
    try {
      expect(await client.firstSuccessSince(0, 3_000)).not.toBeNull();
      const t0 = wallNow();
      const out2 = await adopt(hosts.lb2);
      expect(out2).toContain('found        /etc/rc.local: /usr/libexec/heartbeat/heartbeat');
      expect(out2).toContain('ran          /usr/local/bin/tsbal'.replace('/usr/local/bin/tsbal', hosts.lb2.tsbal));
      await tsbalJoined(hosts.lb2, 20_000);
      // The peer still on heartbeat sees the same node come back.
      await heartbeatSaw(hosts.lb1, /Status update for node lb2: status active/, 10_000);
      const t1 = wallNow();
      await adopt(hosts.lb1);
      await tsbalJoined(hosts.lb1, 20_000);
      await waitForSoleHolder(lab!, 'lb1', 20_000);
      await waitServing(lab!, 3_000);
      const t2 = wallNow();
      // Let requests started before t2 finish.
      await new Promise((r) => setTimeout(r, 500));
      records = await client.stop();
      const phase1 = failed(records, t0, t1);
      const phase2 = failed(records, t1, t2);
      const ok = records.filter((r) => r.ok && r.s >= t0 && r.s < t2).length;
      console.log(`adopt lb2: ${((t1 - t0) / 1000).toFixed(1)} s, ${phase1.length} failed; adopt lb1: ${((t2 - t1) / 1000).toFixed(1)} s, ${phase2.length} failed; ${ok} ok`);
      // lb1 holds the VIP while lb2 changes: not one request may fail.
      expect(phase1, describeFailures(phase1)).toEqual([]);
      // lb1's own adoption hands the VIP to lb2 and takes it back: together no more than one failover's worth.
      expect(phase2.length * INTERVAL_MS, describeFailures(phase2)).toBeLessThanOrEqual(ONE_FAILOVER_MS);
      expect(ok).toBeGreaterThan(((t2 - t0) / INTERVAL_MS) * 0.5);
    } finally {
      if (records.length === 0) await client.stop();
    }
    for (const h of ['lb1', 'lb2'] as const) {
      const now = ['ha.cf', 'authkeys', 'haresources'].map((f) => readFileSync(join(hosts[h].dir, 'etc-ha.d', f), 'utf8')).join('\0') + (await hosts[h].exec(['cat', '/etc/perlbal/perlbal.conf'])).stdout;
      expect(now, h).toBe(before[h]!);
      const rc = (await hosts[h].exec(['cat', '/etc/rc.local'])).stdout;
      expect(rc, h).toContain('# tsbal adopt: /usr/libexec/heartbeat/heartbeat\n# tsbal adopt: perlbal --daemon');
      // The machine is shared: only the processes in this host's network namespace are its own.
      const comms = (await lab!.pids(h)).map((pid) => {
        try {
          return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } catch {
          return '';
        }
      });
      expect(comms.filter((c) => c === 'heartbeat' || c === 'perlbal'), h).toEqual([]);
    }
  }, 150_000);

  test('--adopt --undo on lb2 brings heartbeat and Perlbal back from rc.local while lb1 serves', async () => {
    const client = await startClientLoop(lab!, { intervalMs: INTERVAL_MS, timeoutMs: 300, maxDurationMs: 60_000, maxRequests: 3_000 });
    let records: readonly ClientRecord[] = [];
    try {
      const t0 = wallNow();
      const r = await hosts.lb2.exec([hosts.lb2.tsbal, 'setup', '--adopt', '--undo'], 60_000);
      expect(r.code, `${r.stdout}${r.stderr}\n${await hosts.lb2.logs()}`).toBe(0);
      expect((await hosts.lb2.exec(['cat', '/etc/rc.local'])).stdout).toBe(RECIPE_RC_LOCAL);
      await heartbeatSaw(hosts.lb2, /Comm_now_up\(\)[\s\S]*Comm_now_up\(\)/, 20_000);
      await tsbalJoined(hosts.lb1, 20_000);
      const t1 = wallNow();
      records = await client.stop();
      expect(failed(records, t0, t1), describeFailures(failed(records, t0, t1))).toEqual([]);
    } finally {
      if (records.length === 0) await client.stop();
    }
  }, 90_000);
});
