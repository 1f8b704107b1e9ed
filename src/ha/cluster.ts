// The HA engine's shell: loads /etc/ha.d, persists the generation, starts the heartbeat (driver.ts: the pure node,
// its sockets and its deadline timer, in a worker thread by default), runs the resource operations the node asks
// for one at a time (VIPs, scripts, the proxy's binds), pings, and serves `tsbal ha` commands. Started by
// `tsbal run` (or `tsbal ha run`).
import type { ConsolaInstance } from 'consola';
import type { HaDirConfig, ResourceGroup } from '../config/model.ts';
import { detectLocalNode, loadHaDir } from '../config/hadir.ts';
import { formatDiagnostic } from '../config/errors.ts';
import { log as rootLog } from '../log.ts';
import { nextGeneration } from './generation.ts';
import { startWorker } from '../runtime/worker.ts';
import { startDriver, type DriverStatus, type ShellEvent } from './driver.ts';
import { isHaTransition } from '../status/transitions.ts';
import type { FromWorker, ToWorker } from './heartbeat.worker.ts';
import { createVipManager, DEFAULT_GARP, findInPath, resolveVip, vipPresent, type GarpOptions, type VipManager } from './vip.ts';
import { createGroupRunner, type GroupRunner, type ProxyGate } from './resources.ts';
import { startPinger, type Pinger } from './ping.ts';
import { serveControl, type ControlAnswer, type ControlServer } from './control.ts';
import { haLogger, type HaLog } from './logfile.ts';
import type { CommandName, EngineConfig, HaAction } from './types.ts';

export const DEFAULT_STATE_DIR = '/var/lib/tsbal';
export const DEFAULT_HA_DIR = '/etc/ha.d';

export interface HaRunOptions {
  haDir: string;
  /** Overrides heartbeat's rule (nodeinfo, else uname -n). */
  node?: string;
  stateDir: string;
  proxy?: ProxyGate | null;
  garp?: GarpOptions;
  logger?: ConsolaInstance;
  /** Where the heartbeat runs: its own worker thread (default), or the main thread. */
  thread?: 'worker' | 'main';
  /** Told the log lines that are transitions (peer dead or back, resources acquired or released): `tsbal status`. */
  onTransition?: (msg: string) => void;
}

export type HaStatus = DriverStatus;

export interface HaHandle {
  readonly config: HaDirConfig;
  status(): Promise<HaStatus>;
  command(command: Exclude<CommandName, 'shutdown'>, which: string): Promise<{ ok: boolean; msg: string }>;
  /**
   * Graceful stop: hands every resource to the peer at once, sends shutdone, closes. Bounded by `timeoutMs` (tsbal
   * run's --drain-timeout; at least 1 s, at most 25 s): past it, the VIPs still held are removed at once.
   */
  close(timeoutMs?: number): Promise<void>;
  /** Resolves when the engine has stopped (after close, or a fatal error). */
  readonly stopped: Promise<void>;
}

/** Bounds of a graceful HA stop (close): the operation in flight gets shutdownWaitMs (5 s) of it, the release the rest. */
const MIN_CLOSE_MS = 1_000;
const MAX_CLOSE_MS = 25_000;

/** Ping every keepalive, and at least four times per deadping. */
const pingIntervalFor = (keepaliveMs: number, deadpingMs: number): number => Math.min(keepaliveMs, Math.max(50, deadpingMs / 4));

export function engineConfigFrom(cfg: HaDirConfig, me: string, generation: number): EngineConfig {
  const { hacf, authkeys, haresources } = cfg;
  const authKey = authkeys.keys.find((k) => k.index === authkeys.activeIndex);
  if (!authKey) throw new Error(`${authkeys.file}: no key ${authkeys.activeIndex} for 'auth ${authkeys.activeIndex}'`);
  return {
    me,
    nodes: hacf.nodes,
    keepaliveMs: hacf.keepaliveMs,
    deadtimeMs: hacf.deadtimeMs,
    warntimeMs: hacf.warntimeMs,
    initdeadMs: hacf.initdeadMs,
    deadpingMs: hacf.deadpingMs,
    autoFailback: hacf.autoFailback,
    authKey,
    keys: authkeys.keys,
    innerAuth: hacf.msgfmt === 'classic',
    groups: haresources.groups,
    pingTargets: [
      ...hacf.pingNodes.map((ip) => ({ name: ip, members: [ip] })),
      ...hacf.pingGroups.map((g) => ({ name: g.name, members: g.members })),
    ],
    pingIntervalMs: pingIntervalFor(hacf.keepaliveMs, hacf.deadpingMs),
    generation,
    maxRexmitDelayMs: hacf.maxRexmitDelayMs,
    rqstDelayMs: 10_000,
    shutdownWaitMs: 5_000,
    retryFailedMs: 2_000,
    seed: generation,
  };
}

/** Removes any of the cluster's VIPs left on our interfaces by a crash: until the cluster decides, we hold nothing. */
async function clearLeftovers(groups: ResourceGroup[], vips: VipManager, l: HaLog): Promise<void> {
  for (const g of groups) {
    for (const r of g.resources) {
      if (r.kind !== 'ip') continue;
      const v = resolveVip(r);
      if (await vipPresent(v)) {
        l.warn(`VIP ${v.ip} was left on ${v.iface} (a previous crash?): removing it until the cluster decides who holds it`);
        await vips.remove(v);
      }
    }
  }
}

/** The node's side of the engine, wherever it runs. */
interface Heart {
  feed(ev: ShellEvent): void;
  status(): Promise<HaStatus>;
  resendShutdone(): void;
  close(): Promise<void>;
}

type NonSend = Exclude<HaAction, { kind: 'send' }>;

async function heartOnMain(cfg: EngineConfig, dir: HaDirConfig, onAction: (a: NonSend) => void): Promise<Heart> {
  const d = await startDriver({ cfg, media: dir.hacf.media, udpPort: dir.hacf.udpPort, thread: 'main', onAction });
  return { feed: d.feed, status: async () => d.status(), resendShutdone: d.resendShutdone, close: d.close };
}

/**
 * The heartbeat in its worker. The main thread tells it every keepalive/2 that it is alive; silent for longer than
 * deadtime, the worker stops heartbeating (fate sharing). If the worker dies, `onCrash` runs.
 */
async function heartInWorker(cfg: EngineConfig, dir: HaDirConfig, onAction: (a: NonSend) => void, onCrash: (why: string) => void): Promise<Heart> {
  const worker = startWorker('ha/heartbeat');
  const post = (m: ToWorker): void => worker.postMessage(m);
  const pending = new Map<number, (s: HaStatus) => void>();
  let nextId = 1;
  let closing = false;
  let closed: () => void = () => undefined;
  const closedP = new Promise<void>((r) => (closed = r));
  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      switch (m.t) {
        case 'ready':
          resolve();
          break;
        case 'failed':
          reject(new Error(m.msg));
          break;
        case 'action':
          onAction(m.a);
          break;
        case 'status':
          pending.get(m.id)?.(m.status);
          pending.delete(m.id);
          break;
        case 'closed':
          closed();
          break;
      }
    });
    worker.on('error', (e) => {
      reject(e);
      if (!closing) onCrash(`heartbeat worker failed: ${e.stack ?? e.message}`);
    });
    worker.on('exit', (code) => {
      closed();
      reject(new Error(`heartbeat worker exited (${code})`));
      if (!closing) onCrash(`heartbeat worker exited (${code})`);
    });
  });
  post({ t: 'init', cfg, media: dir.hacf.media, udpPort: dir.hacf.udpPort, muteAfterMs: cfg.deadtimeMs });
  const alive = setInterval(() => post({ t: 'alive' }), Math.max(20, Math.floor(cfg.keepaliveMs / 2)));
  try {
    await ready;
  } catch (error) {
    clearInterval(alive);
    closing = true;
    await worker.terminate();
    throw error;
  }
  return {
    feed: (ev) => post({ t: 'event', ev }),
    status: () =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(id, resolve);
        post({ t: 'status', id });
        setTimeout(() => {
          if (pending.delete(id)) reject(new Error('the heartbeat worker did not answer'));
        }, 2000).unref?.();
      }),
    resendShutdone: () => post({ t: 'resendShutdone' }),
    close: async () => {
      closing = true;
      clearInterval(alive);
      post({ t: 'close' });
      await Promise.race([closedP, new Promise((r) => setTimeout(r, 2000).unref?.())]);
      await worker.terminate();
    },
  };
}

export async function startHa(o: HaRunOptions): Promise<HaHandle> {
  const consola = (o.logger ?? rootLog).withTag('ha');
  const config = loadHaDir(o.haDir, { localNode: o.node?.toLowerCase() });
  const me = (o.node ?? detectLocalNode(o.haDir)).toLowerCase();
  const logs = haLogger(consola, { logfile: config.hacf.logfile, debugfile: config.hacf.debugfile }, me);
  const l = logs.log;
  for (const w of config.warnings ?? []) l.warn(formatDiagnostic(w));
  try {
    if (!findInPath('ip')) throw new Error('`ip` not found in PATH: the HA engine needs it to move the VIP (apt-get install iproute2)');
    if (!findInPath('arping')) l.warn('`arping` not found: no gratuitous ARP after a takeover (apt-get install iputils-arping)');
    // Resolve every VIP now, so a missing interface is a startup error and not a failed takeover later.
    for (const g of config.haresources.groups) for (const r of g.resources) if (r.kind === 'ip') resolveVip(r);
  } catch (error) {
    logs.close();
    throw error;
  }

  const vips = createVipManager(o.garp ?? DEFAULT_GARP, (level, msg) => l[level](msg));
  const releaseOnExit = (): void => vips.releaseAllSync();
  process.on('exit', releaseOnExit);
  const runner: GroupRunner = createGroupRunner({ haDir: o.haDir, vips, proxy: o.proxy ?? null, scriptTimeoutMs: 60_000 });
  let control: ControlServer | null = null;
  let heart: Heart | null = null;
  let pinger: Pinger | null = null;
  let stopResolve: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stopResolve = resolve));
  const replyWaiters = new Map<number, (r: { ok: boolean; msg: string }) => void>();
  let nextRequestId = 1;
  let exitWaiter: (() => void) | null = null;

  const feed = (ev: ShellEvent): void => heart?.feed(ev);

  const perform = (a: NonSend): void => {
    switch (a.kind) {
      case 'acquire':
      case 'release':
        void runOp(a.kind, a.opId, a.groups, a.reason, a.decidedAt);
        break;
      case 'announce': {
        const ips = a.groups.flatMap((g) => runner.announce(g));
        if (ips.length > 0) l.info(`re-announcing ${ips.join(', ')} (gratuitous ARP): ${a.reason}`);
        break;
      }
      case 'log':
        l[a.level](a.msg);
        if (o.onTransition !== undefined && isHaTransition(a.msg)) o.onTransition(a.msg);
        break;
      case 'reply':
        replyWaiters.get(a.requestId)?.({ ok: a.ok, msg: a.msg });
        replyWaiters.delete(a.requestId);
        break;
      case 'exit':
        exitWaiter?.();
        break;
    }
  };

  const runOp = async (kind: 'acquire' | 'release', opId: number, groups: ResourceGroup[], reason: string, decidedAt: number): Promise<void> => {
    const failed: string[] = [];
    const errors: string[] = [];
    const started = performance.now();
    // From the heartbeat thread's decision to here: a main thread slow to take the hand-off shows up as failover time.
    const handoffMs = Math.max(0, Date.now() - decidedAt);
    for (const g of groups) {
      try {
        if (kind === 'acquire') await runner.start(g);
        else await runner.stop(g);
      } catch (error) {
        failed.push(g.key);
        errors.push(`${kind === 'acquire' ? 'acquiring' : 'releasing'} ${g.key}: ${(error as Error).message}`);
      }
    }
    const ok = groups.filter((g) => !failed.includes(g.key)).map((g) => g.key);
    if (ok.length > 0) {
      const msg = `${kind === 'acquire' ? 'acquired' : 'released'} ${ok.join(', ')} in ${Math.round(performance.now() - started)} ms, started ${handoffMs} ms after the decision (${reason})`;
      l.info(msg);
      o.onTransition?.(msg);
    }
    feed({ kind: 'opDone', opId, failed, errors });
  };

  const shutdownAll = async (): Promise<void> => {
    process.off('exit', releaseOnExit);
    pinger?.close();
    vips.close();
    await heart?.close();
    await control?.close();
    logs.close();
    stopResolve();
  };

  /** The heartbeat thread died: we no longer heartbeat, so the peer takes over; we must not hold anything. */
  const onCrash = (why: string): void => {
    l.error(`${why}: releasing every resource and stopping the HA engine`);
    heart = null;
    void (async () => {
      for (const g of [...config.haresources.groups].reverse()) await runner.stop(g).catch((e: Error) => l.error(e.message));
      await shutdownAll();
    })();
  };

  try {
    const generation = nextGeneration(o.stateDir, config.hacf.hbgenmethod, Math.floor(Date.now() / 1000));
    const cfg = engineConfigFrom(config, me, generation);
    control = await serveControl(o.stateDir, async (req): Promise<ControlAnswer> => {
      if (req.cmd === 'status') return { ok: true, status: await handleStatus() };
      return handleCommand(req.cmd, req.which ?? '');
    });
    await clearLeftovers(config.haresources.groups, vips, l);
    heart = o.thread === 'main' ? await heartOnMain(cfg, config, perform) : await heartInWorker(cfg, config, perform, onCrash);
    if (cfg.pingTargets.length > 0) {
      pinger = startPinger({
        targets: cfg.pingTargets,
        intervalMs: cfg.pingIntervalMs,
        onReply: (target) => feed({ kind: 'pingReply', target }),
        onLog: (level, msg) => l[level](msg),
      });
    }
  } catch (error) {
    await shutdownAll();
    throw error;
  }

  function handleStatus(): Promise<HaStatus> {
    if (!heart) return Promise.reject(new Error('the HA engine is stopped'));
    return heart.status();
  }

  function handleCommand(command: Exclude<CommandName, 'shutdown'>, which: string): Promise<{ ok: boolean; msg: string }> {
    return new Promise((resolve) => {
      const requestId = nextRequestId++;
      replyWaiters.set(requestId, resolve);
      feed({ kind: 'command', command, which, requestId });
      setTimeout(() => {
        if (replyWaiters.delete(requestId)) resolve({ ok: false, msg: 'the engine gave no answer' });
      }, 3000).unref?.();
    });
  }

  let closing: Promise<void> | null = null;
  return {
    config,
    status: handleStatus,
    command: handleCommand,
    stopped,
    close(timeoutMs) {
      closing ??= (async () => {
        const exited = new Promise<void>((resolve) => (exitWaiter = resolve));
        feed({ kind: 'command', command: 'shutdown', which: '', requestId: 0 });
        const bound = Math.max(MIN_CLOSE_MS, Math.min(timeoutMs ?? MAX_CLOSE_MS, MAX_CLOSE_MS));
        let done = false;
        void Promise.race([exited, stopped]).then(() => (done = true));
        await Promise.race([exited, stopped, new Promise((r) => setTimeout(r, bound).unref?.())]);
        if (!done) {
          // A resource operation still running (a hung script): do not leave the VIP behind on the way out.
          l.warn(`shutdown not finished after ${bound} ms (a resource operation is still running): removing our VIPs now`);
          vips.releaseAllSync();
        }
        // shutdone is what lets the peer take over at once: send it twice in case one copy is lost (the peer
        // drops the duplicate by seq).
        await new Promise((r) => setTimeout(r, 20));
        heart?.resendShutdone();
        await new Promise((r) => setTimeout(r, 20));
        await shutdownAll();
      })();
      return closing;
    },
  };
}
