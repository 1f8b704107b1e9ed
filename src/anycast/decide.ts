// Whether this node should announce the anycast VIP now, and why. Pure: the caller gathers what each service on the
// VIP looks like (inputs.ts) and applies the answer (announcer.ts). The router sends a share of all new flows to
// every node that announces, so a node announces only while it can serve: a node without healthy backends that
// kept announcing would answer its share with 503s (or a refused connect) while the other nodes could serve it.

export interface ServiceOnVip {
  name: string;
  /** Its listener is bound. */
  listening: boolean;
  /** A reverse_proxy (or selector) needs backends; a web_server or management service serves by itself. */
  needsBackends: boolean;
  /** Backends that may take a new request (health up or starting, admin ready, weight > 0, checked at least once). */
  healthy: number;
  total: number;
}

export type AnnounceReason =
  | { kind: 'serving'; services: string[] }
  | { kind: 'no-service' }
  | { kind: 'not-listening'; service: string }
  | { kind: 'no-healthy-backend'; service: string; total: number }
  | { kind: 'none-serving'; services: string[] }
  | { kind: 'draining' }
  | { kind: 'held'; by: string };

export interface AnnounceDecision {
  announce: boolean;
  reason: AnnounceReason;
}

export interface DecideInput {
  services: readonly ServiceOnVip[];
  require: 'all' | 'any';
  /** A planned stop is under way: withdraw whatever the health says. */
  draining: boolean;
  /** `tsbal anycast drain`: withdrawn by the operator until `resume`. */
  heldBy: string | null;
}

/** Why one service cannot take traffic now; null when it can. */
function blocker(s: ServiceOnVip): AnnounceReason | null {
  if (!s.listening) return { kind: 'not-listening', service: s.name };
  if (s.needsBackends && s.healthy === 0) return { kind: 'no-healthy-backend', service: s.name, total: s.total };
  return null;
}

export function decideAnnounce(input: DecideInput): AnnounceDecision {
  if (input.draining) return { announce: false, reason: { kind: 'draining' } };
  if (input.heldBy !== null) return { announce: false, reason: { kind: 'held', by: input.heldBy } };
  const services = input.services;
  if (services.length === 0) return { announce: false, reason: { kind: 'no-service' } };
  if (input.require === 'all') {
    for (const s of services) {
      const b = blocker(s);
      if (b !== null) return { announce: false, reason: b };
    }
    return { announce: true, reason: { kind: 'serving', services: services.map((s) => s.name) } };
  }
  const serving = services.filter((s) => blocker(s) === null).map((s) => s.name);
  if (serving.length === 0) {
    // One blocker says most; with a single service it is the same words as `all`.
    if (services.length === 1) return { announce: false, reason: blocker(services[0]!)! };
    return { announce: false, reason: { kind: 'none-serving', services: services.map((s) => s.name) } };
  }
  return { announce: true, reason: { kind: 'serving', services: serving } };
}

/** The reason in words, for the log, `tsbal status` and the metrics' `reason` label. */
export function reasonWords(r: AnnounceReason): string {
  switch (r.kind) {
    case 'serving': return `${r.services.length === 1 ? 'service' : 'services'} ${r.services.join(', ')} serving`;
    case 'no-service': return 'no enabled service listens on the VIP';
    case 'not-listening': return `service ${r.service} is not listening`;
    case 'no-healthy-backend': return r.total === 0 ? `service ${r.service} has no backends` : `service ${r.service} has no healthy backend (0 of ${r.total})`;
    case 'none-serving': return `no service on the VIP can serve (${r.services.join(', ')})`;
    case 'draining': return 'stopping (planned): withdrawn first';
    case 'held': return `drained by ${r.by}; tsbal anycast resume announces again`;
  }
}

/** A short stable word for the reason (metrics label, JSON). */
export const reasonCode = (r: AnnounceReason): AnnounceReason['kind'] => r.kind;
