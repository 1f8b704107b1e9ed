// The per-backend idle pool of one service: which connections wait for reuse, for how long, and which are not
// kept (persist_backend, backend_persist_cache, max_backend_uses, the backend's Keep-Alive hints). The list
// operations and decisions only; opening and closing sockets is conn.ts's.
import { isTlsSocket } from '../tls/upstream.ts';
import type { BackendConn } from '../records.ts';

/**
 * An idle used connection beyond backend_persist_cache is closed once idle this long (see docs/compat.md): long
 * enough that load swings do not close and reopen connections (HAProxy's pool-purge-delay is 5 s too).
 */
const EXCESS_IDLE_MS = 5_000;

/** Puts a connection into its backend's idle list. False: not kept (the backend is drained or down); close it. */
export function parkIdle(be: BackendConn, now: number): boolean {
  if (be.node.admin !== 'ready' || be.node.health.state === 'down') return false;
  const svc = be.svc;
  be.phase = 'idle';
  be.exchange = null;
  be.deadline = 0;
  be.idleSince = now;
  let limit = svc.opts.backendIdleTimeoutMs;
  // Leave before the backend's own keep-alive timeout closes it under us (Perlbal: 2 s margin; 1 s here).
  if (be.hintTimeoutMs > 0) limit = Math.min(limit, Math.max(be.hintTimeoutMs - 1000, be.hintTimeoutMs / 2));
  be.idleUntil = now + limit;
  be.node.idle.push(be);
  svc.idleCount++;
  return true;
}

export function unparkIdle(be: BackendConn): void {
  const list = be.node.idle;
  const i = list.indexOf(be);
  if (i !== -1) {
    list.splice(i, 1);
    be.svc.idleCount--;
  }
}

/** The most recently used idle connection of `be.node`'s list, taken off it (may be stale: check `usableIdle`). */
export function popIdle(svc: BackendConn['svc'], node: BackendConn['node']): BackendConn | null {
  const be = node.idle.pop();
  if (be === undefined) return null;
  svc.idleCount--;
  return be;
}

export function usableIdle(be: BackendConn, now: number): boolean {
  // A reload that turned backend_ssl on or off: a connection opened the other way is not reused.
  return be.phase === 'idle' && !be.socket.destroyed && now < be.idleUntil && isTlsSocket(be.socket) === ((be.svc.backendTls ?? null) !== null);
}

/**
 * May a connection an exchange is done with wait for the next request? `reusable`: the response ended cleanly on
 * a keep-alive connection and the whole request was sent.
 */
export function keepAfterUse(be: BackendConn, reusable: boolean): boolean {
  const svc = be.svc;
  const maxUses = svc.opts.maxBackendUses;
  return (
    reusable &&
    svc.opts.persistBackend &&
    !svc.engine.draining &&
    !(maxUses > 0 && be.uses >= maxUses) &&
    be.hintMaxLeft !== 1 &&
    !be.socket.destroyed
  );
}

/** Sweep: has this idle connection waited long enough (its idle limit, or beyond backend_persist_cache)? */
export function idleExpired(be: BackendConn, now: number): boolean {
  const svc = be.svc;
  const excess = svc.idleCount > svc.opts.backendPersistCache + svc.opts.connectAhead;
  return now >= be.idleUntil || (excess && be.uses > 0 && now - be.idleSince >= EXCESS_IDLE_MS);
}

/** connect_ahead: how many spares to open now to keep that many beyond current demand (at most 10 per call). */
export function sparesWanted(svc: BackendConn['svc']): number {
  const want = svc.opts.connectAhead;
  if (want <= 0 || svc.engine.draining) return 0;
  return Math.max(0, Math.min(10, want - (svc.idleCount + svc.sparesOpening)));
}
