// V8 flags `tsbal run` wants, and how each program form gets them. V8 reads heap sizes once, when the isolate is
// made: v8.setFlagsFromString at startup has no effect on them (measured: the new space still grew to 32 MiB), so
// the flags must be on the command line. The Node SEA binary has them baked in (sea-config execArgv, see
// build/pkg-sea.ts); a script under Node >= 22.15 re-executes itself in place (process.execve: same pid, so
// systemd and pidfiles see no change); Node 20 cannot, and runs without them unless started with them. Bun and
// Deno do not run V8 (Bun) or take these flags the same way (Deno), and are left alone.
import { currentProcessFacts, describeSelf, type ProcessFacts } from './self.ts';

/**
 * Semi-space capped at 2 MiB (V8's default grows it to 16 MiB under load, so the young generation alone took
 * 32 MiB): RSS at wrk -c256 dropped from about 94 to 75 MiB at 4 MiB with the same CPU per request (bench/proxy,
 * same run), and 2 MiB takes 3-4 MiB more off (the new space 7.0 -> 4.0 MiB at wrk -c64; 3 rounds up to 4) for about
 * 1 % more main-thread instructions per kept-alive request (callgrind, bench/proxy/instructions.ts).
 */
export const RUN_V8_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/** Set in the re-executed process, so a runtime that drops the flags cannot make it loop. */
export const REEXEC_MARKER = 'TSBAL_V8_FLAGS_APPLIED';

export type V8FlagsPlan =
  | { kind: 'present' }
  | { kind: 'reexec'; command: string; argv: string[] }
  | { kind: 'skip'; reason: string };

/** Pure: what to do so the process runs with `wanted`. */
export function planV8Flags(
  facts: ProcessFacts,
  wanted: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  canExecve: boolean,
): V8FlagsPlan {
  const missing = wanted.filter((flag) => !facts.execArgv.includes(flag));
  if (missing.length === 0) return { kind: 'present' };
  const self = describeSelf(facts);
  if (self.runtime !== 'node') return { kind: 'skip', reason: `${self.runtime} does not take V8 flags` };
  if (self.form !== 'node-script') return { kind: 'skip', reason: `this ${self.form} binary was built without ${missing.join(' ')}` };
  if (env[REEXEC_MARKER] !== undefined) return { kind: 'skip', reason: `${missing.join(' ')} did not survive the re-exec` };
  if (!canExecve) {
    return {
      kind: 'skip',
      reason: `Node ${self.runtimeVersion} cannot re-execute in place (process.execve: Node >= 22.15); start it as node ${missing.join(' ')} ...`,
    };
  }
  // Our flags go first: explicit ones the user gave (later on the line) win.
  return { kind: 'reexec', command: facts.execPath, argv: [facts.execPath, ...missing, ...self.args, ...facts.argv.slice(2)] };
}

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * Makes sure `tsbal run` has RUN_V8_FLAGS: returns when it has them or cannot get them (the reason is returned, to
 * log), and does not return when the process re-executes itself with them.
 */
export function ensureRunV8Flags(): string | null {
  const execve = (process as { execve?: Execve }).execve;
  const plan = planV8Flags(currentProcessFacts(), RUN_V8_FLAGS, process.env, typeof execve === 'function');
  switch (plan.kind) {
    case 'present':
      return null;
    case 'skip':
      return plan.reason;
    case 'reexec':
      return execve!.call(process, plan.command, plan.argv, { ...process.env, [REEXEC_MARKER]: '1' });
  }
}
