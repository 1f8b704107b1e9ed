// `tsbal run --supervise` (the default with --daemon, the rc.local path): a small parent that runs the engine as its
// child and starts it again when it dies abnormally (a signal such as kill -9 or the OOM killer, or a non-zero exit).
// Without it a crashed engine leaves the VIP configured and refusing connections until the peer's deadtime; with it a
// crash costs about a second. SIGTERM/SIGINT are forwarded and waited for (the engine drains within --drain-timeout);
// SIGHUP is forwarded (reload, log reopen). systemd does the same for its path with Restart=on-failure.
import { spawn, type ChildProcess } from 'node:child_process';
import type { LogFile } from '../log-file.ts';
import { log } from '../log.ts';
import { selfInvocation } from '../runtime/self.ts';
import { reopenLogFile } from './common.ts';
import { removeOwnPidfile, writePidfile } from './pidfile.ts';

/** The same values as the systemd unit's RestartSec / StartLimitIntervalSec / StartLimitBurst (src/setup/render.ts). */
export const RESTART_POLICY = { delayMs: 250, windowMs: 60_000, burst: 5 } as const;

export type RestartDecision = { kind: 'restart'; delayMs: number; recent: number } | { kind: 'give-up'; recent: number };

/**
 * Pure: whether to start the engine again after the crash at `now`, given the times of the restarts already made.
 * Like systemd's start limit: at most `burst` restarts in `windowMs`, then give up (a crash loop is for the admin,
 * and the peer takes over at deadtime).
 */
export function decideRestart(restartsAt: readonly number[], now: number, policy: { delayMs: number; windowMs: number; burst: number } = RESTART_POLICY): RestartDecision {
  const recent = restartsAt.filter((t) => now - t < policy.windowMs).length;
  if (recent >= policy.burst) return { kind: 'give-up', recent };
  return { kind: 'restart', delayMs: policy.delayMs, recent: recent + 1 };
}

/** The engine's arguments: the supervisor's, without the flags that are the supervisor's own. */
export function engineArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--supervise' || a === '--no-supervise' || a === '--daemon' || a.startsWith('--pidfile=')) continue;
    if (a === '--pidfile') {
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** Set in the environment of a child that reports its startup on fd 3 (`ready`, or the error): see run.ts. */
export const STARTUP_PIPE_ENV = 'TSBAL_DAEMON_CHILD';

/** Set in the engine's environment: the supervisor's pid, which takes the signals (`tsbal reload` sends SIGHUP there). */
export const SUPERVISOR_PID_ENV = 'TSBAL_SUPERVISOR_PID';

/** The pid that admins and `tsbal reload` signal for this engine: its supervisor's when it has one, else its own. */
export function signalledPid(): number {
  return process.env[SUPERVISOR_PID_ENV] === String(process.ppid) ? process.ppid : process.pid;
}

export interface SuperviseOptions {
  /** `run ...` for the engine. */
  engineArgv: string[];
  pidfile: string | undefined;
  drainTimeoutMs: number;
  logFile: LogFile | null;
  /** Tells whoever started the supervisor how the first start went (the --daemon parent's pipe). */
  reportStartup: (message: string) => void;
  /** Run after every exit of the engine, before a restart (anycast mode withdraws its VIP: src/anycast/run.ts). */
  onEngineExit?: () => Promise<void>;
}

interface Started {
  child: ChildProcess;
  /** `ready`, or why it did not start (its last words on fd 3). */
  report: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Set once it reported ready: before that it has no SIGHUP handler, and SIGHUP's default action would kill it. */
  ready: boolean;
}

function startEngine(argv: readonly string[]): Started {
  const self = selfInvocation();
  const child = spawn(self.command, [...self.args, ...argv], {
    // Its own process group: a Ctrl-C on the terminal reaches the supervisor only, which passes it on once (the
    // engine takes a second SIGINT as "stop now").
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    env: { ...process.env, [STARTUP_PIPE_ENV]: '1', [SUPERVISOR_PID_ENV]: String(process.pid) },
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', () => resolve({ code: 127, signal: null }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const report = new Promise<string>((resolve) => {
    let text = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
    if (pipe === null) return resolve('');
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => (text += d));
    pipe.on('error', () => resolve(text));
    pipe.on('end', () => resolve(text));
  });
  const started: Started = { child, report, exited, ready: false };
  void report.then((r) => (started.ready = r.startsWith('ready')));
  return started;
}

const describeExit = (e: { code: number | null; signal: NodeJS.Signals | null }): string => (e.signal !== null ? `killed by ${e.signal}` : `exit code ${e.code}`);

/** Runs the engine under supervision until SIGTERM/SIGINT or a clean exit; resolves to the exit code for the supervisor. */
export function supervise(o: SuperviseOptions): Promise<number> {
  const slog = log.withTag('supervisor');
  const restartsAt: number[] = [];
  return new Promise<number>((resolve) => {
    let stopping: NodeJS.Signals | null = null;
    let restartTimer: NodeJS.Timeout | null = null;
    /** Set once the first engine reported ready: from then on a death is restarted, before it is a failed start. */
    let supervising = false;
    const finish = (code: number): void => {
      if (o.pidfile !== undefined) removeOwnPidfile(o.pidfile);
      resolve(code);
    };

    const watch = (started: Started): void => {
      const startedAt = Date.now();
      void started.exited.then(async (e) => {
        if (started !== current) return;
        await o.onEngineExit?.();
        if (stopping !== null) {
          slog.info(`engine (pid ${started.child.pid}) stopped (${describeExit(e)})`);
          if (!supervising) o.reportStartup(`stopped by ${stopping} during startup\n`);
          // An engine still starting has no handler yet and dies of the signal itself: that is a stop too.
          return finish(e.code === 0 || e.signal === stopping ? 0 : 1);
        }
        // The first start's failure is reported below, not restarted ('exit' can come before the pipe's end: wait for it).
        if (started === first && !(await started.report).startsWith('ready')) return;
        if (stopping !== null) return;
        if (e.signal === null && e.code === 0) {
          slog.info(`engine (pid ${started.child.pid}) exited on its own (exit code 0): stopping`);
          return finish(0);
        }
        const now = Date.now();
        const decision = decideRestart(restartsAt, now);
        const ran = `${((now - startedAt) / 1000).toFixed(1)} s`;
        if (decision.kind === 'give-up') {
          slog.error(
            `engine (pid ${started.child.pid}) died (${describeExit(e)}) after ${ran}; it was restarted ${decision.recent} times in ` +
              `${RESTART_POLICY.windowMs / 1000} s: giving up (see the lines above; start it again when fixed)`,
          );
          return finish(1);
        }
        restartsAt.push(now);
        slog.error(`engine (pid ${started.child.pid}) died (${describeExit(e)}) after ${ran}: starting it again in ${decision.delayMs} ms (restart ${decision.recent} of at most ${RESTART_POLICY.burst} in ${RESTART_POLICY.windowMs / 1000} s)`);
        restartTimer = setTimeout(() => {
          restartTimer = null;
          current = startEngine(o.engineArgv);
          watch(current);
          const pid = current.child.pid;
          void current.report.then((r) => {
            if (r.startsWith('ready')) slog.info(`engine started again (pid ${pid})`);
          });
        }, decision.delayMs);
      });
    };

    const stop = (signal: NodeJS.Signals): void => {
      if (restartTimer !== null) {
        clearTimeout(restartTimer);
        restartTimer = null;
        slog.info(`${signal}: stopping (no engine running)`);
        return finish(0);
      }
      if (stopping !== null) {
        slog.warn(`${signal} again: passing it on to the engine (pid ${current.child.pid}), which then stops at once`);
        current.child.kill(signal);
        return;
      }
      stopping = signal;
      slog.info(`${signal}: stopping the engine (pid ${current.child.pid}; it drains for up to ${o.drainTimeoutMs / 1000} s)`);
      current.child.kill(signal);
      // Backstop: the engine ends its own drain at --drain-timeout; after that and the VIP's release, it is stuck.
      const stuck = current.child;
      setTimeout(() => {
        if (stuck.exitCode === null && stuck.signalCode === null) {
          slog.error(`engine (pid ${stuck.pid}) still running ${o.drainTimeoutMs / 1000 + 10} s after ${signal}: killing it`);
          stuck.kill('SIGKILL');
        }
      }, o.drainTimeoutMs + 10_000).unref();
    };
    // Installed before the first engine starts: a SIGTERM then must not kill this process and orphan the engine.
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      reopenLogFile(o.logFile);
      if (stopping !== null || restartTimer !== null) return;
      // An engine still starting reads the config as it is now anyway.
      if (current.ready) current.child.kill('SIGHUP');
      else slog.info(`SIGHUP: the engine (pid ${current.child.pid}) is still starting; it reads the current config`);
    });

    const first = startEngine(o.engineArgv);
    let current = first;
    watch(current);
    // The first start decides what the --daemon parent (or the terminal) is told: a config error is not restarted.
    void Promise.race([first.report, first.exited.then(() => first.report)]).then(async (report) => {
      if (stopping !== null) return;
      if (!report.startsWith('ready')) {
        // The engine has printed why on the stderr it shares with this process; the --daemon parent gets it here.
        const why = report.trim() || `the engine exited during startup (${describeExit(await first.exited)})`;
        o.reportStartup(`${why}\n`);
        await first.exited;
        return resolve(1);
      }
      supervising = true;
      if (o.pidfile !== undefined) writePidfile(o.pidfile);
      o.reportStartup('ready\n');
      slog.info(`supervising the engine (pid ${first.child.pid}); it is started again if it dies abnormally`);
    });
  });
}
