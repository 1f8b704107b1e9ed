// SERVER workers: the owner process. It keeps what must exist once: the health checks (each backend checked once,
// every result sent to every worker), the management consoles (answers summed over the workers, counters.ts),
// reloads (applied here first, then by every worker, undone everywhere if one refuses), and the logs; tsbal run adds
// the HA engine and `tsbal status` beside it. The workers (worker.ts) accept and proxy; the owner serves no traffic,
// so its event loop never delays a request and never waits behind one. A worker that dies is started again.
//
// Listening: each worker binds its own SO_REUSEPORT socket per address. Before any does, the owner looks whether
// anything listens there already (probe.ts), including another tsbal's reuse-port workers, so two tsbal processes
// never silently share a port.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import type { ConsolaInstance } from 'consola';
import type { HostPort, PerlbalConfig } from '../../config/model.ts';
import { log as rootLog } from '../../log.ts';
import { selfInvocation } from '../../runtime/self.ts';
import { startProxy, type BindFailure, type ProxyHandle, type StartProxyOptions } from '../index.ts';
import { probeAddress } from './probe.ts';
import type { MirroredChange } from '../management/listeners.ts';
import { applyCounters, type WorkerCounters } from './counters.ts';
import { mergeConnections, type ConnectionReport } from '../management/connections.ts';
import type { Engine } from '../engine.ts';
import { noteTransition } from '../../status/transitions.ts';
import { WORKER_ENV, type FromWorker, type Reply, type ToWorker, type WorkerReloadOutcome } from './protocol.ts';

/**
 * How long a console answer waits for a worker's connections: a worker that does not answer by then (busy, or dying)
 * is left out of that answer rather than holding the console.
 */
const CONSOLE_REPLY_TIMEOUT_MS = 2000;
/** How long a worker gets to report that it listens (it compiles the config and binds, as a start does). */
const START_TIMEOUT_MS = 30_000;
/** How long a request to a worker (counters, reload) may take before it counts as not answered. */
const REPLY_TIMEOUT_MS = 10_000;
/** A worker that dies sooner than this after starting waits this long before it is started again (a crash loop). */
const RESTART_DELAY_MS = 1000;

interface Slot {
  index: number;
  child: ChildProcess | null;
  ready: boolean;
  startedAt: number;
  /** How many times its worker died and was started again (`tsbal status`, tsbal_worker_restarts_total). */
  restarts: number;
  /** Its latest counters (kept after it dies: a new worker's counters start from zero, the sums never go back). */
  counters: WorkerCounters | null;
  /** Counters of the workers that ran in this slot before, with their gauges zeroed. */
  retired: WorkerCounters[];
  waiting: Map<number, (r: Reply | null) => void>;
  /** The config it was started with or last reloaded to. */
  config: PerlbalConfig | null;
}

export interface OwnerOptions extends Omit<StartProxyOptions, 'workers'> {
  /** Worker processes to start (2 or more). */
  count: number;
  /** The affinity key workers share (sticky stays stateless: every worker computes the same ids). */
  affinityKey: Buffer;
}

/** A stand-in for an address the workers listen on: its address() names it; it never accepts. */
function standIn({ host, port }: HostPort): Server {
  const server = createServer();
  const family = host.includes(':') ? 'IPv6' : 'IPv4';
  server.address = () => ({ address: host, port, family });
  return server;
}


/**
 * A worker's traffic found a backend down (or up again). Addresses under active checks follow the owner's checks;
 * for the others the first worker to see a change sets the owner's record and its one log line, and the same change
 * seen by the other workers after it adds nothing (each worker still keeps its own view for its own requests).
 */
function noteWorkerTransition(engine: Engine, m: Extract<FromWorker, { kind: 'transition' }>): void {
  const h = engine.health.get(m.key);
  if (h === undefined || h.checkers > 0) return;
  if (m.to === 'down' ? h.state === 'down' : h.state !== 'down') return;
  h.state = m.to;
  h.since = engine.now;
  h.failures = m.failures;
  h.lastFailure = m.lastFailure;
  if (m.to === 'down') {
    h.downs++;
    engine.log.warn(m.text);
  } else {
    h.ups++;
    engine.log.info(m.text);
  }
  noteTransition(engine.transitions, 'backend', m.text);
}

function zeroGauges(c: WorkerCounters): WorkerCounters {
  return { ...c, services: c.services.map((s) => ({ ...s, clients: 0, nodes: s.nodes.map((n) => ({ ...n, active: 0 })) })), health: [] };
}

/**
 * The workers serve as soon as the first one listens, a moment before `tsbal run` handles signals (it does once
 * everything started). A SIGINT or SIGTERM in between (Ctrl-C to the process group) is held and delivered again
 * once run.ts listens for it, rather than killing the owner and with it every worker's requests.
 */
function holdStopSignals(): { release(): void } {
  const held: NodeJS.Signals[] = [];
  const hold = (signal: NodeJS.Signals): void => void held.push(signal);
  const signals = ['SIGINT', 'SIGTERM'] as const;
  for (const s of signals) process.on(s, hold);
  return {
    release() {
      let tries = 0;
      const poll = (): void => {
        // run.ts has its own listener once it runs; give up after ~30 s (then the signal is dropped, never fatal).
        const ready = signals.every((s) => process.listenerCount(s) > 1);
        if (!ready && ++tries < 3000) {
          setTimeout(poll, 10).unref();
          return;
        }
        for (const s of signals) process.off(s, hold);
        const first = held[0];
        if (first !== undefined && ready) process.kill(process.pid, first);
      };
      poll();
    },
  };
}

export async function startOwnerProxy(config: PerlbalConfig, opts: OwnerOptions): Promise<ProxyHandle> {
  const signals = holdStopSignals();
  const log: ConsolaInstance = opts.log ?? rootLog.withTag('proxy');
  const slots: Slot[] = [];
  let nextId = 1;
  let stopping = false;
  /** The config the workers run (and a restarted worker gets): the last one applied everywhere. */
  let current = config;

  const post = (slot: Slot, m: ToWorker): void => {
    if (slot.child !== null && slot.child.connected) slot.child.send(m);
  };
  const broadcast = (m: ToWorker): void => {
    for (const s of slots) if (s.ready) post(s, m);
  };
  /** Asks one worker; null when it does not answer (it died, or took too long). */
  const ask = (slot: Slot, m: (id: number) => ToWorker, timeoutMs = REPLY_TIMEOUT_MS): Promise<Reply | null> => {
    if (!slot.ready || slot.child === null) return Promise.resolve(null);
    const id = nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        slot.waiting.delete(id);
        resolve(null);
      }, timeoutMs);
      slot.waiting.set(id, (r) => {
        clearTimeout(timer);
        slot.waiting.delete(id);
        resolve(r);
      });
      post(slot, m(id));
    });
  };

  const onMessage = (slot: Slot, m: FromWorker): void => {
    if (m.kind === 'reply') slot.waiting.get(m.id)?.(m.reply);
    else if (m.kind === 'transition') noteWorkerTransition(proxy.engine, m);
    else if (m.kind === 'log') {
      const tagged = m.tag === '' ? log : rootLog.withTag(m.tag);
      const fn = (tagged as unknown as Record<string, ((s: string) => void) | undefined>)[m.type] ?? tagged.info;
      fn.call(tagged, `worker ${slot.index}: ${m.text}`);
    }
  };

  /**
   * Starts a worker process; it is sent its config once it says hello and `go` resolves (at startup: once the owner
   * has compiled the config and probed the addresses, so the runtimes load meanwhile).
   */
  const spawnWorker = (slot: Slot, go: Promise<unknown> = Promise.resolve(), gate: Promise<unknown> = Promise.resolve(), onCompiled: () => void = () => undefined): Promise<void> => {
    const self = selfInvocation();
    // `run` in its arguments so the process reads as a tsbal run (pidfile.ts names it when a port is taken).
    const child = spawn(self.command, [...self.args, 'run', '--worker'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, [WORKER_ENV]: '1' },
    });
    slot.child = child;
    slot.ready = false;
    slot.startedAt = Date.now();
    if (slot.counters !== null) slot.retired.push(zeroGauges(slot.counters));
    slot.counters = null;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${slot.index} (pid ${child.pid}) did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      child.on('message', (raw) => {
        const m = raw as FromWorker;
        if (m.kind === 'hello') {
          void go.then(() => post(slot, { kind: 'start', index: slot.index, config: (slot.config = current), affinityKey: opts.affinityKey.toString('base64'), logLevel: log.level, tickets: ownerTickets() }), () => undefined);
        } else if (m.kind === 'compiled') {
          // At startup every worker compiles before any listens (see startOwnerProxy); a restarted one listens at once.
          onCompiled();
          void gate.then(() => post(slot, { kind: 'listen' }));
        } else if (m.kind === 'ready') {
          clearTimeout(timer);
          slot.ready = true;
          resolve();
        } else if (m.kind === 'failed') {
          clearTimeout(timer);
          reject(new Error(m.message));
        } else onMessage(slot, m);
      });
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot start worker ${slot.index}: ${error.message}`));
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        const wasReady = slot.ready;
        slot.ready = false;
        slot.child = null;
        for (const w of [...slot.waiting.values()]) w(null);
        if (!wasReady) {
          reject(new Error(`worker ${slot.index} exited during startup (${signal ?? `code ${code}`})`));
          return;
        }
        if (stopping) return;
        slot.restarts++;
        noteTransition(proxy.engine.transitions, 'worker', `worker ${slot.index} (pid ${child.pid}) exited (${signal ?? `code ${code}`}); starting it again`);
        const quick = Date.now() - slot.startedAt < RESTART_DELAY_MS * 5;
        log.error(`worker ${slot.index} (pid ${child.pid}) exited (${signal ?? `code ${code}`}); starting it again${quick ? ` in ${RESTART_DELAY_MS / 1000} s` : ''}; the other workers keep serving`);
        setTimeout(() => restart(slot), quick ? RESTART_DELAY_MS : 0).unref();
      });
    });
  };

  const restart = (slot: Slot): void => {
    if (stopping) return;
    spawnWorker(slot).then(
      async () => {
        log.info(`worker ${slot.index} started again (pid ${slot.child?.pid})`);
        noteTransition(proxy.engine.transitions, 'worker', `worker ${slot.index} started again (pid ${slot.child?.pid})`);
        // A reload committed while it started: it catches up (the others run `current` already).
        if (slot.config !== current) await ask(slot, (id) => ({ kind: 'reload', id, config: (slot.config = current) }));
      },
      (error: Error) => {
        log.error(`worker ${slot.index}: ${error.message}`);
        if (!stopping) setTimeout(() => restart(slot), RESTART_DELAY_MS).unref();
      },
    );
  };

  const ownerTickets = (): Array<{ service: string; key: string }> =>
    proxy.services.flatMap((s) => (s.tls === null ? [] : [{ service: s.name, key: s.tls.tickets.key.toString('base64') }]));

  const refresh = async (timeoutMs = REPLY_TIMEOUT_MS): Promise<void> => {
    const tickets = ownerTickets();
    const replies = await Promise.all(slots.map((s) => ask(s, (id) => ({ kind: 'counters', id, tickets }), timeoutMs)));
    replies.forEach((r, i) => {
      if (r?.kind === 'counters') slots[i]!.counters = r.counters;
    });
    const all = slots.flatMap((s) => [...s.retired, ...(s.counters === null ? [] : [s.counters])]);
    applyCounters(proxy.engine, proxy.services, all);
  };

  /** The workers' connections, merged, as of the last console answer. */
  let connections: ConnectionReport | null = null;
  const gatherConnections = async (): Promise<void> => {
    const replies = await Promise.all(slots.map((s) => ask(s, (id) => ({ kind: 'connections', id }), CONSOLE_REPLY_TIMEOUT_MS)));
    connections = mergeConnections(replies.flatMap((r) => (r?.kind === 'connections' ? [r.report] : [])));
  };
  const beforeAnswer = async (): Promise<void> => {
    await Promise.all([refresh(CONSOLE_REPLY_TIMEOUT_MS), gatherConnections()]);
  };

  const apply = async (next: PerlbalConfig): Promise<WorkerReloadOutcome> => {
    const replies = await Promise.all(slots.map((s) => ask(s, (id) => ({ kind: 'reload', id, config: next }))));
    const errors: string[] = [];
    for (const r of replies) if (r?.kind === 'reloaded' && !r.outcome.ok) for (const e of r.outcome.errors) if (!errors.includes(e)) errors.push(e);
    if (errors.length > 0) return { ok: false, errors };
    for (const s of slots) if (s.ready) s.config = next;
    // A worker that did not answer (it died meanwhile) starts again with this config.
    current = next;
    return { ok: true };
  };

  // The worker processes load while this one compiles the config and probes the addresses.
  for (let i = 1; i <= opts.count; i++) slots.push({ index: i, child: null, ready: false, startedAt: 0, restarts: 0, counters: null, retired: [], waiting: new Map(), config: null });
  let ownerUp!: () => void;
  let ownerFailed!: (error: Error) => void;
  const go = new Promise<void>((resolve, reject) => ((ownerUp = resolve), (ownerFailed = reject)));
  go.catch(() => undefined);
  // No worker listens before all have compiled the config: then they bind within a few milliseconds of each other,
  // and serving starts as close to this process being ready (pidfile, --daemon's report) as with one process.
  let compiled = 0;
  let allCompiled!: () => void;
  const gate = new Promise<void>((resolve) => (allCompiled = resolve));
  const workersUp = Promise.all(slots.map((s) => spawnWorker(s, go, gate, () => ++compiled === opts.count && allCompiled())));
  workersUp.catch(() => undefined);
  let proxy: ProxyHandle;
  try {
    proxy = await startProxy(config, {
      ...opts,
      log,
      workers: {
        kind: 'owner',
        bind: async (addr) => {
          await probeAddress(addr);
          return standIn(addr);
        },
        onCheck: (key, passed, answer, durationMs) => broadcast({ kind: 'check', key, passed, answer, durationMs }),
        apply,
        consoles: { before: beforeAnswer, connections: () => connections, mirror: (change: MirroredChange) => broadcast({ kind: 'mirror', change }) },
      },
    });
  } catch (error) {
    stopping = true;
    for (const s of slots) s.child?.kill('SIGKILL');
    ownerFailed(error as Error);
    signals.release();
    throw error;
  }
  proxy.engine.workers = () => ({
    configured: opts.count,
    workers: slots.map((s) => ({ index: s.index, pid: s.child?.pid ?? null, state: s.ready ? 'ready' : 'starting', startedAt: s.startedAt, restarts: s.restarts })),
  });
  ownerUp();
  signals.release();
  // `started` is what tsbal run waits for before it starts the HA engine (a node serves before it claims a VIP) and
  // reports ready.
  const started = workersUp.then(
    async () => {
      log.info(`${opts.count} workers serving (pids ${slots.map((s) => s.child?.pid).join(', ')}); this process (pid ${process.pid}) runs the checks and the management port`);
      // An address the HA engine made local while they started (its retryBind reached only the ready ones).
      await Promise.all(slots.map((s) => ask(s, (id) => ({ kind: 'retryBind', id }))));
    },
    (error: Error) => {
      stopping = true;
      for (const s of slots) s.child?.kill('SIGKILL');
      throw error;
    },
  );
  started.catch(() => undefined);
  // `tsbal status` reads the owner's records without asking: keep them at most a second old.
  const timer = setInterval(() => void refresh(), 1000);
  timer.unref();

  const stopWorkers = async (graceful: boolean, timeoutMs: number): Promise<void> => {
    stopping = true;
    clearInterval(timer);
    const exits = slots.map(
      (s) =>
        new Promise<void>((resolve) => {
          const child = s.child;
          if (child === null || child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          // One still starting has nothing to finish.
          if (!s.ready) return void child.kill('SIGKILL');
          post(s, { kind: 'stop', graceful, timeoutMs });
          // Past the drain deadline (plus the time to flush the 504s written then), no worker may linger.
          setTimeout(() => child.kill('SIGKILL'), timeoutMs + 2000).unref();
        }),
    );
    await Promise.all(exits);
  };

  return {
    ...proxy,
    gather: () => refresh(),
    started: () => started,
    listeners: () => proxy.listeners(),
    isListening: (host, port) => proxy.isListening(host, port),
    pendingBinds: () => proxy.pendingBinds(),
    async retryBind(): Promise<BindFailure[]> {
      const failures = await proxy.retryBind();
      await Promise.all(slots.map((s) => ask(s, (id) => ({ kind: 'retryBind', id }))));
      return failures;
    },
    reload: (next) => proxy.reload(next),
    async close(closeOpts = {}) {
      const graceful = closeOpts.graceful ?? true;
      const timeoutMs = closeOpts.timeoutMs ?? 30_000;
      await Promise.all([stopWorkers(graceful, timeoutMs), proxy.close(closeOpts)]);
    },
  };
}
