// What a two-node HA test needs regardless of which implementation runs a node: the config files both real
// heartbeat and tsbal read (identical bytes, as in a migration), the perlbal.conf for the proxy on the VIP,
// and one interface over a running node.
import { mkdir, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { LAB_ADDRESSES, LAB_VIP, type Lab, type LabHost } from './netns.ts';
import { BACKEND_PORT } from './web.ts';

export type HaImpl = 'tsbal' | 'heartbeat';
export type LbHost = 'lb1' | 'lb2';

export interface HaSettings {
  /** Written to ha.cf as is, in heartbeat's syntax: `100ms`, `2` (seconds). */
  keepalive: string;
  deadtime: string;
  warntime?: string;
  initdead?: string;
  autoFailback: 'on' | 'off';
  /** The node named first in haresources (the VIP's home). Node names equal lab host names. */
  preferred: LbHost;
  /** ha.cf `ping` nodes (the lab gateway, typically). */
  ping?: readonly string[];
  /** The heartbeat media lines (default `bcast eth0`), e.g. `ucast eth0 198.18.0.2` for each node. */
  media?: readonly string[];
  /** Further ha.cf lines, appended after the node line. */
  extra?: readonly string[];
  /** The haresources lines (default: one group, `preferred IPaddr::VIP/24/eth0`): e.g. one group per home node. */
  resources?: readonly string[];
}

/** Millisecond value of a heartbeat time token (`100ms`, `2`, `1.5`, `500us`): for test deadlines. */
export function haTimeMs(token: string): number {
  const match = /^([0-9.]+)(ms|us)?$/.exec(token);
  if (!match) throw new Error(`not a heartbeat time value: ${token}`);
  const value = Number(match[1]);
  return match[2] === 'ms' ? value : match[2] === 'us' ? value / 1000 : value * 1000;
}

export const LAB_AUTH = 'sha1 LabSecret42';
/** The heartbeat port every lab ha.cf uses. */
export const LAB_UDP_PORT = 694;

export function renderHaCf(settings: HaSettings, logDir: string): string {
  const lines = [
    `logfile ${join(logDir, 'ha-log')}`,
    `debugfile ${join(logDir, 'ha-debug')}`,
    'logfacility none',
    `udpport ${LAB_UDP_PORT}`,
    `keepalive ${settings.keepalive}`,
    `deadtime ${settings.deadtime}`,
    ...(settings.warntime ? [`warntime ${settings.warntime}`] : []),
    ...(settings.initdead ? [`initdead ${settings.initdead}`] : []),
    ...(settings.media ?? ['bcast eth0']),
    `auto_failback ${settings.autoFailback}`,
    'node lb1 lb2',
    ...(settings.ping?.length ? [`ping ${settings.ping.join(' ')}`] : []),
    ...(settings.extra ?? []),
  ];
  return `${lines.join('\n')}\n`;
}

export function renderHaresources(settings: HaSettings): string {
  if (settings.resources !== undefined) return `${settings.resources.join('\n')}\n`;
  return `${settings.preferred} IPaddr::${LAB_VIP}/24/eth0\n`;
}

/** The tutorial's perlbal.conf: a reverse proxy on VIP:80 (ip_nonlocal_bind is on in the lb namespaces). */
export function renderPerlbalConf(): string {
  return [
    'CREATE POOL webs',
    `  POOL webs ADD ${LAB_ADDRESSES.web1}:${BACKEND_PORT}`,
    `  POOL webs ADD ${LAB_ADDRESSES.web2}:${BACKEND_PORT}`,
    '',
    'CREATE SERVICE balancer',
    `  SET listen          = ${LAB_VIP}:80`,
    '  SET role            = reverse_proxy',
    '  SET pool            = webs',
    '  SET persist_client  = on',
    '  SET persist_backend = on',
    '  SET verify_backend  = on',
    'ENABLE balancer',
    '',
  ].join('\n');
}

/** Writes ha.cf, authkeys (mode 0600) and haresources into dir, creating it. */
export async function writeHaDir(dir: string, settings: HaSettings, logDir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'ha.cf'), renderHaCf(settings, logDir));
  await writeFile(join(dir, 'authkeys'), `auth 1\n1 ${LAB_AUTH}\n`, { mode: 0o600 });
  await chmod(join(dir, 'authkeys'), 0o600);
  await writeFile(join(dir, 'haresources'), renderHaresources(settings));
}

export interface HaNode {
  readonly impl: HaImpl;
  readonly host: LbHost;
  /** Starts the node (and its proxy); resolves once the processes run, not once the cluster formed. */
  start(): Promise<void>;
  /** Graceful stop (SIGTERM), waits until every process of the node has exited (bounded). */
  stop(): Promise<void>;
  /**
   * A host crash: SIGKILL to every process in the node's namespace, then the VIP is removed from its eth0
   * (a dead host no longer answers for it). Returns the wall-clock time of the kill.
   */
  crash(): Promise<number>;
  running(): boolean;
  /** The node's log so far (heartbeat's logfile, or tsbal's stdout and stderr). */
  log(): Promise<string>;
}

/**
 * SIGKILLs everything in the host's namespace and removes the VIP as a crash would. Returns the time the last
 * SIGKILL was sent: from then on nothing of the host can answer (a request started earlier may still be served).
 */
export async function crashHost(lab: Lab, host: LabHost): Promise<number> {
  const pids = await lab.pids(host);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  }
  const killedAt = performance.timeOrigin + performance.now();
  await lab.exec(host, ['ip', 'addr', 'del', `${LAB_VIP}/24`, 'dev', 'eth0']);
  // Forks can race the first sweep; a crashed host runs nothing.
  for (let attempt = 0; attempt < 50 && (await lab.pids(host)).length > 0; attempt++) {
    await lab.killAll(host, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return killedAt;
}
