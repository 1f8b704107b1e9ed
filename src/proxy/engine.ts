// State shared by every service of one running proxy: the coarse clock, backend health (per ip:port, shared across
// services like Perlbal's NoVerify list), and the connection sets the timeout sweep walks.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { ConsolaInstance } from 'consola';
import { newHeadWriter } from './http/writer.ts';
import { newTransitionRing } from '../status/transitions.ts';
import type { Engine } from './records.ts';

// Declared in records.ts with the other records that name each other (so no import cycle); re-exported here.
export type { Engine } from './records.ts';

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
    workers: null,
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
    listenMode: 'serve',
    ownerBind: null,
    remoteClients: null,
    onTransition: null,
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
