// balance_method leastconn: the backend with the fewest requests in flight from this service per unit of weight
// (HAProxy's weighted leastconn: a weight-3 backend takes three times the concurrent requests of a weight-1 one).
import type { Selector } from '../../contracts.ts';
import type { WeightedCandidate } from './roundrobin.ts';

export function leastConnPolicy<U extends WeightedCandidate>(): Selector<U> {
  let next = 0;
  return {
    method: 'leastconn',
    weighted: true,
    select(candidates) {
      const n = candidates.length;
      // Ties rotate, so equal backends share load instead of the first one taking everything.
      const start = next++ % n;
      let best = candidates[start]!;
      for (let k = 1; k < n; k++) {
        const c = candidates[(start + k) % n]!;
        // c.active / c.weight < best.active / best.weight, without dividing (weights are > 0 here).
        if (c.active * best.weightNow < best.active * c.weightNow) best = c;
      }
      return best;
    },
  };
}
