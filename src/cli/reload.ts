// `tsbal reload [--pidfile P | --pid N] [-c perlbal.conf] [--no-check]`: make a running `tsbal run` reload its config
// (SIGHUP), like `nginx -t && nginx -s reload` but waiting for the answer: the config is checked first (the one the
// running process was started with, unless -c names another), nothing is signalled if it has errors, and the exit
// status is the reload's: 0 applied, 1 refused (with the reasons), 3 no outcome reported in time.
import { defineCommand } from 'citty';
import { DEFAULT_STATE_DIR } from '../ha/cluster.ts';
import { applyLogArgs, guarded, logArgs, UsageError } from './common.ts';
import { assertTsbalRun, configOfArgv, DEFAULT_PIDFILE, pathOfProcess, processArgv, readPid } from './pidfile.ts';
import { readReloadStatus, reloadStatusPath, waitForReloadOutcome } from './reload-status.ts';
import { DEFAULT_PERLBAL_CONF, loadConfig } from './run.ts';

export { looksLikeTsbalRun, readPid } from './pidfile.ts';

const EXIT_NO_OUTCOME = 3;

/** The value of a `--name V` / `--name=V` flag in a running process's argv. */
function flagOfArgv(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === name && i + 1 < argv.length) return argv[i + 1];
    if (argv[i]!.startsWith(`${name}=`)) return argv[i]!.slice(name.length + 1);
  }
  return undefined;
}

function pidFrom(args: { pid?: string; pidfile?: string }): { pid: number; source: string } {
  if (args.pid !== undefined) {
    const pid = Number(args.pid);
    if (!Number.isInteger(pid) || pid <= 1) throw new UsageError(`--pid: not a process id: '${args.pid}'`, 2);
    return { pid, source: `--pid ${pid}` };
  }
  const pidfile = args.pidfile ?? DEFAULT_PIDFILE;
  try {
    return { pid: readPid(pidfile), source: pidfile };
  } catch (error) {
    // The default pidfile is the rc.local path's; the systemd unit writes none.
    if (args.pidfile === undefined && error instanceof UsageError) throw new UsageError(`${error.message}; under systemd: systemctl reload tsbal`);
    throw error;
  }
}

function checkBeforeSignal(configPath: string, pid: number | null): void {
  try {
    loadConfig(configPath);
  } catch (error) {
    if (error instanceof UsageError) {
      throw new UsageError(`${error.message}\nreload not sent: ${configPath} has errors (tsbal run${pid === null ? '' : ` ${pid}`} keeps its current config)`);
    }
    throw error;
  }
}

export default defineCommand({
  meta: { name: 'reload', description: 'Make a running tsbal run reload its config without dropping connections; waits for the outcome' },
  args: {
    ...logArgs,
    pidfile: { type: 'string', description: `the pidfile tsbal run --pidfile writes (default ${DEFAULT_PIDFILE}, what tsbal setup configures for rc.local)` },
    pid: { type: 'string', description: 'the process id instead of a pidfile (systemd: ExecReload=... --pid $MAINPID)' },
    config: { type: 'string', alias: 'c', description: 'the perlbal.conf to check first (default: the one the running process was started with)' },
    check: { type: 'boolean', description: 'check the config before signalling (default; --no-check skips it)' },
    'state-dir': { type: 'string', description: `where the running process reports the outcome (default: its --state-dir, else ${DEFAULT_STATE_DIR})` },
    timeout: { type: 'string', description: 'seconds to wait for the outcome (default 30)' },
  },
  run: ({ args }) =>
    guarded(async () => {
      applyLogArgs(args);
      const timeoutS = args.timeout === undefined ? 30 : Number(args.timeout);
      if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError(`--timeout: expected a number of seconds, got '${args.timeout}'`, 2);
      const check = args.check !== false;
      // A config named here is checked before anything else; otherwise the running process's own.
      if (check && args.config !== undefined) checkBeforeSignal(args.config, null);
      const { pid, source } = pidFrom(args);
      assertTsbalRun(pid, source);
      // What the running process was started with: its config and its state dir (a supervisor passes both on).
      const argv = processArgv(pid) ?? [];
      const runningConfig = configOfArgv(argv);
      if (check && args.config === undefined) checkBeforeSignal(runningConfig === undefined ? DEFAULT_PERLBAL_CONF : pathOfProcess(pid, runningConfig), pid);

      const runningStateDir = flagOfArgv(argv, '--state-dir');
      const statusPath = reloadStatusPath(args['state-dir'] ?? (runningStateDir === undefined ? DEFAULT_STATE_DIR : pathOfProcess(pid, runningStateDir)), pid);
      const before = readReloadStatus(statusPath);
      try {
        process.kill(pid, 'SIGHUP');
      } catch (error) {
        throw new UsageError(`cannot signal pid ${pid} from ${source}: ${(error as NodeJS.ErrnoException).code ?? String(error)} (stale pidfile?)`);
      }
      // A process that never wrote the file (another --state-dir, or a dir it cannot write) gets a short wait only.
      const outcome = await waitForReloadOutcome(statusPath, before, before === null ? Math.min(5_000, timeoutS * 1000) : timeoutS * 1000);
      switch (outcome.kind) {
        case 'ok':
          console.log(`reload OK (tsbal run pid ${pid}): ${outcome.summary}`);
          return;
        case 'failed':
          throw new UsageError(`reload FAILED (tsbal run pid ${pid} keeps its previous configuration, unchanged):\n  ${outcome.errors.join('\n  ')}`);
        case 'unknown':
          throw new UsageError(`sent SIGHUP to tsbal run (pid ${pid}), but ${outcome.why}; its log says "reload OK" or "reload FAILED"`, EXIT_NO_OUTCOME);
      }
    }),
});
