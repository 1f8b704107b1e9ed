// `tsbal reload --pidfile P [-c perlbal.conf]`: ask a running `tsbal run` to reload its config (SIGHUP), after
// validating the config first when -c names it (like `nginx -t && nginx -s reload`). The outcome is in run's log.
import { readFileSync } from 'node:fs';
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
      try {
        process.kill(pid, 'SIGHUP');
      } catch (error) {
        throw new UsageError(`cannot signal pid ${pid} from ${args.pidfile}: ${(error as NodeJS.ErrnoException).code ?? String(error)} (stale pidfile?)`);
      }
      console.log(`sent SIGHUP to tsbal run (pid ${pid}); it logs the outcome ("reload OK" or "reload FAILED")`);
    }),
});
