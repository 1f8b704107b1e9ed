// balance_method source (`sticky = source`; HAProxy's `balance source` with `hash-type consistent`): the client
// address picks the backend by rendezvous (highest-random-weight) hashing. Every backend scores the address; the
// highest score wins. Removing one of N backends moves only the clients it had (about 1/N); nobody else's winner
// changes. Adding one takes about 1/(N+1) of the clients, from every backend alike. Weighted as in Schindelhauer and
// Schomaker's weighted rendezvous: score = weight / -ln(hash), so a backend of weight 2 wins twice as often.
// Integer hashing only (FNV-1a, then murmur3's finaliser): nothing is allocated per request.
import type { Selector, UpstreamView } from '../../contracts.ts';

const FNV_OFFSET = 0x811c9dc5;

/** FNV-1a over `s`, continuing from `h`. */
function fnv1a(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/** murmur3's 32-bit finaliser: spreads FNV's weak low bits over the whole word. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The score of backend `key` for client `ip`, in [0, 2^32). Exported for the tests. */
export function rendezvousHash(key: string, ip: string): number {
  return mix(fnv1a(fnv1a(FNV_OFFSET, key) ^ 0x9e3779b9, ip));
}

/** The index of the winner among `candidates` for `ip` (non-empty). */
export function rendezvousPick(candidates: readonly Pick<UpstreamView, 'key' | 'weight'>[], ip: string): number {
  let best = 0;
  let bestScore = -1;
  let weighted = false;
  const w0 = candidates[0]!.weight;
  for (let i = 1; i < candidates.length; i++) if (candidates[i]!.weight !== w0) weighted = true;
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    const h = rendezvousHash(c.key, ip);
    // Equal weights: the raw hash orders the same as the weighted score, without the logarithm.
    const score = weighted ? c.weight / -Math.log((h + 0.5) / 4294967296) : h;
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  }
  return best;
}

export function sourcePolicy<U extends Pick<UpstreamView, 'active' | 'weightNow' | 'lbScore'>>(): Selector<U> {
  let next = 0;
  return {
    method: 'source',
    // Not thinned at random during a backend's slow start (chooseUpstream does that to policies blind to weights):
    // a client would bounce between two backends for the whole ramp. A returning backend takes its clients back at
    // once, the price of affinity that is a pure function of the address.
    weighted: true,
    select(candidates, request) {
      // A connect_ahead spare has no client: any backend will do.
      if (request === null) return candidates[next++ % candidates.length];
      return candidates[rendezvousPick(candidates as unknown as readonly UpstreamView[], request.peerIp)];
    },
  };
}
