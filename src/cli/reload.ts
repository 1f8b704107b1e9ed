// `tsbal reload --pidfile P [-c perlbal.conf]`: ask a running `tsbal run` to reload its config (SIGHUP), after
// validating the config first when -c names it (like `nginx -t && nginx -s reload`). The outcome is in run's log.
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { defineCommand } from 'citty';
import { applyLogArgs, guarded, logArgs, UsageError } from './common.ts';
import { loadConfig } from './run.ts';

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

/**
 * Refuses to signal a pid that is not a `tsbal run`: a pidfile left by a crash or kill -9 may name a pid the kernel
 * has since given to another program, and SIGHUP's default action would kill it. Skipped where there is no /proc.
 */
function assertTsbalRun(pid: number, pidfile: string): void {
  if (!existsSync('/proc/self/cmdline')) return;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot signal pid ${pid} from ${pidfile}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'ESRCH' : String(error)} (stale pidfile?)`);
  }
  const argv = cmdline.split('\0').filter((a) => a !== '');
  if (!looksLikeTsbalRun(argv)) {
    throw new UsageError(
      `${pidfile}: pid ${pid} is not tsbal run (it is ${JSON.stringify(argv.join(' ').slice(0, 80))}); stale pidfile? (nothing was signalled)`,
    );
  }
}

export default defineCommand({
  meta: { name: 'reload', description: 'Make a running tsbal run reload its config (SIGHUP) without dropping connections' },
  args: {
    ...logArgs,
    pidfile: { type: 'string', description: 'the pidfile tsbal run --pidfile writes (required)' },
    config: { type: 'string', alias: 'c', description: 'validate this perlbal.conf first; send nothing if it has errors' },
  },
  run: ({ args }) =>
    guarded(() => {
      applyLogArgs(args);
      if (args.pidfile === undefined) throw new UsageError('--pidfile is required (the file tsbal run --pidfile writes)');
      if (args.config !== undefined) loadConfig(args.config);
      const pid = readPid(args.pidfile);
      assertTsbalRun(pid, args.pidfile);
      try {
        process.kill(pid, 'SIGHUP');
      } catch (error) {
        throw new UsageError(`cannot signal pid ${pid} from ${args.pidfile}: ${(error as NodeJS.ErrnoException).code ?? String(error)} (stale pidfile?)`);
      }
      console.log(`sent SIGHUP to tsbal run (pid ${pid}); it logs the outcome ("reload OK" or "reload FAILED")`);
    }),
});
