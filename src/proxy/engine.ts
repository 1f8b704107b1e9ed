// State shared by every service of one running proxy: the coarse clock, backend health (per ip:port, shared across
// services like Perlbal's NoVerify list), and the connection sets the timeout sweep walks.
// Imported, not the global: Node's globalThis.performance is a getter, which every per-request call would run.
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import type { ConsolaInstance } from 'consola';
import { newHeadWriter } from './http/writer.ts';
import { newFields } from './http/fields.ts';
import { newTransitionRing } from '../status/transitions.ts';
import { newWriteBatch } from '../runtime/socket-writes.ts';
import { copyBytes } from '../runtime/buffer-copy.ts';
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
    writer: newHeadWriter(copyBytes),
    readBuffer: Buffer.allocUnsafe(64 * 1024),
    responseFields: newFields(),
    writes: newWriteBatch(),
    configGeneration: 0,
    managementPages: null,
    affinityKey,
    listenMode: 'serve',
    ownerBind: null,
    remoteClients: null,
    onTransition: null,
  };
  return engine;
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
