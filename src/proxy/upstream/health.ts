// Health of one backend address (ip:port), shared by every service that uses it (as Caddy shares its hosts): one
// state, `up`, `starting` (back up, ramping its share over slow_start) or `down`, fed by two kinds of signal:
// - passive, from traffic: a circuit breaker. up → (failure) → down for `backoff` → half-open (one trial request) →
//   up on a response, or down again with the backoff doubled up to the maximum. A streak of 5xx answers counts as a
//   failure when the pool sets a threshold;
// - active checks (checks.ts), which count passes and failures: `fall` failures in a row mark it down, `rise`
//   passes bring it back. While checks watch an address they alone bring it back: no half-open trial by a user's
//   request, so a backend answering 500 to everything stays out.
// Pure: callers pass `now` and act on the returned transition (log it, tell the policies: transitions.ts).

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
  /** When the last failure (passive or check) was seen: all_down picks the backend whose failure is the oldest. */
  lastFailureAt: number;
  /** When `state` last changed: slow start ramps from here. */
  since: number;
  /** Active checks watching this address (0: passive only). Set by the checker's sync. */
  checkers: number;
  /** Checks passed in a row while down (toward rise), failed in a row while up (toward fall). */
  checkPasses: number;
  checkFails: number;
  /** The last check's answer (`200`, `connect ECONNREFUSED`, `timeout after 1 s`), for logs and the console. */
  lastCheck: string | null;
  /** How long the last check took, ms, and how many ran. */
  lastCheckMs: number;
  checks: number;
  slowStartMs: number;
  /** Consecutive 5xx responses (reset by any other answer). */
  streak5xx: number;
  /** Transitions to down and back, for /metrics. */
  downs: number;
  ups: number;
}

export interface BackoffPolicy {
  downBackoffMs: number;
  downBackoffMaxMs: number;
  /** How long one half-open trial may take before another request may try (connect + response timeouts). */
  probeWindowMs: number;
}

/** `starting`: up, in slow start (takes requests, with a share ramping up: upstream.ts effectiveWeight). */
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
    lastFailureAt: 0,
    since: 0,
    checkers: 0,
    checkPasses: 0,
    checkFails: 0,
    lastCheck: null,
    lastCheckMs: 0,
    checks: 0,
    slowStartMs: 0,
    streak5xx: 0,
    downs: 0,
    ups: 0,
  };
}

/** Would `admit` say yes? */
export function isAvailable(h: UpstreamHealth, now: number): boolean {
  return h.state !== 'down' || (h.checkers === 0 && now >= h.retryAt && now >= h.probeUntil);
}

/** May a request go to this backend now? Admitting a request to a down backend makes it the half-open trial. */
export function admit(h: UpstreamHealth, now: number, policy: BackoffPolicy): boolean {
  if (h.state !== 'down') return true;
  if (h.checkers > 0) return false;
  if (now < h.retryAt || now < h.probeUntil) return false;
  h.probeUntil = now + policy.probeWindowMs;
  return true;
}

export function recordFailure(h: UpstreamHealth, now: number, cause: string, policy: BackoffPolicy): HealthTransition {
  h.failures++;
  h.lastFailure = cause;
  h.lastFailureAt = now;
  h.streak5xx = 0;
  h.checkPasses = 0;
  // Within the down period nothing new is sent to it, so this failure belongs to an attempt that started before
  // the backend was marked down (concurrent connects refused at once): same outage, no longer backoff.
  if (h.state === 'down' && (now < h.retryAt || h.checkers > 0)) return 'still-down';
  const wasUp = h.state !== 'down';
  if (wasUp) h.backoffMs = policy.downBackoffMs;
  h.retryAt = now + h.backoffMs;
  h.backoffMs = Math.min(h.backoffMs * 2, policy.downBackoffMaxMs);
  h.probeUntil = 0;
  if (!wasUp) return 'still-down';
  goDown(h, now);
  return 'down';
}

/**
 * The backend answered (a response head, or a passed verify probe). While checks watch it, only they bring a down
 * backend back (`rise` passes); an answer that was already on its way does not.
 */
export function recordSuccess(h: UpstreamHealth, policy: BackoffPolicy, now = 0): HealthTransition {
  h.probeUntil = 0;
  if (h.state !== 'down') {
    h.failures = 0;
    return 'none';
  }
  if (h.checkers > 0) return 'still-down';
  h.failures = 0;
  h.backoffMs = policy.downBackoffMs;
  goUp(h, now);
  return 'up';
}

/**
 * A response status for the passive 5xx streak (threshold 0: off). 'down' when this answer completes the streak:
 * the caller records it as a failure, naming the streak.
 */
export function noteStatus(h: UpstreamHealth, status: number, threshold: number): boolean {
  if (threshold <= 0) return false;
  if (status < 500 || status > 599) {
    h.streak5xx = 0;
    return false;
  }
  // The half-open trial of a backend marked down by a streak answered 5xx again: still failing.
  if (h.state === 'down') return true;
  return ++h.streak5xx >= threshold;
}

/** An active check passed. 'up' once `rise` passed in a row after being down. */
export function checkPassed(h: UpstreamHealth, now: number, rise: number, answer: string): HealthTransition {
  h.lastCheck = answer;
  h.checkFails = 0;
  if (h.state !== 'down') return 'none';
  if (++h.checkPasses < rise) return 'still-down';
  h.failures = 0;
  h.probeUntil = 0;
  goUp(h, now);
  return 'up';
}

/** An active check failed. 'down' once `fall` failed in a row. */
export function checkFailed(h: UpstreamHealth, now: number, fall: number, answer: string, policy: BackoffPolicy): HealthTransition {
  h.lastCheck = answer;
  h.checkPasses = 0;
  h.lastFailureAt = now;
  if (h.state === 'down') return 'still-down';
  if (++h.checkFails < fall) return 'none';
  h.failures = h.checkFails;
  h.lastFailure = `check: ${answer}`;
  // Should checks stop watching it (reload), the passive breaker takes over from here.
  h.backoffMs = policy.downBackoffMs;
  h.retryAt = now + h.backoffMs;
  h.probeUntil = 0;
  goDown(h, now);
  return 'down';
}

/** Slow start over? Called by the sweep while `starting`. */
export function settleSlowStart(h: UpstreamHealth, now: number): boolean {
  if (h.state !== 'starting' || now - h.since < h.slowStartMs) return false;
  h.state = 'up';
  return true;
}

/**
 * How much of its weight a backend gets now: 1 when up, 0 when down, and while `starting` a share growing
 * linearly over slow_start from 1/20 (HAProxy's slowstart does the same with a floor of 1/256).
 */
export function slowStartFactor(h: UpstreamHealth, now: number): number {
  if (h.state === 'up') return 1;
  if (h.state === 'down') return 0;
  if (h.slowStartMs <= 0) return 1;
  return Math.min(1, Math.max(0.05, (now - h.since) / h.slowStartMs));
}

function goDown(h: UpstreamHealth, now: number): void {
  h.state = 'down';
  h.since = now;
  h.checkFails = 0;
  h.checkPasses = 0;
  h.streak5xx = 0;
  h.downs++;
}

function goUp(h: UpstreamHealth, now: number): void {
  h.state = h.slowStartMs > 0 ? 'starting' : 'up';
  h.since = now;
  h.checkPasses = 0;
  h.checkFails = 0;
  h.ups++;
}
