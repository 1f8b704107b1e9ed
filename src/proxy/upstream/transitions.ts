// What follows a health transition of one backend address, whoever saw it (an active check, a refused connect, a
// 5xx streak, an answer after a passive mark-down): exactly one log line naming the backend, the reason and the
// answer, the policies' lb_ops hooks (upstreamDown / upstreamUp) on every service using it, and its idle
// connections closed, so no request is handed one to a backend that is down.
import type { ConsolaInstance } from 'consola';
import type { HealthTransition, UpstreamHealth } from './health.ts';
import { noteTransition, type TransitionRing } from '../../status/transitions.ts';

/** A backend of a service, as far as a transition touches it. */
interface Node {
  readonly health: UpstreamHealth;
  readonly idle: ReadonlyArray<{ readonly socket: { destroy(): void } }>;
}

/**
 * Who hears of a transition: the engine (its log, its services). Structural, so that this file, which conn.ts
 * imports, needs no type of the engine's records (they name conn.ts's).
 */
interface Engine {
  readonly log: Pick<ConsolaInstance, 'warn' | 'info'>;
  /** Recent transitions for `tsbal status`. */
  readonly transitions: TransitionRing;
  /**
   * SERVER workers, in a worker: a transition its traffic saw goes to the owner, which logs it once for all workers
   * (so it is not logged here).
   */
  readonly onTransition?: ((h: UpstreamHealth, to: 'down' | 'up', text: string) => void) | null;
  readonly services: ReadonlyArray<{
    readonly nodes: readonly Node[];
    readonly balancer: { upstreamUp?(u: Node): void; upstreamDown?(u: Node): void; weightChanged?(u: Node): void };
  }>;
}

/** Announces a transition (`down` or `up`; anything else is not one and is ignored). */
export function announceTransition(engine: Engine, h: UpstreamHealth, t: HealthTransition, reason: string): void {
  if (t !== 'down' && t !== 'up') return;
  const text = `backend ${h.key} ${t} (${reason})`;
  if (engine.onTransition != null) engine.onTransition(h, t, text);
  else if (t === 'down') engine.log.warn(text);
  else engine.log.info(text);
  noteTransition(engine.transitions, 'backend', text);
  for (const svc of engine.services) {
    for (const u of svc.nodes) {
      if (u.health !== h) continue;
      if (t === 'down') {
        // Destroying the socket is enough: its close handler takes it off the idle list (conn.ts onClose).
        for (const be of u.idle) be.socket.destroy();
        svc.balancer.upstreamDown?.(u);
      } else {
        svc.balancer.upstreamUp?.(u);
      }
    }
  }
}

/** The slow start of `h` moved on (or ended): policies that keep weights re-read effectiveWeight. */
export function announceWeight(engine: Engine, h: UpstreamHealth): void {
  for (const svc of engine.services) {
    const hook = svc.balancer.weightChanged;
    if (hook === undefined) continue;
    for (const u of svc.nodes) if (u.health === h) hook(u);
  }
}
