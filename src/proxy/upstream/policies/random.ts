// balance_method random (Perlbal's only method): each available backend with probability weight / total weight
// (uniform when every weight is 1, as in Perlbal).
import type { Selector } from '../../contracts.ts';
import type { WeightedCandidate } from './roundrobin.ts';

export function randomPolicy<U extends WeightedCandidate>(random: () => number): Selector<U> {
  return {
    method: 'random',
    weighted: true,
    select(candidates) {
      let total = 0;
      for (const c of candidates) total += c.weightNow;
      let r = random() * total;
      for (const c of candidates) {
        if (r < c.weightNow) return c;
        r -= c.weightNow;
      }
      // Rounding at the top end.
      return candidates[candidates.length - 1];
    },
  };
}
