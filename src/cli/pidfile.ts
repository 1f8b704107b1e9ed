// The pidfile of `tsbal run` and who owns a listening port: how `tsbal reload` finds the process to signal, and how a
// second copy started by hand says `tsbal is already running (pid N)` instead of a bind error. Never fooled by a stale
// pidfile: a pid counts only while /proc says it is a `tsbal run`.
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';
import { UsageError } from './common.ts';

/** What `tsbal setup` configures on the rc.local path, and where `tsbal reload` looks by default. */
export const DEFAULT_PIDFILE = '/run/tsbal.pid';

export function readPid(pidfile: string): number {
  let text: string;
  try {
    text = readFileSync(pidfile, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${pidfile}: ${(error as NodeJS.ErrnoException).code ?? String(error)} (is tsbal run started with --pidfile ${pidfile}?)`);
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new UsageError(`${pidfile}: not a process id: ${JSON.stringify(text.trim().slice(0, 40))}`);
  return pid;
}

/**
 * Whether a process's argv (the NUL-separated fields of /proc/PID/cmdline) is a `tsbal run`: an argument names the
 * tsbal program (the binary, dist/tsbal.cjs, or src/cli/main.ts under Bun) and a later one is `run`.
 */
export function looksLikeTsbalRun(argv: readonly string[]): boolean {
  const program = argv.findIndex((a) => basename(a).startsWith('tsbal') || a.endsWith('cli/main.ts'));
  return program >= 0 && argv.slice(program + 1).includes('run');
}

/** The argv of a running process, or null when it is gone (or there is no /proc). */
export function processArgv(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  } catch {
    return null;
  }
}

/** The parent of a process, from /proc/PID/stat (null when it is gone). */
function parentPid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: the fields after it start at the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) && ppid > 1 ? ppid : null;
  } catch {
    return null;
  }
}

/** A path the process `pid` was given, made absolute against that process's working directory. */
export function pathOfProcess(pid: number, path: string): string {
  if (isAbsolute(path)) return path;
  try {
    return resolve(readlinkSync(`/proc/${pid}/cwd`), path);
  } catch {
    return path;
  }
}

/** The value of `-c`/`--config` in a `tsbal run` argv, if it names one. */
export function configOfArgv(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === '-c' || a === '--config') && i + 1 < argv.length) return argv[i + 1];
    if (a.startsWith('--config=')) return a.slice('--config='.length);
  }
  return undefined;
}

/**
 * The pid a pidfile names when that process is a running `tsbal run` other than this process and its parent (the
 * supervisor of an engine shares its pidfile); null for a missing or stale pidfile.
 */
export function runningFromPidfile(pidfile: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(pidfile, 'utf8').trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || pid === process.ppid) return null;
  const argv = processArgv(pid);
  return argv !== null && looksLikeTsbalRun(argv) ? pid : null;
}

/**
 * Refuses to signal a pid that is not a `tsbal run`: a pidfile left by a crash or kill -9 may name a pid the kernel
 * has since given to another program, and SIGHUP's default action would kill it. Skipped where there is no /proc.
 */
export function assertTsbalRun(pid: number, pidfile: string): void {
  if (!existsSync('/proc/self/cmdline')) return;
  const argv = processArgv(pid);
  if (argv === null) throw new UsageError(`cannot signal pid ${pid} from ${pidfile}: ESRCH (stale pidfile?)`);
  if (!looksLikeTsbalRun(argv)) {
    throw new UsageError(
      `${pidfile}: pid ${pid} is not tsbal run (it is ${JSON.stringify(argv.join(' ').slice(0, 80))}); stale pidfile? (nothing was signalled)`,
    );
  }
}

export function writePidfile(pidfile: string): void {
  try {
    writeFileSync(pidfile, `${process.pid}\n`);
  } catch (error) {
    throw new UsageError(`--pidfile: cannot write ${pidfile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** Removes the pidfile if it still names this process (a newer copy may have written its own). */
export function removeOwnPidfile(pidfile: string): void {
  try {
    if (Number(readFileSync(pidfile, 'utf8').trim()) === process.pid) rmSync(pidfile, { force: true });
  } catch {
    // Gone already.
  }
}

/** The /proc/net/tcp{,6} form of a listening address: `0100007F:1F90` for 127.0.0.1:8080 (IPv4 only; null otherwise). */
export function procNetAddress(host: string, port: number): string | null {
  const octets = host.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return null;
  const hex = (n: number, width: number): string => n.toString(16).toUpperCase().padStart(width, '0');
  return `${octets.reverse().map((o) => hex(o, 2)).join('')}:${hex(port, 4)}`;
}

/** /proc/net/tcp6's `[host]:port`: the 16 bytes as four 32-bit words, each in the host's (little-endian) order. */
export function procNet6Address(host: string, port: number): string | null {
  const halves = host.split('::');
  if (halves.length > 2 || !/^[0-9a-f:]+$/i.test(host)) return null;
  const groups = (h: string | undefined): string[] => (h === undefined || h === '' ? [] : h.split(':'));
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return null;
  const words = [...head, ...Array<string>(halves.length === 1 ? 0 : fill).fill('0'), ...tail];
  if (words.some((w) => !/^[0-9a-f]{1,4}$/i.test(w))) return null;
  const bytes = words.flatMap((w) => [parseInt(w, 16) >> 8, parseInt(w, 16) & 0xff]);
  const hex = (n: number, width: number): string => n.toString(16).toUpperCase().padStart(width, '0');
  let out = '';
  for (let w = 0; w < 16; w += 4) for (let b = 3; b >= 0; b--) out += hex(bytes[w + b]!, 2);
  return `${out}:${hex(port, 4)}`;
}

/**
 * Socket inodes listening on host:port (or on its family's wildcard, which also takes host) in this network
 * namespace: /proc/net/tcp, or tcp6 for an IPv6 host.
 */
function listeningInodes(host: string, port: number, anyAddress = false): Set<string> {
  const v6 = host.includes(':');
  const wanted = new Set((v6 ? [procNet6Address(host, port), procNet6Address('::', port)] : [procNetAddress(host, port), procNetAddress('0.0.0.0', port)]).filter((a): a is string => a !== null));
  const portSuffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  let table: string;
  try {
    table = readFileSync(v6 ? '/proc/net/tcp6' : '/proc/net/tcp', 'utf8');
  } catch {
    return inodes;
  }
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] === '0A' && (wanted.has(f[1] ?? '') || (anyAddress && (f[1] ?? '').endsWith(portSuffix))) && f[9] !== undefined) inodes.add(f[9]);
  }
  return inodes;
}

/** Socket inodes of unix sockets listening on `path` in this network namespace (/proc/net/unix, flag __SO_ACCEPTCON). */
function unixListeningInodes(path: string): Set<string> {
  const inodes = new Set<string>();
  let table: string;
  try {
    table = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return inodes;
  }
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[7] === path && (parseInt(f[3] ?? '0', 16) & 0x10000) !== 0 && f[6] !== undefined) inodes.add(f[6]);
  }
  return inodes;
}

/** The pid of a process holding a socket listening on host:port here, found through /proc; null when none is seen. */
export function listenerPid(host: string, port: number): number | null {
  return ownerOfSockets(listeningInodes(host, port));
}

/** The pid of a process holding one of these socket inodes (a scan of /proc/PID/fd); null when none is seen. */
function ownerOfSockets(inodes: ReadonlySet<string>): number | null {
  if (inodes.size === 0) return null;
  const links = new Set([...inodes].map((i) => `socket:[${i}]`));
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (links.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return Number(pid);
      } catch {
        // Closed meanwhile.
      }
    }
  }
  return null;
}

/** How a running `tsbal run` is named: its supervisor's pid first when it has one (the pid to signal). */
function runningName(holder: number): string | null {
  let pid = holder;
  let argv = processArgv(pid);
  if (argv === null || !looksLikeTsbalRun(argv)) return null;
  // A worker of SERVER workers (src/proxy/workers/) holds the port: name its owner, the tsbal run that was started.
  const owner = argv.includes('--worker') ? parentPid(pid) : null;
  if (owner !== null) {
    pid = owner;
    argv = processArgv(pid);
    if (argv === null || !looksLikeTsbalRun(argv)) return null;
  }
  const parent = parentPid(pid);
  const parentArgv = parent === null ? null : processArgv(parent);
  return parent !== null && parentArgv !== null && looksLikeTsbalRun(parentArgv) && parentArgv.includes('--supervise') ? `pid ${parent}, engine pid ${pid}` : `pid ${pid}`;
}

/**
 * The HA engine's refusal to start beside another on the same state dir, said as `tsbal is already running (pid N)`
 * when the socket's owner is a `tsbal run` (a standby node whose listeners wait for the VIP has no port to collide on).
 */
export function explainHaStartError(message: string): string {
  const m = /another tsbal HA engine is running with state dir (.+) \((.+) answers\)$/.exec(message);
  if (m === null) return message;
  const pid = ownerOfSockets(unixListeningInodes(m[2]!));
  const who = pid === null || pid === process.pid ? null : runningName(pid);
  return who === null ? message : `tsbal is already running (${who}, its HA engine answers on ${m[2]}); stop it first, or use tsbal reload to apply a new config`;
}

/**
 * A bind error of `tsbal run` said plainly when the address is taken: by another `tsbal run` (`tsbal is already
 * running (pid N)`) or by another program (named). Other errors come back unchanged.
 */
export function explainBindError(message: string): string {
  const m = /cannot listen on (?:\[([0-9a-f:]+)\]|([0-9.]+)):(\d+): EADDRINUSE/.exec(message);
  if (m === null) return message;
  const [host, port] = [m[1] ?? m[2]!, Number(m[3])];
  let pid = listenerPid(host, port);
  // A wildcard collides with a listener on any one address of the port: name that holder too.
  const onOther = pid === null && (host === '0.0.0.0' || host === '::');
  if (onOther) pid = ownerOfSockets(listeningInodes(host, port, true));
  if (pid === null || pid === process.pid) return message;
  const where = onOther ? `port ${port} of an address of this host` : `${host.includes(':') ? `[${host}]` : host}:${port}`;
  // A supervised engine is named with its supervisor, the pid to signal (its pidfile's).
  const who = runningName(pid);
  if (who !== null) return `tsbal is already running (${who}, listening on ${where}); stop it first, or use tsbal reload to apply a new config`;
  return `${message}; pid ${pid} (${(processArgv(pid) ?? ['?']).join(' ').slice(0, 60)}) listens ${onOther ? `on ${where}` : 'there'}`;
}
