// One backend of one service (HAProxy's `server`, Caddy's `Upstream`): its weight, the operator's admin state, its
// requests in flight, this service's idle connections to it, and the engine-wide health of its ip:port.
// Whether it may take a request now is decided in one place, `available`; which of the available ones takes it is
// the service's Selector's business (select.ts), `chooseUpstream` ties the two together.
import type { SelectRequest } from '../contracts.ts';
import type { Engine, ServiceRuntime, Upstream } from '../records.ts';
import { newNodeStats } from '../management/stats.ts';
import { pinCookieValue, prefixedCookieValue, upstreamById, type Sticky } from './affinity.ts';
import { admit, isAvailable, newUpstreamHealth, slowStartFactor, type BackoffPolicy, type UpstreamHealth } from './health.ts';
import { formatHostPort } from '../../config/perlbal/values.ts';

// Declared in records.ts with the other records that name each other (so no import cycle); re-exported here.
export type { Upstream } from '../records.ts';

function healthFor(engine: Engine, key: string, policy: BackoffPolicy): UpstreamHealth {
  let h = engine.health.get(key);
  if (h === undefined) {
    h = newUpstreamHealth(key, policy);
    engine.health.set(key, h);
  }
  return h;
}

/** A backend of a service: its engine-wide health and counters, its own idle connections. */
export function newUpstream(engine: Engine, host: string, port: number, backoff: BackoffPolicy, weight = 1, maxConns = 0): Upstream {
  const key = formatHostPort({ host, port });
  let stats = engine.nodeStats.get(key);
  if (stats === undefined) {
    stats = newNodeStats(key);
    engine.nodeStats.set(key, stats);
  }
  return {
    key, host, port, weight, weightNow: weight, lbScore: 0, maxConns, admin: 'ready', health: healthFor(engine, key, backoff), stats,
    used: 0, idle: [], opening: 0, active: 0,
  };
}

/**
 * May this backend be offered to the policy now? The one place for it: admin state and weight 0 (both drain),
 * max_conns, health (a down one becomes available again for its half-open trial once its backoff is over).
 */
export function available(u: Upstream, now: number): boolean {
  return u.admin === 'ready' && u.weight > 0 && hasSlot(u) && isAvailable(u.health, now);
}

/** Below its max_conns (or unlimited). */
export function hasSlot(u: Upstream): boolean {
  return u.maxConns === 0 || u.active < u.maxConns;
}

/**
 * May a request pinned to this backend (session affinity) go to it? As `available`, but through `drain` and weight 0:
 * drain refuses new sessions, not existing ones (HAProxy's semantics); `maint` and down move the session. max_conns
 * stays a hard limit: a pinned request finding its backend full is re-pinned to one with room (HAProxy's
 * `option redispatch`), or queued when every backend is full.
 */
export function availableToPinned(u: Upstream, now: number): boolean {
  return u.admin !== 'maint' && hasSlot(u) && isAvailable(u.health, now);
}

/**
 * The weight a policy should use now: the configured weight times the slow-start share (health.ts slowStartFactor:
 * 1 when up, ramping while `starting`). Weighted policies read this, never `weight` alone, so slow start works for
 * all of them; transitions.ts calls their `weightChanged` hook as the share moves.
 */
export function effectiveWeight(u: Upstream, now: number): number {
  return u.weight * slowStartFactor(u.health, now);
}

/**
 * What a policy weighs a candidate by: effectiveWeight, except that a down backend offered for its half-open trial
 * (passive breaker, backoff over) competes with its configured weight: at 0 a weighted policy would never try it.
 */
function candidateWeight(u: Upstream, now: number): number {
  return u.health.state === 'down' ? u.weight : effectiveWeight(u, now);
}

/**
 * Nothing available, but only because of max_conns: some backend (not in `exclude`) would take the request once one
 * of its requests in flight ends. The request waits in the service's queue instead of getting 503.
 */
export function onlyFull(svc: ServiceRuntime, exclude: readonly Upstream[] | null): boolean {
  const now = svc.engine.now;
  for (const u of svc.nodes) {
    if (exclude !== null && exclude.includes(u)) continue;
    if (!hasSlot(u) && u.admin === 'ready' && u.weight > 0 && isAvailable(u.health, now)) return true;
  }
  return false;
}

/**
 * Chooses a backend for a request: one the service's policy picks among the available ones, skipping `exclude`
 * (backends that already failed this request). Null: none available. `request` is null for a connect_ahead spare.
 */
export function chooseUpstream(svc: ServiceRuntime, request: SelectRequest | null, exclude: readonly Upstream[] | null): Upstream | null {
  const now = svc.engine.now;
  const sticky = svc.sticky;
  if (sticky !== null && request !== null && sticky.mode !== 'source') {
    if (request.pin !== null) {
      const pinned = upstreamById(sticky, svc.nodes, request.pin);
      // A retry excludes the pinned backend that just failed: it is re-pinned below, like a down one.
      if (pinned !== null && (exclude === null || !exclude.includes(pinned)) && availableToPinned(pinned, now) && admit(pinned.health, now, svc.backoff)) {
        request.setCookie = null;
        pinned.used++;
        return pinned;
      }
    }
    const u = chooseAvailable(svc, request, exclude, now);
    request.setCookie = u === null ? null : repinCookie(sticky, u, request);
    return u;
  }
  return chooseAvailable(svc, request, exclude, now);
}

/**
 * The Set-Cookie that pins a request to `u`: tsbal's cookie (cookie mode); in prefix mode, the application's cookie
 * re-prefixed if the client had one (pinned elsewhere), else nothing: the application's own Set-Cookie gets the
 * prefix on its way out.
 */
function repinCookie(sticky: Sticky, u: Upstream, request: SelectRequest): string | null {
  if (sticky.mode === 'cookie') return pinCookieValue(sticky, u.key);
  return request.pinnedAppValue === null ? null : prefixedCookieValue(sticky, u.key, request.pinnedAppValue);
}

function chooseAvailable(svc: ServiceRuntime, request: SelectRequest | null, exclude: readonly Upstream[] | null, now: number): Upstream | null {
  // The scratch array is filled by index and its length set only when the count changes: `length = 0` per request
  // was a runtime call that also gave the backing store back, which the next push grew again.
  const candidates = svc.scratch;
  let n = 0;
  const thin = svc.balancer.weighted !== true;
  let ready = 0;
  for (const u of svc.nodes) {
    if (exclude !== null && exclude.includes(u)) continue;
    if (!available(u, now)) continue;
    ready++;
    // A policy blind to weights still gives a backend in slow start only its share: it is offered to the policy
    // that often. (A weighted policy uses effectiveWeight instead.)
    if (thin && u.health.state === 'starting' && Math.random() >= slowStartFactor(u.health, now)) continue;
    u.weightNow = candidateWeight(u, now);
    candidates[n++] = u;
  }
  if (n === 0 && ready > 0) {
    // Every one left is starting and none was drawn: take them all rather than refuse.
    for (const u of svc.nodes) {
      if ((exclude !== null && exclude.includes(u)) || !available(u, now)) continue;
      u.weightNow = candidateWeight(u, now);
      candidates[n++] = u;
    }
  }
  if (candidates.length !== n) candidates.length = n;
  // No connect_ahead spare for a pool that is all down: only a request goes to the all_down fallback. Backends that
  // are up but at max_conns are not "all down": the request waits for one of them (exchange.ts).
  if (n === 0) return request === null || onlyFull(svc, exclude) ? null : allDown(svc, exclude);
  const u = n === 1 ? candidates[0]! : svc.balancer.select(candidates, request);
  if (u === undefined || !admit(u.health, now, svc.backoff)) return null;
  u.used++;
  return u;
}

/**
 * Every backend of the pool is down (by checks): unless `all_down = 503`, the one whose last failure is the oldest
 * takes the request, so a pool whose checks are wrong (a bad path, a strict expect) still serves. Without checks the
 * passive breaker already lets a trial request through after its backoff: nothing to do here.
 */
function allDown(svc: ServiceRuntime, exclude: readonly Upstream[] | null): Upstream | null {
  if (svc.health.check === null || svc.health.allDown === '503') return null;
  let best: Upstream | null = null;
  for (const u of svc.nodes) {
    if (u.admin !== 'ready' || u.health.state !== 'down' || (exclude !== null && exclude.includes(u))) continue;
    if (best === null || u.health.lastFailureAt < best.health.lastFailureAt) best = u;
  }
  if (best !== null) best.used++;
  return best;
}

/** A request was sent to `u` (its in-flight count; the policy's `taken` hook). */
export function takeUpstream(svc: ServiceRuntime, u: Upstream): void {
  u.active++;
  svc.balancer.taken?.(u);
}

export function releaseUpstream(svc: ServiceRuntime, u: Upstream): void {
  u.active--;
  svc.balancer.released?.(u);
}
