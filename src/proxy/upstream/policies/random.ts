// balance_method random (Perlbal's only method): uniform over the available backends.
import type { Selector, UpstreamView } from '../../contracts.ts';

export function randomPolicy<U extends Pick<UpstreamView, 'active'>>(random: () => number): Selector<U> {
  return {
    method: 'random',
    select: (candidates) => candidates[Math.floor(random() * candidates.length)],
  };
}
