// Health of one backend address (ip:port), shared by every service that uses it. Today it is passive only, a
// circuit breaker: up → (failure) → down for `backoff` → half-open (one trial request) → up on a response, or down
// again with the backoff doubled up to the maximum. Pure: callers pass `now` and act on the returned transition.
//
// Where the next features plug in (issue 12):
// - active checks (checks.ts, to come) report through recordFailure/recordSuccess (or a rise/fall counter kept
//   here), exactly as the passive signals do, so one place decides the state;
// - `starting` is slow start: the backend is up but ramping its share of traffic (see upstream.ts effectiveWeight);
//   nothing sets it yet, and it is treated as up everywhere.

export interface UpstreamHealth {
  key: string;
  state: HealthState;
  /** While down: when a trial request may be sent. */
  retryAt: number;
  /** The next down period. */
  backoffMs: number;
  /** A half-open trial is in flight until this time; other requests keep avoiding this backend meanwhile. */
  probeUntil: number;
  /** Consecutive failures (for logs). */
  failures: number;
  lastFailure: string | null;
}

export interface BackoffPolicy {
  downBackoffMs: number;
  downBackoffMaxMs: number;
  /** How long one half-open trial may take before another request may try (connect + response timeouts). */
  probeWindowMs: number;
}

/** `starting`: up, in slow start (not set by anything yet; behaves as `up`). */
export type HealthState = 'up' | 'starting' | 'down';

export type HealthTransition = 'none' | 'down' | 'still-down' | 'up';

export function newUpstreamHealth(key: string, policy: BackoffPolicy): UpstreamHealth {
  return {
    key,
    state: 'up',
    retryAt: 0,
    backoffMs: policy.downBackoffMs,
    probeUntil: 0,
    failures: 0,
    lastFailure: null,
  };
}

/** Would `admit` say yes? */
export function isAvailable(h: UpstreamHealth, now: number): boolean {
  return h.state !== 'down' || (now >= h.retryAt && now >= h.probeUntil);
}

/** May a request go to this backend now? Admitting a request to a down backend makes it the half-open trial. */
export function admit(h: UpstreamHealth, now: number, policy: BackoffPolicy): boolean {
  if (h.state !== 'down') return true;
  if (now < h.retryAt || now < h.probeUntil) return false;
  h.probeUntil = now + policy.probeWindowMs;
  return true;
}

export function recordFailure(h: UpstreamHealth, now: number, cause: string, policy: BackoffPolicy): HealthTransition {
  h.failures++;
  h.lastFailure = cause;
  // Within the down period nothing new is sent to it, so this failure belongs to an attempt that started before
  // the backend was marked down (concurrent connects refused at once): same outage, no longer backoff.
  if (h.state === 'down' && now < h.retryAt) return 'still-down';
  const wasUp = h.state !== 'down';
  if (wasUp) h.backoffMs = policy.downBackoffMs;
  h.state = 'down';
  h.retryAt = now + h.backoffMs;
  h.backoffMs = Math.min(h.backoffMs * 2, policy.downBackoffMaxMs);
  h.probeUntil = 0;
  return wasUp ? 'down' : 'still-down';
}

/** The backend answered (a response head, or a passed verify probe). */
export function recordSuccess(h: UpstreamHealth, policy: BackoffPolicy): HealthTransition {
  h.failures = 0;
  h.probeUntil = 0;
  if (h.state !== 'down') return 'none';
  h.state = 'up';
  h.backoffMs = policy.downBackoffMs;
  return 'up';
}
