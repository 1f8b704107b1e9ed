// Every way tsbal ships or runs, as a command line a test can spawn, and the demo as a real child process.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { ProgramForm, RuntimeName } from '../../src/runtime/self.ts';
import type { WorkerSource } from '../../src/runtime/worker.ts';
import { CLI_ENTRY } from '../harness/cli.ts';
import { BUN, cleanEnv, DENO, type Dist, NODE22, QEMU_ARM64, NODE20 } from '../harness/dist.ts';

export interface Program {
  label: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  runtime: RuntimeName;
  form: ProgramForm;
  workers: WorkerSource;
  /** Put before the re-run command tsbal reports (qemu for the arm64 binary). */
  runPrefix: string[];
  /** Emulated: give each step more time. */
  slow: boolean;
  /** The runtime version must start with this (the Node 20 run must really be Node 20). */
  runtimeVersion?: string;
}

/**
 * The programs under test. The binaries get an empty environment except PATH, which points at `emptyDir`: no node,
 * bun or deno anywhere (what `env -i` plus a PATH without node means on a machine with no Node installed).
 */
export function programs(dist: Dist, emptyDir: string): Program[] {
  const script = (label: string, command: string, args: string[], form: ProgramForm, workers: WorkerSource): Program => ({
    label,
    command,
    args,
    env: cleanEnv(),
    runtime: form === 'node-script' ? 'node' : form === 'bun-script' ? 'bun' : 'deno',
    form,
    workers,
    runPrefix: [],
    slow: false,
  });
  const binary = (label: string, file: string, runtime: RuntimeName, form: ProgramForm): Program => ({
    label,
    command: file,
    args: [],
    env: { PATH: emptyDir },
    runtime,
    form,
    workers: 'embedded',
    runPrefix: [],
    slow: false,
  });
  return [
    { ...script('Node 20 dist/tsbal.cjs', NODE20, [dist.bundle], 'node-script', 'embedded'), runtimeVersion: '20.' },
    { ...script('Node 22 dist/tsbal.cjs', NODE22, [dist.bundle], 'node-script', 'embedded'), runtimeVersion: '22.' },
    script('Bun src/cli/main.ts', BUN, [CLI_ENTRY], 'bun-script', 'file'),
    script('Bun dist/tsbal.cjs', BUN, [dist.bundle], 'bun-script', 'embedded'),
    script('Deno src/cli/main.ts', DENO, ['run', '-A', CLI_ENTRY], 'deno-script', 'file'),
    script('Deno dist/tsbal.cjs', DENO, ['run', '-A', dist.bundle], 'deno-script', 'embedded'),
    binary('Node SEA dist/tsbal (env -i)', dist.sea, 'node', 'node-sea'),
    binary('Bun binary dist/tsbal-bun (env -i)', dist.bun, 'bun', 'bun-binary'),
    {
      ...binary('Node SEA dist/tsbal-linux-arm64 (env -i, qemu-aarch64)', QEMU_ARM64.command, 'node', 'node-sea'),
      args: [...QEMU_ARM64.args, dist.seaArm64],
      runPrefix: [QEMU_ARM64.command, ...QEMU_ARM64.args],
      slow: true,
    },
  ];
}

// eslint-disable-next-line no-control-regex
export const stripAnsi = (text: string): string => text.replace(/\x1b\[[0-9;]*m/g, '');

export interface RunningDemo {
  url: string;
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then the exit status (SIGKILL to the group after `graceMs`). */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `tsbal demo --port 0` in its own process group; resolves once it prints the URL to open. */
export function startDemo(program: Program, timeoutMs: number): Promise<RunningDemo> {
  const child = spawn(program.command, [...program.args, 'demo', '--port', '0'], {
    env: program.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitWaiters: Array<() => void> = [];
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    for (const wake of exitWaiters) wake();
  });
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const demo = (url: string): RunningDemo => ({
    url,
    child,
    output: () => output,
    async stop(graceMs = 5000) {
      if (exited === null) {
        killGroup('SIGTERM');
        const timer = setTimeout(() => killGroup('SIGKILL'), graceMs);
        await new Promise<void>((resolve) => (exited === null ? exitWaiters.push(resolve) : resolve()));
        clearTimeout(timer);
      }
      killGroup('SIGKILL'); // the demo's own children, if it ever has any
      return exited ?? { code: null, signal: null };
    },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup('SIGKILL');
      reject(new Error(`${program.label}: no URL printed within ${timeoutMs} ms; output:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const match = /http:\/\/127\.0\.0\.1:\d+\//.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(demo(match[0]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('exit', () => {
      clearTimeout(timer);
      reject(new Error(`${program.label}: demo exited (${JSON.stringify(exited)}) before printing a URL:\n${output}`));
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** One GET on a fresh connection. */
export function httpGet(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}
