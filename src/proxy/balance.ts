// Selection policies over a service's backends (balance_method): random (Perlbal's only one), roundrobin, leastconn.
// A policy sees only the candidates that may take a request now and returns an index into them.
import type { BalanceMethod } from '../config/model.ts';

export interface Candidate {
  /** Requests in flight to this backend from this service. */
  active: number;
}

export interface Balancer {
  method: BalanceMethod;
  /** Round-robin position. */
  next: number;
}

export function newBalancer(method: BalanceMethod): Balancer {
  return { method, next: 0 };
}

/** Picks one of `candidates` (non-empty). `random` is injectable for tests. */
export function pick(b: Balancer, candidates: readonly Candidate[], random: () => number = Math.random): number {
  const n = candidates.length;
  if (n === 1) return 0;
  switch (b.method) {
    case 'random':
      return Math.floor(random() * n);
    case 'roundrobin':
      return b.next++ % n;
    case 'leastconn': {
      // Ties rotate, so equal backends share load instead of the first one taking everything.
      const start = b.next++ % n;
      let best = start;
      for (let k = 1; k < n; k++) {
        const i = (start + k) % n;
        if (candidates[i]!.active < candidates[best]!.active) best = i;
      }
      return best;
    }
  }
}
