// FRR in a network namespace, as reference/frr-ecmp.md runs it: one instance per namespace in FRR's own pathspace
// (/etc/frr/NS, /var/run/frr/NS), every call wrapped in `ip netns exec NS`. For the tests that start FRR on files
// of their own (setup's output, a router's config); the anycast lab (anycastlab.ts) runs its own fleet.
import { join } from 'node:path';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { execProc, type ExecResult } from './proc.ts';

export const FRR_INIT = '/usr/lib/frr/frrinit.sh';

export const inNamespace = (ns: string, argv: readonly string[], timeoutMs = 20_000): Promise<ExecResult> =>
  execProc(['ip', 'netns', 'exec', ns, ...argv], { timeoutMs });

export const vtyshIn = (ns: string, command: string): Promise<ExecResult> => inNamespace(ns, ['vtysh', '-N', ns, '-c', command], 10_000);

export const showResult = (r: ExecResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** Runs a command on the host; a non-zero exit throws with its output. */
export async function mustRun(argv: readonly string[]): Promise<void> {
  const r = await execProc(argv, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${showResult(r)}`);
}

/** The instance's daemons, frr.conf and vtysh.conf. */
export function installFrrFiles(ns: string, daemons: string, frrConf: string): void {
  const dir = `/etc/frr/${ns}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'daemons'), daemons);
  writeFileSync(join(dir, 'frr.conf'), frrConf);
  writeFileSync(join(dir, 'vtysh.conf'), 'service integrated-vtysh-config\n');
}

/** Starts the namespace's instance (its run directory owned by frr); throws with frrinit's output if it fails. */
export async function startFrr(ns: string): Promise<void> {
  const run = `/var/run/frr/${ns}`;
  mkdirSync(run, { recursive: true });
  await mustRun(['chown', 'frr:frr', run]);
  const r = await inNamespace(ns, [FRR_INIT, 'start', ns], 60_000);
  if (r.code !== 0) throw new Error(`frrinit start ${ns}: ${showResult(r)}`);
}

/** Stops it; never throws (cleanup). */
export async function stopFrr(ns: string): Promise<void> {
  await inNamespace(ns, [FRR_INIT, 'stop', ns], 30_000).catch(() => undefined);
}

/**
 * Cleanup after the instance is stopped: whatever survived the stop (a hung daemon) dies with the namespace's
 * processes, then the namespace and the instance's files go. Never throws.
 */
export async function removeFrrNamespace(ns: string): Promise<void> {
  const pids = await execProc(['ip', 'netns', 'pids', ns], { timeoutMs: 5_000 }).catch(() => null);
  for (const pid of (pids?.stdout ?? '').split('\n').map(Number).filter((p) => p > 0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await execProc(['ip', 'netns', 'del', ns], { timeoutMs: 5_000 }).catch(() => undefined);
  rmSync(`/etc/frr/${ns}`, { recursive: true, force: true });
  rmSync(`/var/run/frr/${ns}`, { recursive: true, force: true });
}

/**
 * The router side of an anycast lab, written out as `tsbal setup --anycast` prints it for the network admin: eBGP
 * with BFD towards the node (`neighbor`, AS 65001) from AS 65000, ECMP over up to 8 paths.
 */
export function routerFrrConf(routerId: string, neighbor: string, family: 'ipv4' | 'ipv6'): string {
  return `frr defaults traditional
hostname router
bfd
 profile tsbal
  detect-multiplier 3
  receive-interval 100
  transmit-interval 100
 exit
exit
router bgp 65000
 bgp router-id ${routerId}
 no bgp ebgp-requires-policy
 neighbor TSBAL peer-group
 neighbor TSBAL remote-as 65001
 neighbor TSBAL timers 3 9
 neighbor TSBAL bfd
 neighbor TSBAL bfd profile tsbal
 neighbor ${neighbor} peer-group TSBAL
 address-family ${family} unicast
${family === 'ipv6' ? '  neighbor TSBAL activate\n' : ''}  maximum-paths 8
 exit-address-family
exit
`;
}

/** The prefixes the router in `ns` learned by BGP from `neighbor`, sorted; none while the session is down. */
export async function learnedRoutes(ns: string, family: 'ipv4' | 'ipv6', neighbor: string): Promise<string[]> {
  const r = await vtyshIn(ns, `show bgp ${family} unicast neighbors ${neighbor} routes json`);
  if (r.code !== 0) return [];
  const parsed = JSON.parse(r.stdout || '{}') as { routes?: Record<string, unknown> };
  return Object.keys(parsed.routes ?? {}).sort();
}
