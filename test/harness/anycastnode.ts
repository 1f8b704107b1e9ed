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
  /** Wall-clock times (ms) of the log entries whose message matches `re`, with the message. */
  logged(re: RegExp): Array<{ at: number; msg: string }>;
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
      const started = lab.spawn(lb, [...engine, 'run', '-c', conf, '--state-dir', stateDir, '--supervise', '--drain-timeout', '5', '--log-format', 'json'], { label: `tsbal ${lb}` });
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
    logged(re) {
      const out: Array<{ at: number; msg: string }> = [];
      for (const line of node.log().split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const e = JSON.parse(line) as { time?: string; msg?: string; message?: string };
          const msg = e.msg ?? e.message ?? '';
          if (e.time !== undefined && re.test(msg)) out.push({ at: Date.parse(e.time), msg });
        } catch {
          // not a log entry
        }
      }
      return out;
    },
  };
  return node;
}

/** `[2026-12-07T16:27:12.319284] ...` from `ip -ts monitor`: the time ip read the netlink message (local time). */
function monitorTime(line: string): number | null {
  const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\]/.exec(line);
  return m ? Date.parse(m[1]!.slice(0, 23)) : null;
}

/**
 * The router's nexthops for the VIP and each change with its time. `ip -ts monitor route nexthop` (at a raised
 * priority, so a loaded host does not delay it) stamps every kernel change as it happens; each one triggers a fresh
 * read of the route, and a change found is dated by the monitor's stamp. Polling `ip route` from the test instead
 * measured the load of the test host (each spawn waits its turn) more than the router.
 */
export function watchNexthops(lab: AnycastLab): { changes: Array<{ at: number; hops: string[] }>; stop(): Promise<void> } {
  const changes: Array<{ at: number; hops: string[] }> = [];
  const monitor = lab.spawn('rt', ['nice', '-n', '-10', 'ip', '-ts', 'monitor', 'route', 'nexthop'], { label: 'route monitor' });
  let last = '';
  let pending: number | null = null;
  let reading: Promise<void> = Promise.resolve();
  const read = (at: number): void => {
    reading = reading.then(async () => {
      const hops = await lab.nexthops().catch(() => null);
      if (hops === null || hops.join(',') === last) return;
      last = hops.join(',');
      changes.push({ at, hops });
    });
  };
  read(Date.now());
  monitor.onLine((line) => {
    const at = monitorTime(line);
    if (at === null) return;
    // One read per burst of messages (a route and its nexthop group change together), dated by the first.
    if (pending !== null) return;
    pending = at;
    setTimeout(() => {
      const first = pending!;
      pending = null;
      read(first);
    }, 5);
  });
  return {
    changes,
    stop: async () => {
      monitor.kill('SIGTERM');
      await monitor.exited;
      await reading;
    },
  };
}

/** When the VIP was added to or deleted from an LB's vip0, from `ip -ts monitor address`. */
export function watchVip(lab: AnycastLab, lb: AcLb): { events: Array<{ at: number; present: boolean }>; stop(): Promise<void> } {
  const events: Array<{ at: number; present: boolean }> = [];
  const monitor = lab.spawn(lb, ['nice', '-n', '-10', 'ip', '-ts', 'monitor', 'address', 'dev', AC_VIP_DEV], { label: `address monitor ${lb}` });
  monitor.onLine((line) => {
    const at = monitorTime(line);
    if (at === null || !line.includes(`${AC_VIP}/32`)) return;
    events.push({ at, present: !line.includes('Deleted') });
  });
  return {
    events,
    stop: async () => {
      monitor.kill('SIGTERM');
      await monitor.exited;
    },
  };
}

/** The first time at or after `since` when the router's nexthops did (or did not, with `present` false) include `ip`. */
export function firstChange(changes: ReadonlyArray<{ at: number; hops: string[] }>, since: number, ip: string, present: boolean): number | null {
  const c = changes.find((x) => x.at >= since && x.hops.includes(ip) === present);
  return c === undefined ? null : c.at;
}
