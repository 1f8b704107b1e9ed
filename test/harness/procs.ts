// Real daemons as child processes: each in its own process group (so forks are killed with it), output in a
// file in its private temp dir, readiness by connecting, stop and kill by process group id. Also /proc
// accounting (CPU seconds, RSS) for benchmarks.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts, sleep, waitForPorts } from './ports.ts';

const CLOCK_TICKS_PER_SECOND = 100; // getconf CLK_TCK; 100 on every Linux build we run on
const PAGE_SIZE = 4096;

// ---------------------------------------------------------------------------------------------
// /proc accounting

export interface ProcSample {
  pid: number;
  pgid: number;
  state: string;
  /** utime + stime of the process itself (not of reaped children), in seconds. */
  cpuSeconds: number;
  rssBytes: number;
}

/** One process from /proc/<pid>/stat, or null if it is gone. */
export function readProc(pid: number): ProcSample | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name is in parentheses and may contain spaces: fields are counted after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const field = (n: number): number => Number(fields[n - 3]); // n = field number in proc(5), 1-based
  return {
    pid,
    pgid: field(5),
    state: fields[0] ?? '?',
    cpuSeconds: (field(14) + field(15)) / CLOCK_TICKS_PER_SECOND,
    rssBytes: field(24) * PAGE_SIZE,
  };
}

/** Live (non-zombie) processes of a process group. */
export function groupProcs(pgid: number): ProcSample[] {
  const procs: ProcSample[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    const sample = readProc(Number(entry));
    if (sample && sample.pgid === pgid && sample.state !== 'Z') procs.push(sample);
  }
  return procs;
}

export interface GroupUsage {
  cpuSeconds: number;
  rssBytes: number;
  processes: number;
}

export function groupUsage(pgid: number): GroupUsage {
  const procs = groupProcs(pgid);
  return {
    cpuSeconds: procs.reduce((sum, p) => sum + p.cpuSeconds, 0),
    rssBytes: procs.reduce((sum, p) => sum + p.rssBytes, 0),
    processes: procs.length,
  };
}

// ---------------------------------------------------------------------------------------------
// temp dirs

/** A private directory under the system temp dir, readable by daemons' worker users (www-data, nobody). */
export function makeTempDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tsbal-${label}-`));
  fs.chmodSync(dir, 0o755);
  return dir;
}

export function removeDir(dir: string): void {
  if (process.env.TSBAL_KEEP_TEMP === '1') return;
  fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// daemons

export interface DaemonSpec {
  name: string;
  command: string;
  args: string[];
  /** Private temp dir, owned by the daemon handle and removed by stop(). */
  dir: string;
  /** Ports that must accept connections before the daemon counts as started. */
  ports: number[];
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  /** Log files the daemon writes itself (e.g. an error log), appended to output() for diagnostics. */
  logFiles?: string[];
}

export type ExitStatus = { code: number | null; signal: NodeJS.Signals | null };

export interface Daemon {
  name: string;
  /** PID of the process started; also its process group id. */
  pid: number;
  dir: string;
  ports: number[];
  /** stdout and stderr so far (merged, last 64 KiB). */
  output(): string;
  /** null while the started process runs. */
  exitStatus(): ExitStatus | null;
  /** CPU and RSS of every live process in the daemon's process group. */
  usage(): GroupUsage;
  /** Sends a signal to the whole process group without waiting (e.g. SIGKILL to simulate a crash). */
  signalGroup(signal: NodeJS.Signals): void;
  /** Resolves true once no process of the group is left, false after `timeoutMs`. */
  waitGone(timeoutMs: number): Promise<boolean>;
  /** SIGTERM to the group, SIGKILL after `graceMs`, then removes the temp dir. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

// A crashed or interrupted test run must not leave daemons behind: this set is only the last-resort
// kill list for process exit, not state any test reads.
const livePgids = new Set<number>();
process.on('exit', () => {
  for (const pgid of livePgids) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: nothing left in the group
  }
}

const OUTPUT_TAIL_BYTES = 64 * 1024;

function readTail(file: string): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const length = Math.min(size, OUTPUT_TAIL_BYTES);
      const buffer = Buffer.alloc(length);
      fs.readSync(fd, buffer, 0, length, size - length);
      return buffer.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** Starts a daemon in its own process group and waits until its ports accept connections. */
export async function startDaemon(spec: DaemonSpec): Promise<Daemon> {
  const outputFile = path.join(spec.dir, `${spec.name}.out`);
  const outFd = fs.openSync(outputFile, 'a');
  const child = spawn(spec.command, spec.args, {
    cwd: spec.dir,
    env: spec.env ?? process.env,
    detached: true, // setsid: own process group, so killGroup reaches forked workers too
    stdio: ['ignore', outFd, outFd],
  });
  fs.closeSync(outFd);
  let status: ExitStatus | null = null;
  let spawnError: Error | null = null;
  child.on('exit', (code, signal) => (status = { code, signal }));
  child.on('error', (error) => (spawnError = error));
  const pid = child.pid;
  if (pid === undefined) {
    await sleep(10);
    throw new Error(`${spec.name}: could not spawn ${spec.command}: ${String(spawnError)}`);
  }
  livePgids.add(pid);
  child.unref();

  let stopped = false;
  const daemon: Daemon = {
    name: spec.name,
    pid,
    dir: spec.dir,
    ports: spec.ports,
    output: () =>
      [outputFile, ...(spec.logFiles ?? [])]
        .map((file) => readTail(file))
        .filter(Boolean)
        .join('\n'),
    exitStatus: () => status,
    usage: () => groupUsage(pid),
    signalGroup: (signal) => killGroup(pid, signal),
    async waitGone(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (status === null || groupProcs(pid).length > 0) {
        if (Date.now() > deadline) return false;
        await sleep(20);
      }
      return true;
    },
    async stop(graceMs = 3000) {
      if (stopped) return;
      stopped = true;
      killGroup(pid, 'SIGTERM');
      if (!(await daemon.waitGone(graceMs))) {
        killGroup(pid, 'SIGKILL');
        await daemon.waitGone(2000);
      }
      killGroup(pid, 'SIGKILL'); // children that ignored SIGTERM after their parent left
      livePgids.delete(pid);
      removeDir(spec.dir);
    },
  };

  try {
    await waitForPorts(spec.ports, spec.readyTimeoutMs ?? 10_000, () => {
      if (spawnError) return `${spec.name}: ${String(spawnError)}`;
      if (status === null) return null;
      return `${spec.name} exited (${JSON.stringify(status)}) before listening:\n${daemon.output()}`;
    });
  } catch (error) {
    const output = daemon.output();
    await daemon.stop(500);
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(message.includes(output) ? message : `${message}\n--- ${spec.name} output ---\n${output}`);
  }
  return daemon;
}

/**
 * Starts a daemon whose config needs `portCount` free ports, retrying with new ports when the start fails
 * (another test may take a port between our check and the daemon's bind).
 */
export async function startWithFreshPorts<T>(
  portCount: number,
  start: (ports: number[]) => Promise<T>,
  attempts = 3,
): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      return await start(await freePorts(portCount));
    } catch (error) {
      lastError = error;
      if (!/in use|EADDRINUSE|bind|not accepting/i.test(String(error))) break;
    }
  }
  throw lastError;
}

/** Stops every daemon given, in parallel, ignoring ones that failed to start (undefined). */
export async function stopAll(daemons: ReadonlyArray<{ stop(): Promise<void> } | undefined | null>): Promise<void> {
  await Promise.all(daemons.map((d) => d?.stop()));
}
