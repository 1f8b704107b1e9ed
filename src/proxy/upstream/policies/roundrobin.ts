// balance_method roundrobin: nginx's smooth weighted round robin (ngx_http_upstream_get_peer). Each pick adds every
// candidate's weight to its running score, takes the highest score and takes the total off it, so weights 5/1/1 go
// a a b a c a a rather than a a a a a b c, and equal weights cycle in order. Candidates left out of one pick (down,
// full, or already failed by this request) keep their score. The score lives on the backend's record (`lbScore`), so
// a pick is one pass over the candidates with no lookups; it survives a reload that keeps the backend.
import type { Selector, UpstreamView } from '../../contracts.ts';

export type WeightedCandidate = Pick<UpstreamView, 'active' | 'weightNow' | 'lbScore'>;

export function roundRobinPolicy<U extends WeightedCandidate>(): Selector<U> {
  return {
    method: 'roundrobin',
    weighted: true,
    select(candidates) {
      let total = 0;
      let best: U | undefined;
      let bestScore = -Infinity;
      for (const c of candidates) {
        const s = (c.lbScore += c.weightNow);
        total += c.weightNow;
        if (s > bestScore) {
          best = c;
          bestScore = s;
        }
      }
      if (best !== undefined) best.lbScore -= total;
      return best;
    },
    // A weight change keeps the score, as nginx keeps current_weight when effective_weight moves (slow start announces
    // a change every sweep tick); the new weight shows from the next pick on. A backend that went away starts afresh.
    upstreamDown: (u) => void (u.lbScore = 0),
  };
}
