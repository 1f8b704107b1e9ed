// A multi-host lab in network namespaces: one "switch" namespace holding a bridge, and the hosts lb1, lb2,
// web1, web2 and client, each with one veth `eth0` plugged into the bridge, on 198.18.0.0/24.
//
// Every namespace name carries a unique suffix (other engineers run tests concurrently) that embeds the PID
// of the creating process, so a later run can sweep labs whose creator died without tearing them down.
// No interface is ever created in the host namespace: veth pairs are created inside the switch namespace
// with their peer directly in the host's namespace.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { execOk, execProc, sleep, spawnProc, type ExecResult, type ProcHandle } from './proc.ts';

export const LAB_HOSTS = ['lb1', 'lb2', 'web1', 'web2', 'client'] as const;
export type LabHost = (typeof LAB_HOSTS)[number];

export const LAB_PREFIX_BITS = 24;
export const LAB_ADDRESSES: Readonly<Record<LabHost, string>> = {
  lb1: '198.18.0.1',
  lb2: '198.18.0.2',
  web1: '198.18.0.11',
  web2: '198.18.0.12',
  client: '198.18.0.100',
};
/** The switch's own address: the "router" that ha.cf `ping` nodes point at. */
export const LAB_GATEWAY = '198.18.0.254';
export const LAB_VIP = '198.18.0.99';
export const LAB_BROADCAST = '198.18.0.255';

const NAME_PREFIX = 'hlab';
const NAME_PATTERN = /^hlab-(\d+)-[0-9a-f]+-/;

export interface Lab {
  readonly id: string;
  /** The namespace name of each host (what `ip -n` takes). */
  readonly ns: Readonly<Record<LabHost, string>>;
  readonly switchNs: string;
  /** Runs argv inside the host's network namespace to completion. */
  exec(host: LabHost, argv: readonly string[], options?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /** Starts argv inside the host's network namespace; the handle's pid is the command itself. */
  spawn(host: LabHost, argv: readonly string[], options?: { label?: string; env?: NodeJS.ProcessEnv; cwd?: string }): ProcHandle;
  /** The IPv4 addresses configured on the host's eth0 (without prefix length). */
  addresses(host: LabHost): Promise<string[]>;
  /** Which of the given hosts (default lb1, lb2) have `address` (default the VIP) on eth0. */
  holders(address?: string, hosts?: readonly LabHost[]): Promise<LabHost[]>;
  /** Unplugs or replugs the host's cable at the switch (the host keeps its eth0, which loses carrier). */
  setLink(host: LabHost, up: boolean): Promise<void>;
  /** Makes the host drop (or stop dropping) incoming UDP to `port` from another lab host, with nft in its namespace. */
  dropUdp(host: LabHost, from: LabHost, port: number, drop: boolean): Promise<void>;
  /** PIDs of every process in the host's namespace. */
  pids(host: LabHost): Promise<number[]>;
  /** Signals every process in the host's namespace; returns the PIDs signalled. */
  killAll(host: LabHost, signal?: NodeJS.Signals): Promise<number[]>;
  /** Kills every process in every lab namespace and deletes the namespaces. Idempotent; never throws. */
  teardown(): Promise<void>;
}

const ipv6Off = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];

async function nsPids(ns: string): Promise<number[]> {
  const result = await execProc(['ip', 'netns', 'pids', ns], { timeoutMs: 5_000 });
  if (result.code !== 0) return [];
  return result.stdout
    .split('\n')
    .map((line) => Number.parseInt(line, 10))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

function signalPids(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Exited meanwhile.
    }
  }
}

/** Kills everything in a namespace (bounded retries: forks can race the first sweep) and deletes it. */
async function destroyNamespace(ns: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const pids = await nsPids(ns);
    if (pids.length === 0) break;
    signalPids(pids, 'SIGKILL');
    await sleep(20);
  }
  await execProc(['ip', 'netns', 'del', ns], { timeoutMs: 5_000 });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes labs left by test runs that died before their teardown (their creator PID no longer exists). */
export async function sweepStaleLabs(): Promise<string[]> {
  const listing = await execProc(['ip', 'netns', 'list'], { timeoutMs: 5_000 });
  const stale = listing.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => {
      const match = NAME_PATTERN.exec(name);
      return match !== null && !pidAlive(Number(match[1]));
    });
  await Promise.all(stale.map(destroyNamespace));
  return stale;
}

/** Labs not yet torn down, so a runner that exits abruptly (but still runs 'exit' handlers) cleans up. */
const liveLabs = new Set<{ names: string[] }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lab of liveLabs) {
      for (const name of lab.names) {
        try {
          const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split('\n').map(Number);
          signalPids(pids.filter((pid) => pid > 0), 'SIGKILL');
          execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
        } catch {
          // Best effort: sweepStaleLabs removes what remains on the next run.
        }
      }
    }
  });
}

export async function createLab(options: { nonlocalBind?: boolean } = {}): Promise<Lab> {
  await sweepStaleLabs();
  const id = `${NAME_PREFIX}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const ns = Object.fromEntries(LAB_HOSTS.map((host) => [host, `${id}-${host}`])) as Record<LabHost, string>;
  const switchNs = `${id}-sw`;
  const record = { names: [...LAB_HOSTS.map((host) => ns[host]), switchNs] };
  liveLabs.add(record);
  installExitHook();

  const inNs = (name: string, argv: readonly string[]) => execOk(['ip', 'netns', 'exec', name, ...argv]);
  let tornDown = false;
  // A handle just spawned may not have entered its namespace yet, so `ip netns pids` cannot see it: kill by handle too.
  const spawned = new Set<ProcHandle>();
  const lab: Lab = {
    id,
    ns,
    switchNs,
    exec: (host, argv, execOptions) => execProc(['ip', 'netns', 'exec', ns[host], ...argv], execOptions),
    spawn(host, argv, spawnOptions) {
      if (tornDown) throw new Error(`lab ${id} is torn down`);
      const proc = spawnProc(['ip', 'netns', 'exec', ns[host], ...argv], { label: `${host}: ${argv.join(' ')}`, ...spawnOptions });
      spawned.add(proc);
      void proc.exited.then(() => spawned.delete(proc));
      return proc;
    },
    async addresses(host) {
      const argv = ['ip', '-n', ns[host], '-4', '-o', 'addr', 'show', 'dev', 'eth0'];
      // `ip -n` runs inside the namespace for a moment, so a killAll of that host at the same time (a node being
      // stopped while a test polls who holds the VIP) may kill it too: asked again, not a failure.
      let r = await execProc(argv);
      for (let tries = 1; r.signal === 'SIGKILL' && tries < 3; tries++) r = await execProc(argv);
      if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (code ${r.code}, signal ${r.signal}): ${r.stderr.trim()}`);
      return [...r.stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\//g)].map((match) => match[1] ?? '');
    },
    async holders(address = LAB_VIP, hosts = ['lb1', 'lb2']) {
      const held = await Promise.all(hosts.map(async (host) => ((await lab.addresses(host)).includes(address) ? host : null)));
      return held.filter((host): host is LabHost => host !== null);
    },
    async setLink(host, up) {
      await execOk(['ip', '-n', switchNs, 'link', 'set', host, up ? 'up' : 'down']);
    },
    async dropUdp(host, from, port, drop) {
      // One table per rule, named by it, so rules for different peers or ports come and go independently.
      const table = `lab_drop_${from}_${port}`;
      if (!drop) {
        await execProc(['ip', 'netns', 'exec', ns[host], 'nft', 'delete', 'table', 'inet', table]);
        return;
      }
      const rules = `table inet ${table} {\n  chain input {\n    type filter hook input priority 0;\n    ip saddr ${LAB_ADDRESSES[from]} udp dport ${port} drop\n  }\n}\n`;
      await execOk(['ip', 'netns', 'exec', ns[host], 'nft', '-f', '-'], { input: rules });
    },
    pids: (host) => nsPids(ns[host]),
    async killAll(host, signal = 'SIGKILL') {
      const pids = await nsPids(ns[host]);
      signalPids(pids, signal);
      return pids;
    },
    async teardown() {
      if (tornDown) return;
      tornDown = true;
      for (const proc of spawned) proc.kill('SIGKILL');
      await Promise.all(LAB_HOSTS.map((host) => destroyNamespace(ns[host])));
      await destroyNamespace(switchNs);
      liveLabs.delete(record);
    },
  };

  try {
    await execOk(['ip', 'netns', 'add', switchNs]);
    await inNs(switchNs, ['sysctl', '-q', '-w', ...ipv6Off]);
    await execOk(['ip', '-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await execOk(['ip', '-n', switchNs, 'addr', 'add', `${LAB_GATEWAY}/${LAB_PREFIX_BITS}`, 'brd', LAB_BROADCAST, 'dev', 'br0']);
    await execOk(['ip', '-n', switchNs, 'link', 'set', 'lo', 'up']);
    await execOk(['ip', '-n', switchNs, 'link', 'set', 'br0', 'up']);
    await Promise.all(
      LAB_HOSTS.map(async (host) => {
        const name = ns[host];
        await execOk(['ip', 'netns', 'add', name]);
        // Set before the veth exists so its eth0 never gets an IPv6 link-local address or sends RS/MLD noise.
        const sysctls = [...ipv6Off];
        if (options.nonlocalBind !== false && (host === 'lb1' || host === 'lb2')) sysctls.push('net.ipv4.ip_nonlocal_bind=1');
        await inNs(name, ['sysctl', '-q', '-w', ...sysctls]);
        await execOk(['ip', '-n', switchNs, 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
        await execOk(['ip', '-n', switchNs, 'link', 'set', host, 'master', 'br0', 'up']);
        await execOk(['ip', '-n', name, 'addr', 'add', `${LAB_ADDRESSES[host]}/${LAB_PREFIX_BITS}`, 'brd', LAB_BROADCAST, 'dev', 'eth0']);
        await execOk(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
        await execOk(['ip', '-n', name, 'link', 'set', 'eth0', 'up']);
      }),
    );
  } catch (error) {
    await lab.teardown();
    throw error;
  }
  return lab;
}
