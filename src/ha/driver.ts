// Drives the pure node: stamps events with this thread's clocks, sends its packets, arms one timer at its next
// deadline, and measures how late each status goes out. Runs in the heartbeat worker (default) or, with
// `--ha-thread main`, on the main thread. Everything but sending is handed to `onAction`.
import { performance } from 'node:perf_hooks';
import type { Medium } from '../config/model.ts';
import { createNode, handle, nextDeadline, type HaNode } from './node.ts';
import { statusReport, type StatusReport } from './status.ts';
import { openTransport, type Transport } from './transport.ts';
import { createHeldRecorder, heldRecord } from './restart.ts';
import type { EngineConfig, HaAction, HaEvent } from './types.ts';

export interface TimerLag {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** `heartbeatLag`: how much later than keepalive each status went out (event-loop stalls show up here). */
export type DriverStatus = StatusReport & { media: string[]; heartbeatLag: TimerLag; thread: 'main' | 'worker'; muted: boolean };

/** An event as the shell knows it; the driver adds the clocks. */
export type ShellEvent =
  | { kind: 'command'; command: 'standby' | 'takeover' | 'shutdown'; which: string; requestId: number }
  | { kind: 'opDone'; opId: number; failed: string[]; errors: string[] }
  | { kind: 'pingReply'; target: string }
  | { kind: 'resync' };

export interface DriverOptions {
  cfg: EngineConfig;
  media: Medium[];
  udpPort: number;
  thread: 'main' | 'worker';
  onAction(a: Exclude<HaAction, { kind: 'send' }>): void;
  /** False mutes every packet we would send (the worker's fate sharing with a stalled main thread). */
  maySend?: () => boolean;
  /** Where to record what we hold with every heartbeat sent, for a fast restart after a crash (restart.ts). */
  stateDir?: string;
}

export interface Driver {
  feed(ev: ShellEvent): void;
  status(): DriverStatus;
  /** Re-sends our last shutdone (the peer drops the copy by seq). */
  resendShutdone(): void;
  close(): Promise<void>;
}

function lagSummary(lags: number[]): TimerLag {
  if (lags.length === 0) return { samples: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
  const s = [...lags].sort((a, b) => a - b);
  const at = (q: number): number => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 10) / 10;
  return { samples: s.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1) };
}

export async function startDriver(o: DriverOptions): Promise<Driver> {
  const node: HaNode = createNode(o.cfg);
  const lags: number[] = [];
  let lastStatusAt: number | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let lastShutdone: Uint8Array | null = null;
  let transport: Transport | null = null;
  let muted = false;
  let statusSent = false;
  let lastStatusWall = 0;
  let lastRecorded = '';
  const recorder = o.stateDir === undefined ? null : createHeldRecorder(o.stateDir, (msg) => o.onAction({ kind: 'log', level: 'warn', msg }));
  const clock = (): { now: number; wall: number } => ({ now: performance.now(), wall: Date.now() });

  const send = (bytes: Uint8Array, type: string): void => {
    if (o.maySend && !o.maySend()) {
      muted = true;
      return;
    }
    muted = false;
    transport?.send(bytes);
    if (type === 'shutdone') lastShutdone = bytes;
    if (type === 'status') {
      statusSent = true;
      const now = performance.now();
      if (lastStatusAt !== null) lags.push(Math.max(0, now - lastStatusAt - o.cfg.keepaliveMs));
      if (lags.length > 2000) lags.splice(0, lags.length - 1000);
      lastStatusAt = now;
    }
  };

  const run = (ev: HaEvent): void => {
    let actions: HaAction[];
    try {
      actions = handle(node, ev);
    } catch (error) {
      o.onAction({ kind: 'log', level: 'error', msg: `HA engine bug handling ${ev.kind}: ${(error as Error).stack ?? error}` });
      return;
    }
    statusSent = false;
    for (const a of actions) {
      if (a.kind === 'send') send(a.bytes, a.type);
      else o.onAction(a);
    }
    // The record's time is that of the last heartbeat that really left (a muted engine's peer is counting down); it
    // is also written at once when what we or the peer hold changes, so a crash right after that does not mislead.
    if (recorder) {
      if (statusSent) lastStatusWall = Date.now();
      const r = heldRecord(node, lastStatusWall);
      const what = `${r.held.join(' ')}|${r.peerHoldsOurs}`;
      if (statusSent || what !== lastRecorded) recorder.note(r);
      lastRecorded = what;
    }
    schedule();
  };

  const schedule = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
    const due = nextDeadline(node);
    if (!Number.isFinite(due)) return;
    timer = setTimeout(() => {
      timer = null;
      run({ kind: 'tick', ...clock() });
    }, Math.max(0, due - performance.now()));
  };

  transport = await openTransport({
    media: o.media,
    udpPort: o.udpPort,
    onPacket: (bytes, from) => run({ kind: 'packet', bytes, from, ...clock() }),
    onError: (msg) => o.onAction({ kind: 'log', level: 'warn', msg }),
  });
  o.onAction({ kind: 'log', level: 'info', msg: `heartbeat media: ${transport.describe().join('; ')} (heartbeat on the ${o.thread} thread)` });
  run({ kind: 'start', ...clock() });

  return {
    feed: (ev) => run({ ...ev, ...clock() } as HaEvent),
    status: () => ({
      ...statusReport(node, performance.now()),
      media: transport?.describe() ?? [],
      heartbeatLag: lagSummary(lags),
      thread: o.thread,
      muted,
    }),
    resendShutdone: () => {
      if (lastShutdone) transport?.send(lastShutdone);
    },
    close: async () => {
      if (timer) clearTimeout(timer);
      timer = null;
      await transport?.close();
      transport = null;
    },
  };
}
