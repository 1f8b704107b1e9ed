// The recent transitions of a running tsbal (a backend going down or up, the peer dying, the VIP moving) kept in a
// small ring in the process, so `tsbal status` can show what just happened without reading the log. Pure.

export type TransitionSource = 'backend' | 'ha' | 'anycast' | 'worker';

export interface Transition {
  /** Wall clock, ms since the epoch. */
  at: number;
  source: TransitionSource;
  /** The log line's words: `backend 10.0.0.2:80 down (connect ECONNREFUSED, 1 in a row)`. */
  text: string;
}

export interface TransitionRing {
  readonly capacity: number;
  items: Transition[];
  /** Where the next one goes once the ring is full. */
  next: number;
  /** Told of every transition as it is noted (anycast mode re-decides at once when a backend goes down or up). */
  onNote?: ((t: Transition) => void) | undefined;
}

/** How many `tsbal status` shows and the process keeps. */
export const TRANSITIONS_KEPT = 20;

export function newTransitionRing(capacity = TRANSITIONS_KEPT): TransitionRing {
  return { capacity, items: [], next: 0 };
}

export function noteTransition(ring: TransitionRing, source: TransitionSource, text: string, at = Date.now()): void {
  const t: Transition = { at, source, text };
  if (ring.items.length < ring.capacity) ring.items.push(t);
  else {
    ring.items[ring.next] = t;
    ring.next = (ring.next + 1) % ring.capacity;
  }
  ring.onNote?.(t);
}

/** Oldest first. */
export function recentTransitions(ring: TransitionRing): Transition[] {
  return [...ring.items.slice(ring.next), ...ring.items.slice(0, ring.next)];
}

/**
 * Which of the HA engine's log lines are transitions an admin wants on the status screen: the peer dying, coming
 * back or changing status, resources acquired or released (the VIP moving) or failing, ping nodes lost or back.
 * Not: lost packets, late heartbeats, re-announcements (the log keeps those).
 */
const HA_TRANSITION = [
  /\bis dead\b/,
  /^node \S+ is (?:up|back)\b/,
  /returning after partition/,
  /^Status update for node /,
  /^(?:acquired|released) /,
  /^(?:acquiring|releasing) .*:/,
  /^ping node \S+ is up again/,
  /^Comm_now_up\(\)/,
  /stopping the HA engine/,
  /taking over from dead/,
];

export function isHaTransition(msg: string): boolean {
  return HA_TRANSITION.some((re) => re.test(msg));
}
