// SERVER workers: the messages between the owner process and its workers, over the IPC channel (JSON). Requests
// that want an answer carry an id; the worker answers with a `reply` of the same id.
import type { PerlbalConfig } from '../../config/model.ts';
import type { MirroredChange } from '../management/listeners.ts';
import type { BindFailure } from '../index.ts';
import type { ReloadOutcome } from '../reload.ts';
import type { WorkerCounters } from './counters.ts';
import type { ConnectionReport } from '../management/connections.ts';

/** Set in a worker's environment: main.ts runs the worker instead of the command line. */
export const WORKER_ENV = 'TSBAL_WORKER';

export type ToWorker =
  | { kind: 'start'; index: number; config: PerlbalConfig; affinityKey: string; logLevel: number; tickets: Array<{ service: string; key: string }> }
  | { kind: 'reload'; id: number; config: PerlbalConfig }
  | { kind: 'check'; key: string; passed: boolean; answer: string; durationMs: number }
  | { kind: 'mirror'; change: MirroredChange }
  /** Also the owner's TLS session ticket keys (base64, by service): every worker resumes every worker's sessions. */
  | { kind: 'counters'; id: number; tickets: Array<{ service: string; key: string }> }
  | { kind: 'retryBind'; id: number }
  /** Its connections, for a console answer (management/connections.ts). */
  | { kind: 'connections'; id: number }
  | { kind: 'stop'; graceful: boolean; timeoutMs: number }
  /** Every worker compiled its config: bind and serve. */
  | { kind: 'listen' };

/** A reload's outcome as a worker reports it (the plan stays in the worker). */
export type WorkerReloadOutcome = { ok: true } | { ok: false; errors: string[] };

export type Reply =
  | { kind: 'reloaded'; outcome: WorkerReloadOutcome }
  | { kind: 'counters'; counters: WorkerCounters }
  | { kind: 'connections'; report: ConnectionReport }
  | { kind: 'rebound'; failures: BindFailure[] };

export type FromWorker =
  /** The worker runs and listens for messages: it may be sent its `start`. */
  | { kind: 'hello' }
  /** Compiled, waiting for `listen`. */
  | { kind: 'compiled' }
  | { kind: 'ready' }
  | { kind: 'failed'; message: string }
  | { kind: 'reply'; id: number; reply: Reply }
  | { kind: 'log'; type: string; tag: string; text: string }
  /** A backend's health changed on this worker's traffic (not a check: those are the owner's). */
  | { kind: 'transition'; key: string; to: 'down' | 'up'; text: string; failures: number; lastFailure: string | null };

export function workerOutcome(o: ReloadOutcome): WorkerReloadOutcome {
  return o.ok ? { ok: true } : { ok: false, errors: o.errors };
}
