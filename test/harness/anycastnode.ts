// tsbal in anycast mode on one LB of the anycast lab: `tsbal run --supervise` from source (the test's Bun), with a
// perlbal.conf that serves the VIP from both backends, active health checks and cookie affinity keyed by a secret
// shared by every LB (so a session keeps its backend whichever LB the router picks).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_ENTRY } from './cli.ts';
import { AC_ADDR, AC_VIP, AC_VIP_DEV, type AcLb, type AnycastLab } from './anycastlab.ts';
import { sleep, waitFor, type ExecResult, type ProcHandle } from './proc.ts';

export const HEALTH = { intervalMs: 250, timeoutMs: 200, fall: 2, rise: 2 } as const;
/** The longest a backend failure takes to be seen by the checks: `fall` checks, the last one timing out. */
export const FALL_TIME_MS = HEALTH.fall * HEALTH.intervalMs + HEALTH.timeoutMs;
export const WITHDRAW_WAIT_MS = 1000;
export const MGMT_PORT = 60000;

export function anycastPerlbalConf(): string {
  return `SERVER anycast_vip = ${AC_VIP}/32
SERVER anycast_dev = ${AC_VIP_DEV}
SERVER anycast_withdraw_wait = ${WITHDRAW_WAIT_MS}ms
CREATE POOL webpool
  POOL webpool ADD ${AC_ADDR.web1}:80
  POOL webpool ADD ${AC_ADDR.web2}:80
  SET health_check_path = /health
  SET health_check_interval = ${HEALTH.intervalMs}ms
  SET health_check_timeout = ${HEALTH.timeoutMs}ms
  SET health_check_fall = ${HEALTH.fall}
  SET health_check_rise = ${HEALTH.rise}
  SET health_check_reuse = off
CREATE SERVICE web
  SET role = reverse_proxy
  SET listen = ${AC_VIP}:80
  SET pool = webpool
  SET sticky = cookie
  SET sticky_secret = anycast-lab-shared-secret
ENABLE web
CREATE SERVICE mgmt
  SET role = management
  SET listen = 127.0.0.1:${MGMT_PORT}
ENABLE mgmt
`;
}

export interface AnycastNode {
  readonly lb: AcLb;
  readonly stateDir: string;
  /** The supervisor (what SIGTERM goes to); null before start. */
  proc(): ProcHandle | null;
  start(): Promise<void>;
  /** The engine's pid, from `tsbal status --json`. */
  enginePid(): Promise<number>;
  cli(args: readonly string[]): Promise<ExecResult>;
  log(): string;
}

const WHOSERVER = fileURLToPath(new URL('./whoserver.ts', import.meta.url));

export async function startWhoBackends(lab: AnycastLab): Promise<ProcHandle[]> {
  const procs = (['web1', 'web2'] as const).map((h) => lab.spawn(h, [process.execPath, WHOSERVER, AC_ADDR[h], '80', h], { label: `backend ${h}` }));
  for (const p of procs) {
    await waitFor(`${p.label} to listen`, () => (p.stdout().includes('listening') ? true : undefined), { timeoutMs: 15_000, describe: () => p.stderr().slice(-300) });
  }
  return procs;
}

/**
 * `engine`: the command that runs tsbal (default: this Bun on the source); the benchmark passes Node 22 on the
 * bundle, what ships.
 */
export async function createAnycastNode(lab: AnycastLab, baseDir: string, lb: AcLb, engine: readonly string[] = [process.execPath, CLI_ENTRY]): Promise<AnycastNode> {
  const dir = join(baseDir, lb);
  const stateDir = join(dir, 'state');
  const conf = join(dir, 'perlbal.conf');
  await mkdir(stateDir, { recursive: true });
  await writeFile(conf, anycastPerlbalConf());
  let proc: ProcHandle | null = null;
  let earlier = '';
  const node: AnycastNode = {
    lb,
    stateDir,
    proc: () => proc,
    async start() {
      if (proc !== null) earlier += `--- previous run (exit ${JSON.stringify(proc.exit())})\n${proc.stdout()}${proc.stderr()}`;
      const started = lab.spawn(lb, [...engine, 'run', '-c', conf, '--state-dir', stateDir, '--supervise', '--drain-timeout', '5'], { label: `tsbal ${lb}` });
      proc = started;
      await Promise.race([started.exited, sleep(300)]);
      if (started.exit() !== null) throw new Error(`tsbal on ${lb} exited at start (${JSON.stringify(started.exit())}):\n${started.stdout()}${started.stderr()}`);
    },
    async enginePid() {
      const r = await node.cli(['status', '--json']);
      const pid = (JSON.parse(r.stdout || '{}') as { pid?: number }).pid;
      if (typeof pid !== 'number') throw new Error(`tsbal status --json on ${lb}: ${r.stdout}${r.stderr}`);
      return pid;
    },
    cli: (args) => lab.exec(lb, [process.execPath, CLI_ENTRY, ...args, '--state-dir', stateDir], { timeoutMs: 15_000 }),
    log: () => `${earlier}${proc ? proc.stdout() + proc.stderr() : ''}`,
  };
  return node;
}

/** Polls the router's nexthops every `intervalMs` and keeps each change with its wall-clock time. */
export function watchNexthops(lab: AnycastLab, intervalMs = 10): { changes: Array<{ at: number; hops: string[] }>; stop(): Promise<void> } {
  const changes: Array<{ at: number; hops: string[] }> = [];
  let running = true;
  const loop = (async () => {
    let last = '';
    const deadline = Date.now() + 60_000;
    while (running && Date.now() < deadline) {
      const hops = await lab.nexthops().catch(() => null);
      const at = Date.now();
      if (hops !== null && hops.join(',') !== last) {
        last = hops.join(',');
        changes.push({ at, hops });
      }
      await sleep(intervalMs);
    }
  })();
  return {
    changes,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** The first time at or after `since` when the router's nexthops did (or did not, with `present` false) include `ip`. */
export function firstChange(changes: ReadonlyArray<{ at: number; hops: string[] }>, since: number, ip: string, present: boolean): number | null {
  const c = changes.find((x) => x.at >= since && x.hops.includes(ip) === present);
  return c === undefined ? null : c.at;
}
