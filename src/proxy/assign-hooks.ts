// Perlbal's `backend_client_assigned` hooks for the plugins tsbal implements: fields set on the request a backend
// is given. XFFExtras (X-Forwarded-Port: the port the client connected to; X-Forwarded-Proto) and Queues
// (X-Queue-Count/-Age and X-HP-Queue-Count/-Age: who still waits for a backend of this service). They are set as
// HEADER INSERT sets a field (replacing one the client sent, in place), after the service's own HEADER rules.
// Only services that register these plugins pay for them: one small rule set per request.
import type { ServiceModel } from '../config/model.ts';
import type { HeaderRules } from './http/forward.ts';
import { xffExtras } from './plugin-options.ts';

export interface AssignHooks {
  /** XFFExtras send_backend_port / send_backend_proto. */
  forwardedPort: boolean;
  forwardedProto: boolean;
  queues: boolean;
}

export function compileAssignHooks(service: ServiceModel): AssignHooks | null {
  const xff = xffExtras(service);
  const queues = service.plugins.includes('queues');
  if (xff === null && !queues) return null;
  return { forwardedPort: xff?.port ?? false, forwardedProto: xff?.proto ?? false, queues };
}

/** What the hooks read about the request's connection and its service's queue. */
export interface AssignFacts {
  trusted: boolean;
  blindProxy: boolean;
  localPort: number;
  tls: boolean;
  /** Clients of the service still waiting for a backend, and how long the oldest has waited (whole seconds). */
  waiting: number;
  oldestWaitSec: number;
  /** The same for the high-priority ones (Highpri), counted apart as Perlbal's X-HP-Queue-*. */
  hpWaiting: number;
  hpOldestWaitSec: number;
}

/**
 * The rule set for one request: `base` (the service's HEADER rules) followed by the plugins' fields. XFFExtras sets
 * nothing for a trusted blind_proxy peer, as Perlbal's `($trusted && !$blind) || !$trusted`.
 */
export function assignRules(h: AssignHooks, f: AssignFacts, base: HeaderRules | null): HeaderRules | null {
  const insert: HeaderRules['insert'] = [];
  if (!(f.trusted && f.blindProxy)) {
    if (h.forwardedPort) insert.push({ name: 'X-Forwarded-Port', lower: 'x-forwarded-port', value: String(f.localPort) });
    if (h.forwardedProto) insert.push({ name: 'X-Forwarded-Proto', lower: 'x-forwarded-proto', value: f.tls ? 'https' : 'http' });
  }
  if (h.queues) {
    insert.push(
      { name: 'X-Queue-Count', lower: 'x-queue-count', value: String(f.waiting) },
      { name: 'X-Queue-Age', lower: 'x-queue-age', value: String(f.oldestWaitSec) },
      { name: 'X-HP-Queue-Count', lower: 'x-hp-queue-count', value: String(f.hpWaiting) },
      { name: 'X-HP-Queue-Age', lower: 'x-hp-queue-age', value: String(f.hpOldestWaitSec) },
    );
  }
  if (insert.length === 0) return base;
  if (base === null) return { remove: new Set(), insert };
  return { remove: base.remove, insert: [...base.insert.filter((i) => !insert.some((n) => n.lower === i.lower)), ...insert] };
}
