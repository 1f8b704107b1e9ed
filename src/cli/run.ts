// `tsbal run [-c perlbal.conf] [--daemon] [--supervise] [--pidfile P] [--log-file F] [--drain-timeout S] [--ha-dir D ...]`: load the
// config, start the proxy engine (and the HA engine when <ha-dir>/ha.cf exists), run in the foreground until SIGTERM/SIGINT, then
// stop gracefully (stop accepting, finish what is in flight) and exit 0. SIGHUP reloads perlbal.conf without dropping connections
// (run-reload.ts). --supervise (the default with --daemon) runs all that in a child that is restarted on a crash (supervise.ts).
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { defineCommand } from 'citty';
import { ConfigError } from '../config/errors.ts';
import type { PerlbalConfig } from '../config/model.ts';
import { loadPerlbalConfig } from '../config/perlbal.ts';
import { log } from '../log.ts';
import { startProxy, type ProxyHandle } from '../proxy/index.ts';
import { runRefusals, unservedServices } from '../proxy/roles.ts';
import { selfInvocation } from '../runtime/self.ts';
import { ensureRunV8Flags } from '../runtime/v8-flags.ts';
import { DEFAULT_DAEMON_LOG_FILE, LOG_FILE_MODE, type LogFile } from '../log-file.ts';
import { applyLogArgs, guarded, logArgs, logFileArgs, reopenLogFile, UsageError } from './common.ts';
import { DEFAULT_HA_DIR, DEFAULT_STATE_DIR, type HaHandle } from '../ha/cluster.ts';
import { scrapeHa } from '../ha/metrics.ts';
import type { MetricFamily } from '../proxy/management/metrics.ts';
import { hostOnlyKeyWarning, resolveAffinityKey, servicesOnClusterKey, type AffinityKey } from './affinity-key.ts';
import { checkHaForRun, garpArgs, haArgs, startHaForRun, type HaRunArgs } from './ha.ts';
import { explainBindError, explainHaStartError, removeOwnPidfile, runningFromPidfile, writePidfile } from './pidfile.ts';
import { prepareReloadStatusDir, reloadStatusPath, writeReloadStatus, type ReloadStatus } from './reload-status.ts';
import { reloadOnSignal, type ReloadRoundEvent } from './run-reload.ts';
import { engineArgs, signalledPid, STARTUP_PIPE_ENV, supervise } from './supervise.ts';
import { takeSnapshot } from '../status/snapshot.ts';
import { serveStatus } from '../status/socket.ts';
import { noteTransition } from '../status/transitions.ts';
import { VERSION } from '../version.ts';
import { anycastSettings } from '../config/anycast.ts';
import { ANYCAST_NO_HA, beginAnycast, checkHaUnlessAnycast, noteAnycastChange, withdrawOnEngineExit, type AnycastRun } from '../anycast/run.ts';
import { availableParallelism } from 'node:os';
import { perProcessLimits, planWorkers, portZeroServices, WORKERS_ENV, workersChangeNote, workersEnvProblem, workersSetting, type WorkersSetting } from '../proxy/workers/count.ts';
import { startOwnerProxy } from '../proxy/workers/owner.ts';

export const DEFAULT_PERLBAL_CONF = '/etc/perlbal/perlbal.conf';

/** Set in the environment of the detached child of `--daemon` (and of a supervised engine); fd 3 is its pipe back to the parent. */
const DAEMON_CHILD_ENV = STARTUP_PIPE_ENV;

/** Reads and validates perlbal.conf as `tsbal check` does; throws a UsageError of `file:line: message` lines. */
export function loadConfig(path: string): PerlbalConfig {
  let config: PerlbalConfig;
  try {
    config = loadPerlbalConfig(path);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  for (const { service: s, support } of unservedServices(config.services)) {
    if (support === 'refused') {
      throw new UsageError(
        `${s.loc.file}:${s.loc.line}: service ${s.name}: role ${s.role} is not supported by this version of tsbal run ` +
          '(it serves reverse_proxy, selector, web_server and management services)',
      );
    }
  }
  const refusals = runRefusals(config.services);
  if (refusals.length > 0) throw new UsageError(refusals.map((u) => `${u.loc.file}:${u.loc.line}: ${u.message}`).join('\n'));
  return config;
}

/**
 * The daemon child's arguments: the same, without --daemon, with the log file always named, and supervised (restarted
 * on a crash) unless --no-supervise says otherwise.
 */
export function daemonChildArgs(argv: readonly string[], logFile: string): string[] {
  const named = argv.some((a) => a === '--log-file' || a.startsWith('--log-file='));
  const supervised = argv.includes('--no-supervise') || argv.includes('--supervise') ? [] : ['--supervise'];
  return [...argv.filter((a) => a !== '--daemon'), ...(named ? [] : ['--log-file', logFile]), ...supervised];
}

/**
 * `--daemon`: start this program again, detached, without `--daemon`, and wait until the child reports that its
 * services are up (or why it failed) on fd 3. The child logs to `logFile` (its --log-file, or the default added
 * here); its stderr goes there too, so even a crash's stack trace is kept.
 */
function daemonize(argv: readonly string[], logFile: string): Promise<void> {
  const self = selfInvocation();
  const args = [...self.args, ...daemonChildArgs(argv, logFile)];
  let stderrFd: number;
  try {
    // Opened here, on the terminal's side, so a log file that cannot be written is reported before detaching.
    stderrFd = openSync(logFile, 'a', LOG_FILE_MODE);
  } catch (error) {
    throw new UsageError(`--log-file: cannot open ${logFile}: ${(error as Error).message}`);
  }
  const child = spawn(self.command, args, {
    detached: true,
    stdio: ['ignore', 'ignore', stderrFd, 'pipe'],
    env: { ...process.env, [DAEMON_CHILD_ENV]: '1' },
  });
  closeSync(stderrFd);
  return new Promise((resolve, reject) => {
    let report = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => (report += d));
    child.once('error', (e) => reject(new UsageError(`cannot start the daemon: ${e.message}`)));
    // 'close' comes after the child exited and its pipe was read to the end: the whole error message is in.
    child.once('close', (code) => reject(new UsageError(report.trim() || `the daemon exited during startup (code ${code})`)));
    pipe.on('end', () => {
      if (!report.startsWith('ready')) return;
      child.removeAllListeners('close');
      child.unref();
      (pipe as unknown as { destroy(): void }).destroy();
      resolve();
    });
  });
}

/** In the daemon child: tell the waiting parent how startup went. */
function reportToParent(message: string): void {
  if (process.env[DAEMON_CHILD_ENV] !== '1') return;
  try {
    // Synchronous: on failure the process exits right after this.
    writeSync(3, message);
    closeSync(3);
  } catch {
    // The parent is gone; nothing to tell.
  }
}

/** `--drain-timeout`: how long SIGTERM waits for requests in flight before closing what is left (HAProxy's hard-stop-after). */
export const DEFAULT_DRAIN_TIMEOUT_S = 30;

export function parseDrainTimeout(value: string | undefined): number {
  if (value === undefined) return DEFAULT_DRAIN_TIMEOUT_S * 1000;
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds < 0) {
    throw new UsageError(`--drain-timeout: expected a number of seconds (0 or more), got '${value}'`, 2);
  }
  return Math.round(seconds * 1000);
}

interface ForegroundOptions {
  configPath: string;
  pidfile: string | undefined;
  drainTimeoutMs: number;
  /** Reopened on SIGHUP, before the reload. */
  logFile: LogFile | null;
  /** Where the reload outcomes for `tsbal reload` go (reload-status.ts). */
  stateDir: string;
}

/** Keeps <state-dir>/reload-status.<pid>.json up to date for `tsbal reload`; a dir that cannot be written costs only that. */
function reloadStatusRecorder(stateDir: string): { onRound: (e: ReloadRoundEvent) => void; remove: () => void } {
  const path = reloadStatusPath(stateDir, signalledPid());
  let round = 0;
  const write = (status: ReloadStatus): void => writeReloadStatus(path, status);
  try {
    prepareReloadStatusDir(stateDir);
    write({ round, state: 'started', at: Date.now() });
  } catch (error) {
    log.warn(`cannot write ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)}): tsbal reload will not see reload outcomes`);
    return { onRound: () => undefined, remove: () => undefined };
  }
  return {
    onRound: (e) => {
      if (e.kind === 'running') write({ round: ++round, state: 'running', at: Date.now() });
      else if (e.kind === 'ok') write({ round, state: 'ok', at: Date.now(), summary: e.summary });
      else write({ round, state: 'failed', at: Date.now(), errors: e.errors });
    },
    remove: () => rmSync(path, { force: true }),
  };
}

async function runForeground(opts: ForegroundOptions, haOptions: HaRunArgs): Promise<void> {
  const { configPath, pidfile, drainTimeoutMs, logFile, stateDir } = opts;
  const startedAtMs = Date.now();
  const config = loadConfig(configPath);
  const anycastConfig = anycastSettings(config);
  if (anycastConfig !== null && haOptions['ha-dir'] !== undefined) throw new UsageError(ANYCAST_NO_HA);
  if (anycastConfig === null) checkHaForRun(haOptions);
  const proxyLog = log.withTag('proxy');
  const engines: Array<{ name: string; close: (graceful: boolean) => Promise<void> }> = [];

  // --- Proxy engine -------------------------------------------------------------------------------------------
  let proxy: ProxyHandle;
  // SHUTDOWN on the management port stops like a signal does (set once the stop handler exists).
  let requestStop: ((why: string, graceful: boolean) => void) | null = null;
  const onShutdown = (graceful: boolean, timeoutMs: number | null): void => {
    if (timeoutMs !== null) setTimeout(() => process.exit(0), timeoutMs).unref();
    requestStop?.(graceful ? 'management shutdown graceful' : 'management shutdown', graceful);
  };
  const haDirForKey = existsSync(join(haOptions['ha-dir'] ?? DEFAULT_HA_DIR, 'ha.cf')) ? (haOptions['ha-dir'] ?? DEFAULT_HA_DIR) : null;
  const onClusterKey = servicesOnClusterKey(config);
  let affinity: AffinityKey;
  try {
    affinity = resolveAffinityKey(haDirForKey, haOptions['state-dir'] ?? DEFAULT_STATE_DIR, onClusterKey.length > 0);
  } catch (error) {
    throw new UsageError(`session affinity key: ${(error as Error).message}`);
  }
  if (affinity.kind === 'generated') {
    for (const s of onClusterKey) proxyLog.warn(`${s.loc.file}:${s.loc.line}: ${hostOnlyKeyWarning(s, affinity.file)}`);
    if (affinity.created) proxyLog.info(`session affinity key generated into ${affinity.file}`);
  }
  // /metrics reads the HA engine's status when scraped, once it runs (it starts after the proxy).
  let haForMetrics: HaHandle | null = null;
  // Anycast mode: the VIP made answerable (a local route) before the proxy binds it; announced once it can serve.
  let anycast: AnycastRun | null = null;
  if (anycastConfig !== null) {
    anycast = await beginAnycast(anycastConfig).catch((e: Error) => {
      throw new UsageError(e.message);
    });
    engines.push(anycast.last);
  }
  const extraMetrics = async (): Promise<MetricFamily[]> => [
    ...(haForMetrics === null ? [] : await scrapeHa(() => haForMetrics!.status())),
    ...(anycast?.metrics() ?? []),
  ];
  const startedWorkers: WorkersSetting = workersSetting(config.server.workers, process.env[WORKERS_ENV]);
  let runningWorkers = 1;
  try {
    // SERVER workers (src/proxy/workers/): several processes serve, this one owns checks, consoles, reloads, HA.
    const workers = planWorkers(startedWorkers, { cores: availableParallelism(), versions: process.versions, portZero: portZeroServices(config), perProcess: perProcessLimits(config) });
    const envProblem = workersEnvProblem(process.env[WORKERS_ENV]);
    if (envProblem !== null) proxyLog.warn(envProblem);
    if (workers.note !== null) proxyLog.info(workers.note);
    if (workers.warning !== undefined) proxyLog.warn(workers.warning);
    const proxyOptions = { log: proxyLog, onShutdown, extraMetrics, affinityKey: affinity.key };
    runningWorkers = workers.count;
    proxy = workers.count > 1 ? await startOwnerProxy(config, { ...proxyOptions, count: workers.count }) : await startProxy(config, proxyOptions);
  } catch (error) {
    // EADDRINUSE from a copy already running says so, with its pid.
    await anycast?.last.close(false);
    throw new UsageError(explainBindError((error as Error).message));
  }
  engines.push({ name: 'proxy', close: (graceful) => proxy.close({ graceful, timeoutMs: drainTimeoutMs }) });
  // SERVER workers: the node serves before it claims a VIP. The HA engine starts only once every worker listens
  // (or waits for its address, which the HA engine's retryBind then reaches): a VIP taken earlier refuses clients.
  await proxy.started?.().catch(async (error: Error) => {
    for (const e of [...engines].reverse()) await e.close(false);
    throw new UsageError(explainBindError(error.message));
  });

  // --- HA engine ----------------------------------------------------------------------------------------------
  // Started here, after the proxy, so that taking over a VIP can call proxy.retryBind() for listeners whose
  // address was not local yet (see proxy.pendingBinds()).
  const ha = anycast !== null ? null : await startHaForRun(haOptions, proxy, (msg) => noteTransition(proxy.engine.transitions, 'ha', msg)).catch(async (error: Error) => {
    await proxy.close({ graceful: false });
    throw error instanceof UsageError ? new UsageError(explainHaStartError(error.message), error.exitCode) : error;
  });
  if (ha) {
    haForMetrics = ha;
    // Closed first (engines close in reverse order): the VIP moves to the peer, then the proxy drains.
    let haClosing = false;
    engines.push({ name: 'ha', close: () => ((haClosing = true), ha.close(drainTimeoutMs)) });
    void ha.stopped.then(() => {
      if (haClosing) return;
      log.error('the HA engine stopped on its own (its resources are released): exiting so the service restarts whole');
      process.exit(1);
    });
  }

  // `tsbal status` (src/status/): the whole process's state over <state-dir>/status.sock.
  const statusSocket = await serveStatus(
    stateDir,
    async () => (await proxy.gather?.(), takeSnapshot({ proxy, ha: ha === null ? null : { config: ha.config, status: () => ha.status() }, anycast: () => anycast?.status() ?? null, config: config.file, version: VERSION, startedAtMs })),
    log,
    anycast?.control,
  );
  if (statusSocket !== null) engines.push({ name: 'status', close: () => statusSocket.close() });
  // Only once every worker listens (the owner's own records say listening as soon as it probed the address), and
  // last pushed, so closed first: a planned stop withdraws the VIP and waits for the router before the proxy drains.
  if (anycast !== null) engines.push(await anycast.attach(proxy, log.withTag('anycast')));
  if (pidfile !== undefined) writePidfile(pidfile);
  const reloadStatus = reloadStatusRecorder(stateDir);
  reportToParent('ready\n');
  log.info(`running (${config.file}); ${proxy.listeners().length} listener(s)`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string, graceful = true): void => {
      if (stopping) {
        log.warn(`${signal} again: exiting now`);
        process.exit(1);
      }
      stopping = true;
      log.info(`${signal}: stopping${graceful ? ' (finishing requests in flight)' : ' now'}`);
      void (async () => {
        for (const e of [...engines].reverse()) await e.close(graceful);
      })().then(() => resolve());
    };
    requestStop = stop;
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    const reload = reloadOnSignal({
      configPath,
      proxy,
      load: (path) => {
        const next = noteAnycastChange(anycastConfig, loadConfig(path), log);
        const workersNote = workersChangeNote(startedWorkers, workersSetting(next.server.workers, process.env[WORKERS_ENV]), runningWorkers);
        if (workersNote !== null) log.warn(workersNote);
        return next;
      },
      haDir: ha ? (haOptions['ha-dir'] ?? DEFAULT_HA_DIR) : null,
      log,
      onRound: reloadStatus.onRound,
    });
    process.on('SIGHUP', () => {
      if (stopping) return;
      // First, so that the reload's own lines land in the new file after logrotate.
      reopenLogFile(logFile);
      void reload('SIGHUP');
    });
  });
  if (pidfile !== undefined) removeOwnPidfile(pidfile);
  reloadStatus.remove();
  log.info('stopped');
}

export default defineCommand({
  meta: { name: 'run', description: 'Run the services of perlbal.conf in the foreground (--daemon to detach)' },
  args: {
    ...logArgs,
    ...logFileArgs,
    config: { type: 'string', alias: 'c', description: `perlbal.conf to run (default ${DEFAULT_PERLBAL_CONF})` },
    daemon: { type: 'boolean', description: `detach once the services are up (logs to --log-file, default ${DEFAULT_DAEMON_LOG_FILE})` },
    pidfile: { type: 'string', description: 'write the process id to this file (removed on exit); a live tsbal run already named there refuses a second start' },
    supervise: {
      type: 'boolean',
      description: 'run the engine as a child and start it again when it crashes (default with --daemon; --no-supervise turns it off)',
    },
    'drain-timeout': {
      type: 'string',
      description: `on SIGTERM, seconds to let requests in flight finish before closing the rest (default ${DEFAULT_DRAIN_TIMEOUT_S})`,
    },
    ...haArgs,
    ...garpArgs,
  },
  run: ({ args, rawArgs }) =>
    guarded(async () => {
      applyLogArgs({ 'log-level': args['log-level'], 'log-format': args['log-format'] });
      // Re-executes in place with the heap flags where it can (before anything is opened or spawned).
      const noFlags = ensureRunV8Flags();
      if (noFlags !== null) log.debug(`running without the V8 flags tsbal run wants: ${noFlags}`);
      const configPath = args.config ?? DEFAULT_PERLBAL_CONF;
      const drainTimeoutMs = parseDrainTimeout(args['drain-timeout']);
      if (args.pidfile !== undefined) {
        const running = runningFromPidfile(args.pidfile);
        if (running !== null) throw new UsageError(`tsbal is already running (pid ${running}, from ${args.pidfile}); stop it first, or use tsbal reload to apply a new config`);
      }
      if (args.daemon) {
        // Validate first, so a config error shows up on this terminal.
        checkHaUnlessAnycast(loadConfig(configPath), args, checkHaForRun, (m) => new UsageError(m));
        await daemonize(['run', ...rawArgs], args['log-file'] ?? DEFAULT_DAEMON_LOG_FILE);
        return;
      }
      const logFile = applyLogArgs(args);
      if (args.supervise === true) {
        const supervised = loadConfig(configPath);
        checkHaUnlessAnycast(supervised, args, checkHaForRun, (m) => new UsageError(m));
        const code = await supervise({
          engineArgv: ['run', ...engineArgs(rawArgs)], pidfile: args.pidfile, drainTimeoutMs, logFile, reportStartup: reportToParent,
          onEngineExit: withdrawOnEngineExit(supervised),
        });
        process.exit(code);
      }
      const stateDir = args['state-dir'] ?? DEFAULT_STATE_DIR;
      try {
        await runForeground({ configPath, pidfile: args.pidfile, drainTimeoutMs, logFile, stateDir }, args);
      } catch (error) {
        reportToParent(`${error instanceof UsageError ? error.message : String(error)}\n`);
        throw error;
      }
      process.exit(0);
    }),
});
