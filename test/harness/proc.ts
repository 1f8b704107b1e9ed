// Child processes for multi-host tests: a handle killable by PID, output kept (bounded) for diagnostics,
// and a bounded poll helper. Nothing here knows about namespaces.
import { spawn as spawnChild } from 'node:child_process';

/** Output kept per stream; older bytes are dropped so a chatty daemon cannot exhaust memory. */
const OUTPUT_LIMIT = 512 * 1024;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProcHandle {
  readonly pid: number;
  readonly label: string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  /** Null while running. */
  exit(): Exit | null;
  stdout(): string;
  stderr(): string;
  /** Called with every complete stdout line from now on. */
  onLine(listener: (line: string) => void): void;
  /** Signals the process by PID; a no-op once it has exited. */
  kill(signal?: NodeJS.Signals): void;
}

export interface ExecResult extends Exit {
  stdout: string;
  stderr: string;
}

function appendBounded(buffer: string, chunk: string): string {
  const joined = buffer + chunk;
  return joined.length > OUTPUT_LIMIT ? joined.slice(joined.length - OUTPUT_LIMIT) : joined;
}

export function spawnProc(argv: readonly string[], options: { label?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): ProcHandle {
  const [command, ...args] = argv;
  if (command === undefined) throw new Error('spawnProc: empty argv');
  // detached: own process group, so a Ctrl-C aimed at the test runner does not reach the daemons mid-teardown.
  const child = spawnChild(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`spawnProc: could not start ${argv.join(' ')}`);
  const pid = child.pid;
  let out = '';
  let err = '';
  let partial = '';
  let result: Exit | null = null;
  const listeners: Array<(line: string) => void> = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out = appendBounded(out, chunk);
    partial += chunk;
    let newline = partial.indexOf('\n');
    while (newline >= 0) {
      const line = partial.slice(0, newline);
      partial = partial.slice(newline + 1);
      for (const listener of listeners) listener(line);
      newline = partial.indexOf('\n');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err = appendBounded(err, chunk)));
  const exited = new Promise<Exit>((resolve) => {
    child.on('error', (error) => {
      err = appendBounded(err, `spawn error: ${error.message}\n`);
      result ??= { code: null, signal: null };
      resolve(result);
    });
    child.on('close', (code, signal) => {
      result = { code, signal };
      resolve(result);
    });
  });
  child.unref();
  return {
    pid,
    label: options.label ?? argv.join(' '),
    exited,
    exit: () => result,
    stdout: () => out,
    stderr: () => err,
    onLine: (listener) => void listeners.push(listener),
    kill(signal = 'SIGTERM') {
      if (result !== null) return;
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone between the check and the signal.
      }
    },
  };
}

/** Runs a command to completion; SIGKILLs it after timeoutMs. Never rejects on a non-zero exit. */
export async function execProc(argv: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
  const [command, ...args] = argv;
  if (command === undefined) throw new Error('execProc: empty argv');
  return new Promise((resolve) => {
    const child = spawnChild(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = appendBounded(stdout, d)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = appendBounded(stderr, d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 10_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: stderr + `spawn error: ${error.message}\n` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Like execProc, but a non-zero exit throws with the command and its stderr. */
export async function execOk(argv: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const result = await execProc(argv, options);
  if (result.code !== 0) {
    throw new Error(`${argv.join(' ')} failed (code ${result.code}, signal ${result.signal}): ${result.stderr.trim()}`);
  }
  return result.stdout;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` until it returns a value other than undefined, at most timeoutMs. On timeout it throws with
 * `what` and the last observation, so a failing test says what it waited for and what it saw instead.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs: number; intervalMs?: number; describe?: () => Promise<string> | string },
): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 20;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() >= deadline) {
      const seen = options.describe ? `; last seen: ${await options.describe()}` : '';
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${seen}`);
    }
    await sleep(interval);
  }
}

/** Wall-clock milliseconds with sub-ms precision, comparable across processes on this host. */
export const wallNow = (): number => performance.timeOrigin + performance.now();
