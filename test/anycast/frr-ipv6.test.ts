// Anycast with an IPv6 VIP end to end through FRR: two namespaces joined by a veth, `router` (FRR, ASN 65000, an IPv6
// BGP session) and `lb` (FRR on the files `tsbal setup --anycast fd00:18:2::1` writes, and `tsbal run`). While tsbal
// serves the VIP the router learns exactly fd00:18:2::1/128 and a client in the router's namespace reaches [VIP]:80;
// a stop withdraws it. Addresses are ULA (fd00::/8) inside these namespaces only; FRR per namespace as in
// ../shared/reference/frr-ecmp.md and test/cli/setup-anycast-frr.test.ts.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_ENTRY } from '../harness/cli.ts';
import { spawnProc, waitFor, type ExecResult, type ProcHandle } from '../harness/proc.ts';
import { mergeFrrDaemons } from '../../src/setup/frr.ts';
import { inNamespace, installFrrFiles, learnedRoutes, mustRun, removeFrrNamespace, routerFrrConf, showResult, startFrr as startFrrIn, stopFrr as stopFrrIn, vtyshIn } from '../harness/frr-ns.ts';

const ID = `${process.pid % 100_000}`;
const NS = { router: `tsr6${ID}`, lb: `tsl6${ID}` } as const;
type Side = keyof typeof NS;
const ADDR = { router: 'fd00:18::ff', lb: 'fd00:18::11' } as const;
const VIP = 'fd00:18:2::1';
const BACKEND_PORT = 8081;
const WHOSERVER = fileURLToPath(new URL('../harness/whoserver.ts', import.meta.url));

let root = '';
const started: Side[] = [];
const procs: ProcHandle[] = [];

const inNs = (side: Side, argv: readonly string[], timeoutMs = 20_000): Promise<ExecResult> => inNamespace(NS[side], argv, timeoutMs);
const vtysh = (side: Side, command: string): Promise<ExecResult> => vtyshIn(NS[side], command);
const show = showResult;
const must = mustRun;

/** The router side, as `tsbal setup --anycast` prints it, for an IPv6 neighbour. */
const ROUTER_CONF = routerFrrConf('198.18.0.1', ADDR.lb, 'ipv6');

async function startFrr(side: Side): Promise<void> {
  started.push(side);
  await startFrrIn(NS[side]);
}

const learnedFromLb = (): Promise<string[]> => learnedRoutes(NS.router, 'ipv6', ADDR.lb);

const kernelRoute = async (): Promise<string> => (await inNs('router', ['ip', '-6', 'route', 'show', `${VIP}/128`])).stdout.trim();

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tsbal-anycast-frr6-'));
  for (const side of ['router', 'lb'] as const) await must(['ip', 'netns', 'add', NS[side]]);
  await must(['ip', '-n', NS.router, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.lb]);
  for (const side of ['router', 'lb'] as const) {
    await must(['ip', '-n', NS[side], 'addr', 'add', `${ADDR[side]}/64`, 'dev', 'eth0', 'nodad']);
    await must(['ip', '-n', NS[side], 'link', 'set', 'eth0', 'up']);
    await must(['ip', '-n', NS[side], 'link', 'set', 'lo', 'up']);
  }
  await must(['ip', '-n', NS.lb, 'link', 'add', 'vip0', 'type', 'ifb']);
  await must(['ip', '-n', NS.lb, 'link', 'set', 'vip0', 'up']);
  // What `tsbal setup --anycast` applies on a real node (--root applies nothing).
  await must(['ip', 'netns', 'exec', NS.lb, 'sysctl', '-qw', 'net.ipv6.ip_nonlocal_bind=1']);
  const backend = spawnProc(['ip', 'netns', 'exec', NS.lb, process.execPath, WHOSERVER, '127.0.0.1', String(BACKEND_PORT), 'web1'], { label: 'backend web1' });
  procs.push(backend);
  await waitFor('the backend to listen', () => (backend.stdout().includes('listening') ? true : undefined), { timeoutMs: 15_000, describe: () => backend.stderr() });
}, 60_000);

afterAll(async () => {
  for (const p of procs) {
    p.kill('SIGKILL');
    await p.exited;
  }
  for (const side of started) await stopFrrIn(NS[side]);
  for (const side of ['router', 'lb'] as const) await removeFrrNamespace(NS[side]);
  if (root) rmSync(root, { recursive: true, force: true });
}, 60_000);

describe('anycast with an IPv6 VIP through FRR', () => {
  test('the router learns exactly the /128 while tsbal serves it, a client behind the router is served, a stop withdraws it', async () => {
    mkdirSync(join(root, 'etc/frr'), { recursive: true });
    copyFileSync('/etc/frr/daemons', join(root, 'etc/frr/daemons'));
    const setup = await inNs('lb', [
      process.execPath, CLI_ENTRY, 'setup', '--node', 'lb1', '--anycast', VIP, '--router', ADDR.router, '--router-asn', '65000', '--asn', '65001',
      '--router-id', '198.18.0.11', '--backend', '198.18.0.21:80', '--anycast-dev-kind', 'ifb', '--init', 'none', '--root', root,
    ], 30_000);
    expect(setup.code, show(setup)).toBe(0);
    expect(readFileSync(join(root, 'etc/perlbal/perlbal.conf'), 'utf8')).toMatch(new RegExp(`SET listen +?= \\[${VIP}\\]:80`));
    installFrrFiles(NS.router, mergeFrrDaemons(null), ROUTER_CONF);
    installFrrFiles(NS.lb, readFileSync(join(root, 'etc/frr/daemons'), 'utf8'), readFileSync(join(root, 'etc/frr/frr.conf'), 'utf8'));
    await Promise.all([startFrr('router'), startFrr('lb')]);
    await waitFor('the IPv6 BGP session to be Established', async () => {
      const r = await vtysh('router', 'show bgp ipv6 unicast summary json');
      const peers = (JSON.parse(r.stdout || '{}') as { peers?: Record<string, { state?: string }> }).peers ?? {};
      return peers[ADDR.lb]?.state === 'Established' ? true : undefined;
    }, { timeoutMs: 40_000, intervalMs: 250, describe: async () => (await vtysh('router', 'show bgp summary')).stdout });
    expect(await learnedFromLb()).toEqual([]);

    // tsbal on this node's own perlbal.conf (the backend on loopback; setup's names a host that is not in this lab).
    const conf = join(root, 'run.conf');
    writeFileSync(conf, `SERVER anycast_vip = ${VIP}/128\nSERVER anycast_dev = vip0\nSERVER anycast_withdraw_wait = 200ms\n` +
      `CREATE POOL p\n  POOL p ADD 127.0.0.1:${BACKEND_PORT}\nCREATE SERVICE web\n  SET role = reverse_proxy\n  SET listen = [${VIP}]:80\n  SET pool = p\nENABLE web\n`);
    const run = spawnProc(['ip', 'netns', 'exec', NS.lb, process.execPath, CLI_ENTRY, 'run', '-c', conf, '--state-dir', join(root, 'state'), '--drain-timeout', '1'], { label: 'tsbal' });
    procs.push(run);
    const logs = (): string => run.stdout() + run.stderr();
    const route = await waitFor('the router to install the /128', async () => {
      const r = await kernelRoute();
      return r.includes('proto bgp') ? r : undefined;
    }, { timeoutMs: 20_000, intervalMs: 50, describe: async () => `${await kernelRoute()}\n${(await vtysh('router', 'show bgp ipv6 unicast')).stdout}\n${logs()}` });
    expect(route).toContain('dev eth0');
    expect(await learnedFromLb()).toEqual([`${VIP}/128`]);

    const r = await inNs('router', ['curl', '-sS', '-g', '--max-time', '5', `http://[${VIP}]/`]);
    expect(r.stdout, `${r.stderr}\n${logs()}`).toBe('web1 127.0.0.1\n');

    run.kill('SIGTERM');
    await waitFor('the router to withdraw the /128', async () => ((await kernelRoute()) === '' ? true : undefined), { timeoutMs: 10_000, intervalMs: 50, describe: kernelRoute });
    expect(await learnedFromLb()).toEqual([]);
    expect((await run.exited).code, logs()).toBe(0);
  }, 150_000);
});
