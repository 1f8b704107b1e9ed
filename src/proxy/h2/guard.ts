// Rapid-reset protection (CVE-2023-44487): a client that opens streams and cancels them before their response,
// over and over, makes the server start work it never finishes. Count such resets per session in a sliding window;
// past the limit the session is cut (GOAWAY ENHANCE_YOUR_CALM). Pure: the caller passes the clock.

export interface ResetGuard {
  /** Times (ms) of the recent early resets, oldest first; at most `limit` + 1 kept. */
  times: number[];
  limit: number;
  windowMs: number;
}

/** Defaults: more than 100 streams cancelled before their response within 10 s is an attack, not a browser. */
export function newResetGuard(limit = 100, windowMs = 10_000): ResetGuard {
  return { times: [], limit, windowMs };
}

/** Notes one early reset at `now`; true when the session must be cut. */
export function noteEarlyReset(g: ResetGuard, now: number): boolean {
  g.times.push(now);
  while (g.times.length > 0 && g.times[0]! <= now - g.windowMs) g.times.shift();
  if (g.times.length > g.limit + 1) g.times.shift();
  return g.times.length > g.limit;
}
