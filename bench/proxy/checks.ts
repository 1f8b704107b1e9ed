// Issue 12's health-check rows for bench/proxy: "checks of 100 backends at 1 s" while serving.
// What is measured: the proxy checks its 2 serving backends and 98 more, every 1 s each, while wrk loads it.
// The 98 are check-only backends (one cheap nginx listening on 127.0.<block>.1-98) in a second pool/backend used
// by an idle service/frontend of the same process, so the load still goes to the same 2 nginx backends as the
// plain rows and balancing is unchanged: the difference to the plain row is the checker's cost, nothing else.
// Each checks row has its own target nginx, so its stub_status counts that proxy's checks alone (checkRate).
import { LOOPBACK } from '../../test/harness/ports.ts';
import { type Nginx, nginxCounters, startNginxCheckTargets } from '../../test/harness/nginx.ts';
import { startTsbalWithConf, type TsbalBuild } from '../../test/harness/tsbal.ts';
import type { Daemon } from '../../test/harness/procs.ts';

export const CHECK_PATH = '/health';
export const CHECK_INTERVAL = '1s';
/** Check-only backends beside the 2 serving ones: 100 checked in all. */
export const IDLE_BACKENDS = 98;

export interface CheckTargets {
  nginx: Nginx;
  addresses: string[];
  /** When the proxy checking them started, and the accepts then (for checkRate). */
  /** Counted as requests: a kept check connection is accepted once. */
  since: { ms: number; requests: number };
}

/** 98 check-only backends on 127.0.<block>.1-98 at one port (block 1-254 apart per proxy). */
export async function startCheckTargets(label: string, block: number): Promise<CheckTargets> {
  const ips = Array.from({ length: IDLE_BACKENDS }, (_, i) => `127.0.${block}.${i + 1}`);
  const nginx = await startNginxCheckTargets(label, ips);
  const addresses = ips.map((ip) => `${ip}:${nginx.port}`);
  return { nginx, addresses, since: { ms: Date.now(), requests: (await nginxCounters(nginx)).requests } };
}

/** Checks per second the targets received since `since` (the stub_status reads themselves excluded). */
export async function checkRate(targets: CheckTargets): Promise<number> {
  const requests = (await nginxCounters(targets.nginx)).requests - targets.since.requests - 1;
  return requests / ((Date.now() - targets.since.ms) / 1000);
}

/** The pool options of a checked pool, the same on both pools. */
const POOL_CHECK_OPTIONS: Readonly<Record<string, string>> = {
  health_check_path: CHECK_PATH,
  health_check_interval: CHECK_INTERVAL,
};

/**
 * perlbal.conf: pool `backends` (the 2 serving backends) and pool `idle_pool` (the 98 check-only ones), both checked
 * every 1 s; service `balancer` on the first port with `set` (the bench's options), service `idle` on the second.
 */
export function checkedConf(backendPorts: readonly number[], idle: readonly string[], set: Readonly<Record<string, string>>) {
  return (ports: number[]): { text: string; ready: number[] } => {
    const pool = (name: string, members: readonly string[]) => [
      `CREATE POOL ${name}`,
      ...Object.entries(POOL_CHECK_OPTIONS).map(([k, v]) => `  SET ${k} = ${v}`),
      ...members.map((m) => `  POOL ${name} ADD ${m}`),
      '',
    ];
    const service = (name: string, port: number, poolName: string, options: Readonly<Record<string, string>>) => [
      `CREATE SERVICE ${name}`,
      `  SET listen = ${LOOPBACK}:${port}`,
      '  SET role = reverse_proxy',
      `  SET pool = ${poolName}`,
      ...Object.entries(options).map(([k, v]) => `  SET ${k} = ${v}`),
      `ENABLE ${name}`,
      '',
    ];
    const text = [
      ...pool('backends', backendPorts.map((p) => `${LOOPBACK}:${p}`)),
      ...pool('idle_pool', idle),
      ...service('balancer', ports[0]!, 'backends', set),
      ...service('idle', ports[1]!, 'idle_pool', set),
    ].join('\n');
    return { text, ready: [ports[0]!, ports[1]!] };
  };
}

export async function startTsbalChecked(
  backendPorts: readonly number[],
  targets: CheckTargets,
  set: Readonly<Record<string, string>>,
  build: TsbalBuild,
): Promise<Daemon & { port: number }> {
  return startTsbalWithConf(2, checkedConf(backendPorts, targets.addresses, set), build);
}
