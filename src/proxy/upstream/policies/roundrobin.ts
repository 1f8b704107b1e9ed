// balance_method roundrobin: each available backend in turn. The position survives a reload that keeps the method.
import type { Selector, UpstreamView } from '../../contracts.ts';

export function roundRobinPolicy<U extends Pick<UpstreamView, 'active'>>(): Selector<U> {
  let next = 0;
  return {
    method: 'roundrobin',
    select: (candidates) => candidates[next++ % candidates.length],
  };
}
