// The heartbeat worker: the node, its sockets and its timer on their own thread and heap, so a busy or
// garbage-collecting proxy never delays a heartbeat. Fate sharing: the main thread says it is alive every
// keepalive/2; when it has been silent for longer than `muteAfterMs` the worker stops sending (the peer then takes
// over after its deadtime), and starts again when the main thread comes back.
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { Medium } from '../config/model.ts';
import { startDriver, type Driver, type ShellEvent } from './driver.ts';
import type { EngineConfig } from './types.ts';

export type ToWorker =
  | { t: 'init'; cfg: EngineConfig; media: Medium[]; udpPort: number; muteAfterMs: number; stateDir: string }
  | { t: 'event'; ev: ShellEvent }
  | { t: 'alive' }
  | { t: 'status'; id: number }
  | { t: 'resendShutdone' }
  | { t: 'close' };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'failed'; msg: string }
  | { t: 'action'; a: Parameters<Parameters<typeof startDriver>[0]['onAction']>[0] }
  | { t: 'status'; id: number; status: ReturnType<Driver['status']> }
  | { t: 'closed' };

if (!parentPort) throw new Error('ha/heartbeat must run as a worker thread');
const port = parentPort;
const post = (m: FromWorker): void => port.postMessage(m);

let driver: Driver | null = null;
let lastAlive = performance.now();
let muteAfterMs = Infinity;
let mutedSince: number | null = null;

const maySend = (): boolean => {
  const silent = performance.now() - lastAlive;
  if (silent <= muteAfterMs) {
    if (mutedSince !== null) {
      post({ t: 'action', a: { kind: 'log', level: 'warn', msg: `main thread is back: heartbeats resume after ${Math.round(performance.now() - mutedSince)} ms muted` } });
      mutedSince = null;
      // What the node sent while muted never left; the peer will not ask for it again (it saw us die).
      setImmediate(() => driver?.feed({ kind: 'resync' }));
    }
    return true;
  }
  if (mutedSince === null) {
    mutedSince = performance.now();
    // The main thread cannot log now; this shows once it recovers, and the peer's log shows the takeover.
    post({ t: 'action', a: { kind: 'log', level: 'error', msg: `main thread stalled for ${Math.round(silent)} ms: heartbeats stopped so the peer takes over (fate sharing)` } });
  }
  return false;
};

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'init':
      muteAfterMs = m.muteAfterMs;
      lastAlive = performance.now();
      startDriver({ cfg: m.cfg, media: m.media, udpPort: m.udpPort, thread: 'worker', maySend, stateDir: m.stateDir, onAction: (a) => post({ t: 'action', a }) }).then(
        (d) => {
          driver = d;
          post({ t: 'ready' });
        },
        (e: Error) => post({ t: 'failed', msg: e.message }),
      );
      break;
    case 'alive':
      lastAlive = performance.now();
      break;
    case 'event':
      lastAlive = performance.now();
      driver?.feed(m.ev);
      break;
    case 'status':
      if (driver) post({ t: 'status', id: m.id, status: driver.status() });
      break;
    case 'resendShutdone':
      driver?.resendShutdone();
      break;
    case 'close':
      void (driver?.close() ?? Promise.resolve()).then(() => post({ t: 'closed' }));
      break;
  }
});
