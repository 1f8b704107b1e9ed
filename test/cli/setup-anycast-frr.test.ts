// Issue 16's test 7: the frr.conf and daemons that `tsbal setup --anycast --root` writes are the ones a node runs.
// Two network namespaces joined by a veth: `router` (FRR, ASN 65000, configured as the router side setup prints) and
// `lb` (FRR started on exactly the files setup wrote, the Debian package's daemons file edited by setup). The BGP
// session and its BFD come up; the router learns 198.18.2.1/32 only while the address is on the ifb vip0 (not its
// copy on lo, nor any other connected route of the node), and forgets it when it leaves vip0.
// FRR runs per namespace with its own pathspace (/etc/frr/NS, /var/run/frr/NS), as in ../shared/reference/frr-ecmp.md.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY } from '../harness/cli.ts';
import { execProc, sleep, waitFor, type ExecResult } from '../harness/proc.ts';
import { mergeFrrDaemons } from '../../src/setup/frr.ts';
import { inNamespace, installFrrFiles, learnedRoutes, mustRun, removeFrrNamespace, routerFrrConf, showResult, startFrr as startFrrIn, stopFrr as stopFrrIn, vtyshIn } from '../harness/frr-ns.ts';

const ID = `${process.pid % 100_000}`;
const NS = { router: `tsbr${ID}`, lb: `tsbl${ID}` } as const;
type Side = keyof typeof NS;
const ADDR = { router: '198.18.0.1', lb: '198.18.0.11' } as const;
const VIP = '198.18.2.1';
/** Another connected route of the node, which must never reach the router. */
const OTHER_NET = '198.18.0.200/29';

let root = '';
const started: Side[] = [];

const inNs = (side: Side, argv: readonly string[], timeoutMs = 20_000): Promise<ExecResult> => inNamespace(NS[side], argv, timeoutMs);
const vtysh = (side: Side, command: string): Promise<ExecResult> => vtyshIn(NS[side], command);
const show = showResult;
const must = mustRun;

/** The router side, as `tsbal setup --anycast` prints it for the network admin. */
const ROUTER_CONF = routerFrrConf(ADDR.router, ADDR.lb, 'ipv4');

async function startFrr(side: Side): Promise<void> {
  started.push(side);
  await startFrrIn(NS[side]);
}

async function stopFrr(side: Side): Promise<void> {
  await stopFrrIn(NS[side]);
}

/** The router's BGP routes learned from the node: prefix list. */
const learnedFromLb = (): Promise<string[]> => learnedRoutes(NS.router, 'ipv4', ADDR.lb);

async function kernelRoute(): Promise<string> {
  return (await inNs('router', ['ip', 'route', 'show', `${VIP}/32`])).stdout.trim();
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tsbal-anycast-frr-'));
  for (const side of ['router', 'lb'] as const) await must(['ip', 'netns', 'add', NS[side]]);
  // The veth is made inside one namespace with its peer in the other: nothing is created in the host's namespace.
  await must(['ip', '-n', NS.router, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.lb]);
  for (const side of ['router', 'lb'] as const) {
    await must(['ip', '-n', NS[side], 'addr', 'add', `${ADDR[side]}/24`, 'dev', 'eth0']);
    await must(['ip', '-n', NS[side], 'link', 'set', 'eth0', 'up']);
    await must(['ip', '-n', NS[side], 'link', 'set', 'lo', 'up']);
  }
  // Carrier comes a moment after both ends are up; until then the address is not listed (libuv skips a link that is
  // not running), and setup could not find the router-id.
  await waitFor('carrier on the veth', async () => ((await execProc(['ip', '-n', NS.lb, 'link', 'show', 'eth0'])).stdout.includes('LOWER_UP') ? true : undefined), { timeoutMs: 5_000, intervalMs: 20 });
  // This kernel has no dummy: ifb is what setup's --anycast-dev-kind ifb names (reference note).
  await must(['ip', '-n', NS.lb, 'link', 'add', 'vip0', 'type', 'ifb']);
  await must(['ip', '-n', NS.lb, 'link', 'set', 'vip0', 'up']);
  await must(['ip', '-n', NS.lb, 'link', 'add', 'other0', 'type', 'ifb']);
  await must(['ip', '-n', NS.lb, 'addr', 'add', OTHER_NET, 'dev', 'other0']);
  await must(['ip', '-n', NS.lb, 'link', 'set', 'other0', 'up']);
  // An address of the VIP elsewhere (here on lo) must not be announced: only vip0's copy is.
  await must(['ip', '-n', NS.lb, 'addr', 'add', `${VIP}/32`, 'dev', 'lo']);
}, 60_000);

afterAll(async () => {
  for (const side of started) await stopFrr(side);
  for (const side of ['router', 'lb'] as const) await removeFrrNamespace(NS[side]);
  if (root) rmSync(root, { recursive: true, force: true });
}, 60_000);

describe('the frr.conf tsbal setup --anycast writes is what the node runs', () => {
  test('BGP with BFD comes up, and the router learns exactly the VIP /32 while it is on vip0', async () => {
    // The node as Debian leaves it after `apt-get install frr`: the package's daemons file (everything off).
    mkdirSync(join(root, 'etc/frr'), { recursive: true });
    copyFileSync('/etc/frr/daemons', join(root, 'etc/frr/daemons'));
    // Run inside the node's namespace: the router-id is found from its own address on the router's subnet.
    const setup = await inNs('lb', [
      process.execPath, CLI_ENTRY, 'setup', '--node', 'lb1', '--anycast', VIP, '--router', ADDR.router, '--router-asn', '65000', '--asn', '65001',
      '--backend', '198.18.0.21:80', '--anycast-dev-kind', 'ifb', '--init', 'none', '--root', root,
    ], 30_000);
    expect(setup.code, show(setup)).toBe(0);
    expect(setup.stdout).toContain(`router-id ${ADDR.lb}`);
    const frrConf = readFileSync(join(root, 'etc/frr/frr.conf'), 'utf8');
    const daemons = readFileSync(join(root, 'etc/frr/daemons'), 'utf8');
    expect(daemons).toContain('\nbgpd=yes\n');
    expect(daemons).toContain('\nbfdd=yes\n');
    // The router gets the minimal daemons file setup writes where FRR's package left none.
    installFrrFiles(NS.router, mergeFrrDaemons(null), ROUTER_CONF);
    installFrrFiles(NS.lb, daemons, frrConf);
    await Promise.all([startFrr('router'), startFrr('lb')]);

    const established = await waitFor('the BGP session to be Established', async () => {
      const r = await vtysh('router', 'show bgp ipv4 unicast summary json');
      const peers = (JSON.parse(r.stdout || '{}') as { peers?: Record<string, { state?: string }> }).peers ?? {};
      return peers[ADDR.lb]?.state === 'Established' ? true : undefined;
    }, { timeoutMs: 40_000, intervalMs: 250, describe: async () => (await vtysh('router', 'show bgp summary')).stdout });
    expect(established).toBe(true);
    await waitFor('the BFD session to be up', async () => {
      const r = await vtysh('lb', 'show bfd peers json');
      const peers = JSON.parse(r.stdout || '[]') as Array<{ peer?: string; status?: string }>;
      return peers.some((p) => p.peer === ADDR.router && p.status === 'up') ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100, describe: async () => (await vtysh('lb', 'show bfd peers')).stdout });

    // Nothing yet: the VIP is on lo only, and the node's subnets are its own business. Watched for 2 s (the node
    // sends an update within a second of the session coming up).
    for (let i = 0; i < 10; i++) {
      expect(await learnedFromLb()).toEqual([]);
      await sleep(200);
    }

    // Measured here: while the VIP is also an address on lo, zebra keeps lo's connected /32 and announces nothing
    // even with the VIP on vip0. So the lo address goes first; a node that must keep answering the VIP while it is
    // withdrawn uses a local route instead (below), which is no connected route for FRR.
    await must(['ip', '-n', NS.lb, 'addr', 'del', `${VIP}/32`, 'dev', 'lo']);
    await must(['ip', '-n', NS.lb, 'addr', 'add', `${VIP}/32`, 'dev', 'vip0']);
    const route = await waitFor('the router to install the VIP', async () => {
      const r = await kernelRoute();
      return r.includes(`via ${ADDR.lb}`) ? r : undefined;
    }, { timeoutMs: 5_000, intervalMs: 20, describe: async () => `${await kernelRoute()}\n${(await vtysh('router', 'show bgp ipv4 unicast')).stdout}` });
    expect(route).toContain('proto bgp');
    expect(await learnedFromLb()).toEqual([`${VIP}/32`]);

    // The node keeps accepting the VIP without an address on lo: a route of type local (what a drain needs; metric
    // 100 beside the kernel's own local route for vip0's address).
    await must(['ip', '-n', NS.lb, 'route', 'add', 'local', `${VIP}/32`, 'dev', 'lo', 'table', 'local', 'metric', '100']);
    await sleep(1_000);
    expect(await learnedFromLb()).toEqual([`${VIP}/32`]);

    // Off vip0 (the local route stays, as while draining): withdrawn.
    await must(['ip', '-n', NS.lb, 'addr', 'del', `${VIP}/32`, 'dev', 'vip0']);
    await waitFor('the router to withdraw the VIP', async () => ((await kernelRoute()) === '' ? true : undefined), {
      timeoutMs: 5_000,
      intervalMs: 20,
      describe: kernelRoute,
    });
    expect(await learnedFromLb()).toEqual([]);
  }, 120_000);
});
