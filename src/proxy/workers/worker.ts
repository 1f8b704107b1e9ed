// SERVER workers: one worker process. It runs the proxy's data path on its own SO_REUSEPORT listeners, with the
// config, health-check results, console changes and reloads its owner sends, and nothing that must exist once (no
// consoles, no checks of its own; it reports its connections when the owner's console asks). Its log lines go to the owner, which writes every log. It ends when the owner
// says so, or when the owner is gone (the IPC channel closes), so no worker outlives its owner holding a port.
import { formatWithOptions } from 'node:util';
import type { LogObject } from 'consola';
import { log } from '../../log.ts';
import { startProxy, type ProxyHandle } from '../index.ts';
import { applyMirroredChange } from '../management/listeners.ts';
import { applyRemoteCheck } from '../upstream/checks.ts';
import { takeCounters } from './counters.ts';
import { takeConnections } from '../management/connections.ts';
import { backendConnections } from '../management/metrics.ts';
import { workerOutcome, type FromWorker, type Reply, type ToWorker } from './protocol.ts';

function send(message: FromWorker): void {
  if (process.connected) process.send!(message);
}

/**
 * While starting and reloading, warnings and info lines repeat what the owner logs itself from the same config
 * (listening on, not a local address yet, the reload summary); errors always go through.
 */
let quietInfo = true;

function forwardLogs(): void {
  log.setReporters([
    {
      log(entry: LogObject) {
        if (quietInfo && (entry.level ?? 0) >= 1) return;
        const text = formatWithOptions({ colors: false, breakLength: Infinity }, ...entry.args);
        send({ kind: 'log', type: entry.type, tag: entry.tag, text });
      },
    },
  ]);
}

function reply(id: number, r: Reply): void {
  send({ kind: 'reply', id, reply: r });
}

/**
 * The owner's session ticket keys replace this worker's own (the owner rotates them; a worker's own rotation would
 * come later than the owner's, since it started later): a ticket from any worker resumes on any other.
 */
function useOwnerTickets(proxy: ProxyHandle, tickets: Array<{ service: string; key: string }>): void {
  for (const t of tickets) {
    const tls = proxy.services.find((s) => s.name === t.service)?.tls;
    if (tls == null || tls.tickets.key.toString('base64') === t.key) continue;
    const key = Buffer.from(t.key, 'base64');
    try {
      tls.server.setTicketKeys(key);
    } catch {
      // Bun has no setTicketKeys yet: its workers keep their own keys (a ticket resumes on the worker that issued it).
      continue;
    }
    tls.tickets = { key, since: proxy.engine.now };
  }
}

async function handle(proxy: ProxyHandle, m: ToWorker): Promise<void> {
  switch (m.kind) {
    case 'check':
      applyRemoteCheck(proxy.checks, m.key, m.passed, m.answer, m.durationMs);
      return;
    case 'mirror':
      applyMirroredChange(proxy.consoleTarget, m.change);
      return;
    case 'counters':
      useOwnerTickets(proxy, m.tickets);
      reply(m.id, { kind: 'counters', counters: takeCounters(proxy.engine, proxy.services) });
      return;
    case 'connections':
      reply(m.id, { kind: 'connections', report: takeConnections(proxy.consoleTarget, backendConnections(proxy.engine)) });
      return;
    case 'reload': {
      quietInfo = true;
      const outcome = await proxy.reload(m.config);
      quietInfo = false;
      reply(m.id, { kind: 'reloaded', outcome: workerOutcome(outcome) });
      return;
    }
    case 'retryBind':
      reply(m.id, { kind: 'rebound', failures: await proxy.retryBind() });
      return;
    case 'stop':
      await proxy.close({ graceful: m.graceful, timeoutMs: m.timeoutMs });
      process.exit(0);
    case 'start':
    case 'listen':
      return;
  }
}

/** The worker's main: waits for its `start`, serves, and follows the owner's messages until told to stop. */
export function runWorker(): void {
  forwardLogs();
  // Signals are the owner's to act on: it tells each worker to reload or stop (a terminal's Ctrl-C or systemd's
  // SIGTERM to the whole group reaches the workers too, and must not cut their requests short).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  let proxy: ProxyHandle | null = null;
  let listen: (() => void) | null = null;
  let turn: Promise<void> = Promise.resolve();
  process.on('disconnect', () => {
    // The owner is gone (killed): stop accepting at once, finish briefly, exit.
    const closing = proxy?.close({ graceful: true, timeoutMs: 2000 }) ?? Promise.resolve();
    void closing.finally(() => process.exit(0));
  });
  process.on('message', (raw) => {
    const m = raw as ToWorker;
    if (m.kind === 'start') {
      log.level = m.logLevel;
      const beforeBind = (): Promise<void> =>
        new Promise((resolve) => {
          listen = resolve;
          send({ kind: 'compiled' });
        });
      startProxy(m.config, { log: log.withTag('proxy'), affinityKey: Buffer.from(m.affinityKey, 'base64'), workers: { kind: 'worker', beforeBind } }).then(
        (p) => {
          proxy = p;
          useOwnerTickets(p, m.tickets);
          p.engine.onTransition = (h, to, text) => send({ kind: 'transition', key: h.key, to, text, failures: h.failures, lastFailure: h.lastFailure });
          quietInfo = false;
          send({ kind: 'ready' });
        },
        (error: Error) => {
          send({ kind: 'failed', message: error.message });
          process.exit(1);
        },
      );
      return;
    }
    if (m.kind === 'listen') {
      listen?.();
      return;
    }
    const p = proxy;
    if (p === null) return;
    // Checks and counters at once; reloads, binds and stops in order.
    if (m.kind === 'check' || m.kind === 'counters' || m.kind === 'connections' || m.kind === 'mirror') {
      void handle(p, m);
      return;
    }
    turn = turn.then(() => handle(p, m)).catch((error: Error) => log.error(`worker: ${m.kind}: ${error.message}`));
  });
  send({ kind: 'hello' });
}
