// State shared by every service of one running proxy: the coarse clock, backend health (per ip:port, shared across
// services like Perlbal's NoVerify list), and the connection sets the timeout sweep walks.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { ConsolaInstance } from 'consola';
import type { BackendConn } from './upstream/conn.ts';
import type { ClientConn } from './client.ts';
import type { Fields } from './http/fields.ts';
import { newHeadWriter, type HeadWriter } from './http/writer.ts';
import type { NodeStats } from './management/stats.ts';
import type { UpstreamHealth } from './upstream/health.ts';
import { newTransitionRing, type TransitionRing } from '../status/transitions.ts';
import type { ServiceRuntime } from './service.ts';

export interface Engine {
  /**
   * Milliseconds on a monotonic clock, refreshed by the sweep tick and by `tick()`. Deadlines are coarse (one
   * sweep period) on purpose: no timer per request, no clock read per event.
   */
  now: number;
  health: Map<string, UpstreamHealth>;
  /**
   * The running services (startProxy's list, replaced in place by a reload): who to tell when a backend's health
   * changes (upstream/transitions.ts).
   */
  services: readonly ServiceRuntime[];
  /** Per ip:port counters for the management port (Perlbal's NodeStats), shared across services like `health`. */
  nodeStats: Map<string, NodeStats>;
  /** ip:port → until when new connections skip the verify probe (Perlbal's 60 s NoVerify list). */
  noVerify: Map<string, number>;
  clients: Set<ClientConn>;
  backends: Set<BackendConn>;
  log: ConsolaInstance;
  /** Set by a graceful close: finish what is in flight, keep nothing alive. */
  draining: boolean;
  /** Recent backend (and, in tsbal run, HA) transitions for `tsbal status`. */
  transitions: TransitionRing;
  sweep: ReturnType<typeof setInterval> | null;
  /** Called when the last client of a draining engine is gone. */
  onDrained: (() => void) | null;
  /**
   * Bumped by every reload commit (SIGHUP or a console command): a kept-alive client whose forwarding context (trust,
   * HEADER rules, blind_proxy) was made under an older one remakes it before its next request.
   */
  configGeneration: number;
  /** The management port's HTTP pages, for a management service that is a selector's target (set by startProxy). */
  managementPages: ((method: string, path: string) => Promise<{ head: string; body: string }>) | null;
  /** Scratch space heads are assembled in (used synchronously, one head at a time). */
  writer: HeadWriter;
  /** Where every backend socket reads into (onread): valid only during the callback that received it. */
  readBuffer: Buffer;
  /** The fields of the response head being handled (as short-lived as readBuffer, so reused: no arrays per response). */
  responseFields: Fields;
  /** Sockets corked by `holdWrites` until the end of this event-loop turn. */
  held: Socket[];
  flushScheduled: boolean;
  flush: () => void;
  /** The key of `sticky` services without their own sticky_secret (StartProxyOptions.affinityKey). */
  affinityKey: Buffer;
}

/** Sweep period: the granularity of every timeout. */
export const SWEEP_MS = 100;

export function clockNow(): number {
  return performance.now();
}

export function newEngine(log: ConsolaInstance, affinityKey: Buffer = randomBytes(32)): Engine {
  const engine: Engine = {
    now: clockNow(),
    health: new Map(),
    services: [],
    nodeStats: new Map(),
    noVerify: new Map(),
    clients: new Set(),
    backends: new Set(),
    log,
    draining: false,
    transitions: newTransitionRing(),
    sweep: null,
    onDrained: null,
    writer: newHeadWriter(),
    readBuffer: Buffer.allocUnsafe(64 * 1024),
    responseFields: { buf: Buffer.alloc(0), count: 0, offs: [], codes: [] },
    held: [],
    flushScheduled: false,
    configGeneration: 0,
    managementPages: null,
    flush: () => flushHeld(engine),
    affinityKey,
  };
  return engine;
}

/**
 * Holds the socket's writes (cork) until the check phase of this event-loop turn, after every ready socket has been
 * read and processed: the writes of a whole batch then leave back to back, so a peer (backend, client) is woken
 * once per batch rather than once per request, and reads them in one go, as HAProxy's deferred sends do.
 */
export function holdWrites(engine: Engine, socket: Socket): void {
  if (socket.writableCorked !== 0) return;
  socket.cork();
  engine.held.push(socket);
  if (!engine.flushScheduled) {
    engine.flushScheduled = true;
    setImmediate(engine.flush);
  }
}

function flushHeld(engine: Engine): void {
  engine.flushScheduled = false;
  const held = engine.held;
  for (let i = 0; i < held.length; i++) {
    const s = held[i]!;
    s.uncork();
  }
  held.length = 0;
}

/** Starts the sweep: `check(now)` runs every SWEEP_MS with the refreshed clock. */
export function startSweep(engine: Engine, check: (now: number) => void): void {
  engine.sweep = setInterval(() => {
    engine.now = clockNow();
    check(engine.now);
  }, SWEEP_MS);
  engine.sweep.unref?.();
}

export function stopSweep(engine: Engine): void {
  if (engine.sweep !== null) clearInterval(engine.sweep);
  engine.sweep = null;
}
