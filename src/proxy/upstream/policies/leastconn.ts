// balance_method leastconn: the backend with the fewest requests in flight from this service.
import type { Selector, UpstreamView } from '../../contracts.ts';

export function leastConnPolicy<U extends Pick<UpstreamView, 'active'>>(): Selector<U> {
  let next = 0;
  return {
    method: 'leastconn',
    select(candidates) {
      const n = candidates.length;
      // Ties rotate, so equal backends share load instead of the first one taking everything.
      const start = next++ % n;
      let best = start;
      for (let k = 1; k < n; k++) {
        const i = (start + k) % n;
        if (candidates[i]!.active < candidates[best]!.active) best = i;
      }
      return candidates[best];
    },
  };
}
