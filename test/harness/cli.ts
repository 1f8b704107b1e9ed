// Runs the tsbal CLI from source (under Bun) as a real child process.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI_ENTRY = `${REPO_ROOT}src/cli/main.ts`;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd ?? REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/**
 * `tsbal <args>` from the TypeScript source, run by the Bun that runs the tests; with TSBAL_TEST_BIN set (see
 * tsbal.ts), that executable instead.
 */
export function runTsbal(args: string[], options: Parameters<typeof runCommand>[2] = {}): Promise<RunResult> {
  const bin = process.env.TSBAL_TEST_BIN;
  if (bin) return runCommand(bin.startsWith('/') ? bin : `${REPO_ROOT}${bin}`, args, options);
  return runCommand(process.execPath, [CLI_ENTRY, ...args], options);
}
