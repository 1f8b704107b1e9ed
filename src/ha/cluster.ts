// The I/O shell around the pure node: loads /etc/ha.d, persists the generation, opens the heartbeat media, drives
// the node with one timer set to its next deadline (deadtime precision, not heartbeat's 250 ms poll), runs resource
// operations one at a time, and serves `tsbal ha` commands. Started by `tsbal run` (or `tsbal ha run`).
import { performance } from 'node:perf_hooks';
import type { ConsolaInstance } from 'consola';
import type { HaDirConfig, ResourceGroup } from '../config/model.ts';
import { detectLocalNode, loadHaDir } from '../config/hadir.ts';
import { formatDiagnostic } from '../config/errors.ts';
import { log as rootLog } from '../log.ts';
import { nextGeneration } from './generation.ts';
import { createNode, handle, nextDeadline, statusReport, type HaNode, type StatusReport } from './node.ts';
import { openTransport, type Transport } from './transport.ts';
import { createVipManager, DEFAULT_GARP, findInPath, resolveVip, vipPresent, type GarpOptions, type VipManager } from './vip.ts';
import { createGroupRunner, type GroupRunner, type ProxyGate } from './resources.ts';
import { startPinger, type Pinger } from './ping.ts';
import { serveControl, type ControlAnswer, type ControlServer } from './control.ts';
import type { CommandName, EngineConfig, HaAction, HaEvent } from './types.ts';

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
}

export interface TimerLag {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** `heartbeatLag`: how much later than keepalive each status went out (event-loop stalls show up here). */
export type HaStatus = StatusReport & { media: string[]; heartbeatLag: TimerLag };

export interface HaHandle {
  readonly config: HaDirConfig;
  status(): HaStatus;
  command(command: Exclude<CommandName, 'shutdown'>, which: string): Promise<{ ok: boolean; msg: string }>;
  /** Graceful stop: hands every resource to the peer at once, sends shutdone, closes. */
  close(): Promise<void>;
  /** Resolves when the engine has stopped (after close, or a fatal error). */
  readonly stopped: Promise<void>;
}

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
    generation,
    maxRexmitDelayMs: hacf.maxRexmitDelayMs,
    rqstDelayMs: 10_000,
    shutdownWaitMs: 5_000,
    retryFailedMs: 2_000,
    seed: generation,
  };
}

function lagSummary(lags: number[]): TimerLag {
  if (lags.length === 0) return { samples: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
  const s = [...lags].sort((a, b) => a - b);
  const at = (q: number): number => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 10) / 10;
  return { samples: s.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1) };
}

/** Removes any of the cluster's VIPs left on our interfaces by a crash: until the cluster decides, we hold nothing. */
async function clearLeftovers(groups: ResourceGroup[], vips: VipManager, l: ConsolaInstance): Promise<void> {
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

export async function startHa(o: HaRunOptions): Promise<HaHandle> {
  const l = (o.logger ?? rootLog).withTag('ha');
  const config = loadHaDir(o.haDir, { localNode: o.node?.toLowerCase() });
  const me = (o.node ?? detectLocalNode(o.haDir)).toLowerCase();
  for (const w of config.warnings ?? []) l.warn(formatDiagnostic(w));
  if (!findInPath('ip')) throw new Error('`ip` not found in PATH: the HA engine needs it to move the VIP (apt-get install iproute2)');
  if (!findInPath('arping')) l.warn('`arping` not found: no gratuitous ARP after a takeover (apt-get install iputils-arping)');
  // Resolve every VIP now, so a missing interface is a startup error and not a failed takeover later.
  for (const g of config.haresources.groups) for (const r of g.resources) if (r.kind === 'ip') resolveVip(r);

  const vips = createVipManager(o.garp ?? DEFAULT_GARP, (level, msg) => l[level](msg));
  const runner: GroupRunner = createGroupRunner({ haDir: o.haDir, vips, proxy: o.proxy ?? null, scriptTimeoutMs: 60_000 });
  let control: ControlServer | null = null;
  let transport: Transport | null = null;
  let pinger: Pinger | null = null;
  let node: HaNode;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const lags: number[] = [];
  let lastStatusAt: number | null = null;
  let stopResolve: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stopResolve = resolve));
  let replyWaiter: ((r: { ok: boolean; msg: string }) => void) | null = null;
  let exitWaiter: (() => void) | null = null;
  let lastShutdone: Uint8Array | null = null;

  const clock = (): { now: number; wall: number } => ({ now: performance.now(), wall: Date.now() });

  const feed = (ev: HaEvent): void => {
    let actions: HaAction[];
    try {
      actions = handle(node, ev);
    } catch (error) {
      l.error(`HA engine bug handling ${ev.kind}: ${(error as Error).stack ?? error}`);
      return;
    }
    for (const a of actions) perform(a);
    schedule();
  };

  const perform = (a: HaAction): void => {
    switch (a.kind) {
      case 'send':
        transport?.send(a.bytes);
        if (a.type === 'status') {
          const now = performance.now();
          if (lastStatusAt !== null) lags.push(Math.max(0, now - lastStatusAt - node.cfg.keepaliveMs));
          if (lags.length > 2000) lags.splice(0, lags.length - 1000);
          lastStatusAt = now;
        }
        if (a.type === 'shutdone') lastShutdone = a.bytes;
        break;
      case 'acquire':
      case 'release':
        void runOp(a.kind, a.opId, a.groups, a.reason);
        break;
      case 'log':
        l[a.level](a.msg);
        break;
      case 'reply':
        replyWaiter?.(a);
        replyWaiter = null;
        break;
      case 'exit':
        exitWaiter?.();
        break;
    }
  };

  const runOp = async (kind: 'acquire' | 'release', opId: number, groups: ResourceGroup[], reason: string): Promise<void> => {
    const failed: string[] = [];
    const errors: string[] = [];
    const started = performance.now();
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
    if (ok.length > 0) l.info(`${kind === 'acquire' ? 'acquired' : 'released'} ${ok.join(', ')} in ${Math.round(performance.now() - started)} ms (${reason})`);
    feed({ kind: 'opDone', opId, failed, errors, ...clock() });
  };

  const schedule = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
    const due = nextDeadline(node);
    if (!Number.isFinite(due)) return;
    const { now } = clock();
    timer = setTimeout(() => {
      timer = null;
      feed({ kind: 'tick', ...clock() });
    }, Math.max(0, due - now));
  };

  const shutdownSockets = async (): Promise<void> => {
    if (timer) clearTimeout(timer);
    timer = null;
    pinger?.close();
    vips.close();
    await transport?.close();
    await control?.close();
    stopResolve();
  };

  try {
    const generation = nextGeneration(o.stateDir, config.hacf.hbgenmethod, Math.floor(Date.now() / 1000));
    node = createNode(engineConfigFrom(config, me, generation));
    control = await serveControl(o.stateDir, async (req): Promise<ControlAnswer> => {
      if (req.cmd === 'status') return { ok: true, status: handleStatus() };
      return handleCommand(req.cmd, req.which ?? '');
    });
    await clearLeftovers(config.haresources.groups, vips, l);
    transport = await openTransport({
      media: config.hacf.media,
      udpPort: config.hacf.udpPort,
      onPacket: (bytes, from) => feed({ kind: 'packet', bytes, from, ...clock() }),
      onError: (msg) => l.warn(msg),
    });
    l.info(`heartbeat media: ${transport.describe().join('; ')}`);
  } catch (error) {
    await shutdownSockets();
    throw error;
  }
  if (node.cfg.pingTargets.length > 0) {
    pinger = startPinger({
      targets: node.cfg.pingTargets,
      intervalMs: Math.min(node.cfg.keepaliveMs, Math.max(50, node.cfg.deadpingMs / 4)),
      onReply: (target) => feed({ kind: 'pingReply', target, ...clock() }),
      onLog: (level, msg) => l[level](msg),
    });
  }
  feed({ kind: 'start', ...clock() });

  function handleStatus(): HaStatus {
    return { ...statusReport(node, clock().now), media: transport?.describe() ?? [], heartbeatLag: lagSummary(lags) };
  }

  function handleCommand(command: Exclude<CommandName, 'shutdown'>, which: string): Promise<{ ok: boolean; msg: string }> {
    return new Promise((resolve) => {
      replyWaiter = resolve;
      feed({ kind: 'command', command, which, ...clock() });
      if (replyWaiter === resolve) {
        replyWaiter = null;
        resolve({ ok: false, msg: 'the engine gave no answer' });
      }
    });
  }

  let closing: Promise<void> | null = null;
  return {
    config,
    status: handleStatus,
    command: handleCommand,
    stopped,
    close() {
      closing ??= (async () => {
        const exited = new Promise<void>((resolve) => (exitWaiter = resolve));
        feed({ kind: 'command', command: 'shutdown', which: '', ...clock() });
        const bound = node.cfg.shutdownWaitMs + 20_000;
        await Promise.race([exited, new Promise((r) => setTimeout(r, bound).unref?.())]);
        // shutdone is what lets the peer take over at once: send it twice in case one copy is lost (the peer
        // drops the duplicate by seq).
        if (lastShutdone) {
          await new Promise((r) => setTimeout(r, 20));
          transport?.send(lastShutdone);
          await new Promise((r) => setTimeout(r, 20));
        }
        await shutdownSockets();
      })();
      return closing;
    },
  };
}
