// startProxy: runs the reverse_proxy services of a config and returns a handle to inspect, re-bind and stop them.
import type { ConsolaInstance } from 'consola';
import type { HostPort, PerlbalConfig, ServiceModel } from '../config/model.ts';
import { log as rootLog } from '../log.ts';
import { openAccessLog, type AccessLog } from './access-log.ts';
import { checkBackend, closeBackend } from './upstream/conn.ts';
import { compileService } from './compile.ts';
import { checkClient, drainClient } from './client.ts';
import { expireQueue, respondFailure, serveQueue } from './exchange.ts';
import { hasEntries } from './upstream/queue.ts';
import { bindOrDefer, listenOn } from './listener.ts';
import { newEngine, startSweep, stopSweep, type Engine } from './engine.ts';
import { unimplementedOptions } from './options.ts';
import { runRefusals, servedServices } from './roles.ts';
import { reloadProxy, type ReloadOutcome, type ReloadTarget } from './reload.ts';
import { watchNodefiles } from './nodefiles.ts';
import { newServiceRuntime, type ServiceRuntime } from './service.ts';
import { bindConsoles, closeConsoles, newConsoles, syncConsoles, type ConsoleFanOut, type ConsoleListener } from './management/listeners.ts';
import type { ManagementTarget } from './management/commands.ts';
import type { Server } from 'node:net';
import { newConfigurer } from './management/configure.ts';
import { nodeConfigFs, systemInterfaceAddress, type CommandEnv } from '../config/perlbal.ts';
import { dirname } from 'node:path';
import { newEchoListeners } from './echo.ts';
import { attachTls, pointTlsAt } from './tls/attach.ts';
import { closeSessions, goAwaySessions } from './h2/session.ts';
import { rotateTicketKeys } from './tls/context.ts';
import { newHealthChecks, stopChecks, syncChecks, tickChecks, type HealthChecks } from './upstream/checks.ts';
import { removeStaleSpools } from './spool.ts';
import type { MetricFamily } from './management/metrics.ts';
import { formatHostPort, wildcardOf } from '../config/perlbal/values.ts';

export interface ListenerInfo {
  service: string;
  host: string;
  port: number;
}

export interface BindFailure {
  service: string;
  host: string;
  port: number;
  code: string;
}

export interface ProxyHandle {
  /** Addresses actually bound (port 0 in the config shows the chosen port). */
  listeners(): ListenerInfo[];
  isListening(host: string, port: number): boolean;
  /**
   * Services whose address could not be bound because it is not local yet (EADDRNOTAVAIL: a VIP before it is
   * added, with ip_nonlocal_bind=0). The HA engine calls `retryBind()` after adding the VIP.
   */
  pendingBinds(): BindFailure[];
  retryBind(): Promise<BindFailure[]>;
  /**
   * Applies a new config without dropping connections (reload.ts); all or nothing. Reloads and retryBind run one at
   * a time.
   */
  reload(config: PerlbalConfig): Promise<ReloadOutcome>;
  /** Graceful: stop accepting, finish in-flight requests (up to `timeoutMs`), then close everything. */
  close(opts?: { graceful?: boolean; timeoutMs?: number }): Promise<void>;
  /** Adds metric families to `GET /metrics` on the management port (the HA engine's, when it runs beside). */
  /** For tests and the management role: the engine's live state. */
  readonly engine: Engine;
  readonly services: readonly ServiceRuntime[];
  /** The active health checks of every pool (one per backend address and check spec). */
  readonly checks: HealthChecks;
  /** What the management consoles read and change (a worker of SERVER workers applies the owner's changes to it). */
  readonly consoleTarget: ManagementTarget;
  /** SERVER workers: brings the owner's counters up to date with the workers' (for `tsbal status`); absent otherwise. */
  gather?(): Promise<void>;
  /** SERVER workers: resolves once every worker listens (rejects with why one could not start); absent otherwise. */
  started?(): Promise<void>;
}

/** How often the sweep re-syncs the checks with the pools (nodes added on the console or by a nodefile). */
const CHECK_SYNC_MS = 1000;

export interface StartProxyOptions {
  log?: ConsolaInstance;
  /**
   * SHUTDOWN on the management port: stop the program (`graceful`: finish requests in flight; `timeoutMs`: then exit
   * regardless, Perlbal's `shutdown graceful N`). Without it the console refuses SHUTDOWN.
   */
  onShutdown?: (graceful: boolean, timeoutMs: number | null) => void;
  /**
   * The key of `sticky` services without sticky_secret (cli/run.ts: from the cluster's authkeys, else generated once
   * into the state dir). Without it, one made for this process: affinity then ends with it.
   */
  affinityKey?: Buffer;
  /**
   * How config commands on the management port read files (INCLUDE, docroot, nodefile) and `$NAME`; default: the
   * real file system, no environment variables, relative paths from the config file's directory.
   */
  commandEnv?: CommandEnv;
  /** More families for `GET /metrics`, read when scraped (tsbal run adds the HA engine's state). */
  extraMetrics?: () => Promise<MetricFamily[]>;
  /** SERVER workers (src/proxy/workers/): this proxy's part; absent, it is the whole proxy in one process. */
  workers?: WorkersPart;
}

/** What an owner or a worker of SERVER workers does differently from a proxy alone. */
export type WorkersPart =
  | {
      kind: 'owner';
      /** A stand-in for the address the workers listen on (after making sure nobody else does). */
      bind(addr: HostPort): Promise<Server>;
      /** Each active check's result, for the workers. */
      onCheck(key: string, passed: boolean, answer: string, durationMs: number): void;
      /** After the owner applied a config (reload or console command): the workers apply it too; all or nothing. */
      apply(next: PerlbalConfig): Promise<{ ok: true } | { ok: false; errors: string[] }>;
      consoles: ConsoleFanOut;
    }
  | {
      kind: 'worker';
      /**
       * Called once the config is compiled, before any listener is bound: resolves when the owner says to listen
       * (every worker compiled), so no worker serves while the others still load.
       */
      beforeBind(): Promise<void>;
    };

/** Opens a service's listener; rejects with the system error (bindOrDefer tells "not ours yet" from a mistake). */
async function bind(svc: ServiceRuntime, addr: HostPort): Promise<void> {
  svc.server = await listenOn(svc, addr);
  svc.bindError = null;
}

async function bindAll(services: readonly ServiceRuntime[], log: ConsolaInstance): Promise<BindFailure[]> {
  const pending: BindFailure[] = [];
  for (const svc of services) {
    if (svc.server !== null || svc.opts.listen === null || !svc.enabled) continue;
    const listen = svc.opts.listen;
    const { host, port } = listen;
    const r = await bindOrDefer(svc.name, listen, async () => {
      await bind(svc, listen);
      return svc.server!;
    });
    if (r.pending === undefined) {
      const what = svc.web !== null ? `web_server, docroot ${svc.web.docroot}` : svc.selector !== null ? `selector, ${svc.selector.rules.plugin ?? 'no plugin'}` : `${svc.nodes.length} backend${svc.nodes.length === 1 ? '' : 's'}${svc.backendTls === null ? '' : ' over HTTPS'}`;
      log.info(`service ${svc.name} listening on ${r.address} (${what}${svc.tls === null ? '' : `, ${svc.tls.describe}`})`);
    } else {
      const code = r.pending.code ?? 'ERROR';
      svc.bindError = r.pending;
      log.warn(
        `service ${svc.name}: ${formatHostPort({ host, port })} is not a local address yet (${code}); ` +
          `it will be bound when the address is added (e.g. by the HA engine), or set net.ipv${host.includes(':') ? 6 : 4}.ip_nonlocal_bind=1`,
      );
      pending.push({ service: svc.name, host, port, code });
    }
  }
  return pending;
}

export async function startProxy(config: PerlbalConfig, opts: StartProxyOptions = {}): Promise<ProxyHandle> {
  const log = opts.log ?? rootLog.withTag('proxy');
  // Never serve a service with a plugin we would silently ignore (tsbal run reports this before getting here).
  const refusals = runRefusals(config.services);
  if (refusals.length > 0) throw new Error(refusals.map((u) => `${u.loc.file}:${u.loc.line}: ${u.message}`).join('\n'));
  const engine = newEngine(log, opts.affinityKey);
  const part = opts.workers ?? null;
  if (part !== null) {
    engine.listenMode = part.kind;
    if (part.kind === 'owner') {
      engine.ownerBind = part.bind;
      engine.remoteClients = new Map();
    }
  }
  const services: ServiceRuntime[] = [];
  const accessLogs = new Map<string, AccessLog>();
  const served = servedServices(config.services);
  for (const model of config.services) {
    if (model.enabled && model.role !== 'management' && model.role !== 'echo' && !served.includes(model)) {
      log.warn(`service ${model.name}: role ${model.role ?? '(none)'} is not served by this version; skipped`);
    }
  }
  for (const model of served) {
    const cfg = compileService(model, config, engine.affinityKey);
    const o = cfg.opts;
    const ignored = unimplementedOptions(model);
    if (ignored.length > 0) log.warn(`service ${o.name}: not implemented yet, ignored: ${ignored.join(', ')}`);
    let accessLog: AccessLog | null = null;
    if (o.accessLog !== null) {
      accessLog = accessLogs.get(o.accessLog) ?? openAccessLog(o.accessLog);
      accessLogs.set(o.accessLog, accessLog);
    }
    if (o.upload.bufferUploads) {
      const stale = removeStaleSpools(o.upload.path);
      if (stale.length > 0) log.info(`service ${o.name}: removed ${stale.length} upload spool file(s) left by a tsbal that is gone, in ${o.upload.path}`);
    }
    if (o.nodes.length === 0 && model.role === 'reverse_proxy') log.warn(`service ${o.name}: pool '${o.pool}' has no nodes; every request gets 503`);
    attachTls(cfg, model, config, engine.now, null, log);
    const svc = newServiceRuntime(engine, { ...cfg, accessLog });
    pointTlsAt(svc.tls, svc);
    services.push(svc);
  }
  const byName: ReadonlyMap<string, ServiceRuntime> = new Map(services.map((s) => [s.name, s]));
  for (const svc of services) if (svc.selector !== null) svc.selector.services = byName;

  engine.services = services;
  const checks = newHealthChecks(engine);
  if (part?.kind === 'worker') checks.remote = true;
  if (part?.kind === 'owner') checks.onResult = part.onCheck;
  syncChecks(checks, services);
  let nextSync = engine.now + CHECK_SYNC_MS;
  startSweep(engine, (now) => {
    tickChecks(checks, now);
    if (now >= nextSync) {
      nextSync = now + CHECK_SYNC_MS;
      syncChecks(checks, services);
    }
    for (const c of engine.clients) checkClient(c, now);
    for (const be of engine.backends) checkBackend(be, now);
    for (const svc of services) {
      if (!hasEntries(svc.queue)) continue;
      expireQueue(svc, now);
      // Slots that freed up without a request ending (a reload raised max_conns, a backend came back or was added).
      serveQueue(svc);
    }
    if (engine.noVerify.size > 0) for (const [k, until] of engine.noVerify) if (until <= now) engine.noVerify.delete(k);
    for (const svc of services) if (svc.tls !== null) rotateTicketKeys(svc.tls, now, log);
  });

  let closing: Promise<void> | null = null;
  const live: ReloadTarget = { engine, services, accessLogs, log, config, parked: new Map() };
  const commandEnv: CommandEnv = opts.commandEnv ?? {
    // No `$NAME` from the process environment: whoever reaches the console could read it back through dumpconfig.
    env: {},
    fs: nodeConfigFs,
    cwd: dirname(config.file === '' ? `${process.cwd()}/x` : config.file),
    interfaceAddress: systemInterfaceAddress,
    includeStack: [],
  };
  /** Reloads, console commands and retryBind run one at a time, each on the config the previous one left. */
  let turn: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(task: () => Promise<T>): Promise<T> => {
    const run = turn.then(task, task);
    turn = run.catch(() => {});
    return run;
  };
  /** Applies a config now (the caller holds the turn): reloadProxy, then listeners and consoles follow. */
  const reloadNow = async (next: PerlbalConfig, endConnections = false): Promise<{ outcome: ReloadOutcome; consoleErrors: string[]; consoleChanges: string[] }> => {
    const before = live.config;
    const outcome = await reloadProxy(live, next);
    if (!outcome.ok) return { outcome, consoleErrors: [], consoleChanges: [] };
    if (part?.kind === 'owner') {
      // The workers follow; one refusing (a bind the owner's probe could not foresee) undoes it everywhere.
      const workers = await part.apply(next);
      if (!workers.ok) {
        await reloadProxy(live, before);
        await part.apply(before);
        return { outcome: workers, consoleErrors: [], consoleChanges: [] };
      }
    }
    // Active checks and nodefile watches follow the pools and services as they are now.
    syncChecks(checks, services);
    nodefiles.sync(live.config);
    // A service whose address was not bindable before may be now.
    await bindAll(services, log).catch((error: Error) => log.error(`after reload: ${error.message}`));
    // A management service added, moved or removed.
    const sync = part?.kind === 'worker' ? { errors: [], changes: [] } : await syncConsoles(consoles, live.config, log, { endConnections });
    return { outcome, consoleErrors: sync.errors, consoleChanges: sync.changes };
  };
  const configurer = newConfigurer({
    current: () => live.config,
    exclusive: oneAtATime,
    // A console command is applied as a reload is: the same compile, bind-before-close and all-or-nothing commit.
    apply: async (next) => {
      if (closing !== null) return { ok: false, errors: ['the proxy is stopping'] };
      const before = live.config;
      const { outcome, consoleErrors } = await reloadNow(next);
      if (!outcome.ok) return outcome;
      if (consoleErrors.length === 0) return { ok: true, summary: outcome.summary };
      // A management port that cannot move: the whole command is undone.
      await reloadNow(before);
      return { ok: false, errors: consoleErrors };
    },
    env: commandEnv,
    log,
  });
  const consoles = newConsoles(live, (line, ctx) => configurer.run(line, ctx), opts.onShutdown ?? null, opts.extraMetrics ?? null, part?.kind === 'owner' ? part.consoles : null);
  engine.managementPages = consoles.pages;
  // EchoService's `echo` listeners are bound like consoles; they follow the config they started with (not reloads).
  const echoes = newEchoListeners(config);
  // A worker's consoles are never bound: the owner answers on the management port for all workers.
  const lineListeners = (): ConsoleListener[] => (part?.kind === 'worker' ? [] : [...consoles.list, ...echoes]);
  try {
    if (part?.kind === 'worker') await part.beforeBind();
    await bindAll(services, log);
    await bindConsoles(lineListeners(), log);
  } catch (error) {
    for (const svc of services) svc.server?.close();
    closeConsoles(lineListeners());
    stopSweep(engine);
    stopChecks(checks);
    throw error;
  }
  const nodefiles = watchNodefiles(live);
  const handle: ProxyHandle = {
    engine,
    services,
    checks,
    consoleTarget: consoles.target,
    listeners() {
      const out: ListenerInfo[] = [];
      for (const svc of services) {
        const addr = svc.server?.address();
        if (typeof addr === 'object' && addr !== null) out.push({ service: svc.name, host: addr.address, port: addr.port });
      }
      for (const c of lineListeners()) {
        const addr = c.bound ? c.console.server.address() : null;
        if (typeof addr === 'object' && addr !== null) out.push({ service: c.name, host: addr.address, port: addr.port });
      }
      return out;
    },
    isListening(host: string, port: number) {
      return handle.listeners().some((l) => l.port === port && (l.host === host || l.host === wildcardOf(host)));
    },
    pendingBinds() {
      const failures: BindFailure[] = [];
      for (const s of services) {
        if (s.server !== null || s.opts.listen === null || !s.enabled) continue;
        failures.push({ service: s.name, host: s.opts.listen.host, port: s.opts.listen.port, code: s.bindError?.code ?? 'ERROR' });
      }
      for (const c of lineListeners()) if (!c.bound) failures.push({ service: c.name, host: c.listen.host, port: c.listen.port, code: c.bindError?.code ?? 'ERROR' });
      return failures;
    },
    retryBind() {
      return oneAtATime(async () => [...(await bindAll(services, log)), ...(await bindConsoles(lineListeners(), log))]);
    },
    reload(next) {
      if (closing !== null) return Promise.resolve({ ok: false, errors: ['the proxy is stopping'] });
      return oneAtATime(async () => {
        // A management service is reloaded like any other: one removed stops listening and its console
        // connections end; one that cannot be bound undoes the whole reload, as a console command is undone.
        const before = live.config;
        const { outcome, consoleErrors, consoleChanges } = await reloadNow(next, true);
        if (!outcome.ok) return outcome;
        if (consoleErrors.length > 0) {
          await reloadNow(before);
          return { ok: false, errors: consoleErrors.map((e) => locateConsoleError(e, next)) };
        }
        if (consoleChanges.length === 0) return outcome;
        const clause = `management ${consoleChanges.join(' ')}`;
        return { ...outcome, summary: outcome.summary === 'no changes' ? clause : `${outcome.summary}; ${clause}` };
      });
    },
    close(closeOpts = {}) {
      closeConsoles(lineListeners());
      nodefiles.close();
      stopChecks(checks);
      // Services a reload removed may still finish streams of their HTTP/2 connections: those close at the end too.
      closing ??= closeEngine(engine, services, [...(live.parked?.values() ?? [])], [...accessLogs.values()], closeOpts.graceful ?? true, closeOpts.timeoutMs ?? 30_000);
      return closing;
    },
  };
  return handle;
}

/** `service <name>: ...` from a console bind, prefixed with the management service's `file:line` in `config`. */
function locateConsoleError(message: string, config: PerlbalConfig): string {
  const name = /^service (\S+):/.exec(message)?.[1];
  const model = config.services.find((m) => m.name === name);
  return model === undefined ? message : `${model.loc.file}:${model.loc.line}: ${message}`;
}

/** After the drain deadline: how long the answers written then get to reach their clients. */
const DEADLINE_FLUSH_MS = 500;

/** Resolves true when the engine's last client is gone, false after `ms`. */
function drained(engine: Engine, ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    engine.onDrained = () => {
      clearTimeout(timer);
      engine.onDrained = null;
      resolve(true);
    };
    if (engine.clients.size === 0) engine.onDrained();
  });
}

/**
 * The drain deadline passed with connections still busy (HAProxy's hard-stop-after): requests still waiting for a
 * response head get the 504 their response_timeout would have given them, not a bare close; the rest (responses
 * under way, tunnels, uploads) are cut.
 */
function cutAtDeadline(engine: Engine, timeoutMs: number): void {
  const left = engine.clients.size;
  let answered = 0;
  for (const c of [...engine.clients]) {
    const x = c.x;
    if (x === null || x.phase === 'done' || x.res !== null || c.phase === 'tunnel') continue;
    respondFailure(x, { kind: 'response-timeout' });
    answered++;
  }
  engine.log.warn(
    `drain timeout (${timeoutMs / 1000} s): closing ${left} connection${left === 1 ? '' : 's'} still in progress` +
      (answered > 0 ? ` (${answered} waiting for a backend answered 504)` : ''),
  );
}

async function closeEngine(
  engine: Engine,
  services: readonly ServiceRuntime[],
  retired: readonly ServiceRuntime[],
  accessLogs: AccessLog[],
  graceful: boolean,
  timeoutMs: number,
): Promise<void> {
  engine.draining = true;
  // Stop accepting now (the close callback would wait for every connection, so it is not awaited).
  for (const svc of services) {
    svc.server?.close();
    svc.server = null;
  }
  for (const be of [...engine.backends]) if (be.phase === 'idle' || be.exchange === null) closeBackend(be);
  // HTTP/2 connections hear GOAWAY now (an idle one closes at once), not only as their streams end.
  if (graceful) for (const svc of services) goAwaySessions(svc.h2Sessions);
  if (graceful && engine.clients.size > 0) {
    for (const c of engine.clients) drainClient(c);
    if (!(await drained(engine, timeoutMs))) cutAtDeadline(engine, timeoutMs);
    // The 504s written at the deadline go out before their sockets are destroyed below.
    if (engine.clients.size > 0) await drained(engine, DEADLINE_FLUSH_MS);
  }
  for (const c of [...engine.clients]) c.socket.destroy();
  for (const svc of [...services, ...retired]) closeSessions(svc.h2Sessions);
  for (const be of [...engine.backends]) closeBackend(be);
  stopSweep(engine);
  await Promise.all(accessLogs.map((a) => a.close()));
}
