// Counters the management port and /metrics report. Plain records of numbers bumped in place on the data path:
// no allocation, no lookup per request (each ServiceNode and ServiceRuntime holds its own record).

/** Perlbal's NodeStats for one backend address (ip:port), shared by every service that uses it. */
export interface NodeStats {
  key: string;
  /** Connections opened (Perlbal: attempts), and when the last one was (engine clock, ms; -1: never). */
  attempts: number;
  lastAttemptMs: number;
  /** Connections established. */
  connects: number;
  lastConnectMs: number;
  /** Verify probes passed. */
  verifies: number;
  /** Response heads received, and when the last one came. */
  requests: number;
  lastResponseMs: number;
  /** Connects or verify probes that failed (refused, timed out, closed). */
  connectFailures: number;
  /** Time from request to the end of the response, smoothed (EWMA, 1/8 weight to the newest); -1 until one is known. */
  latencyMs: number;
  /** The status codes of the last RESPONSE_WINDOW responses, a ring (Perlbal keeps the last 500). */
  codes: Uint16Array;
  codeCount: number;
  codeNext: number;
}

export const RESPONSE_WINDOW = 500;

export function newNodeStats(key: string): NodeStats {
  return {
    key,
    attempts: 0,
    lastAttemptMs: -1,
    connects: 0,
    lastConnectMs: -1,
    verifies: 0,
    requests: 0,
    lastResponseMs: -1,
    connectFailures: 0,
    latencyMs: -1,
    codes: new Uint16Array(RESPONSE_WINDOW),
    codeCount: 0,
    codeNext: 0,
  };
}

export function countResponseCode(s: NodeStats, status: number, now: number): void {
  s.requests++;
  s.lastResponseMs = now;
  s.codes[s.codeNext] = status;
  s.codeNext = s.codeNext + 1 === RESPONSE_WINDOW ? 0 : s.codeNext + 1;
  if (s.codeCount < RESPONSE_WINDOW) s.codeCount++;
}

/** Status code → how many of the remembered responses had it, in ascending code order. */
export function responseCodeCounts(s: NodeStats): Array<[number, number]> {
  const counts = new Map<number, number>();
  for (let i = 0; i < s.codeCount; i++) counts.set(s.codes[i]!, (counts.get(s.codes[i]!) ?? 0) + 1);
  return [...counts].sort((a, b) => a[0] - b[0]);
}

/** Per-service counters for /metrics. */
export interface ServiceStats {
  /** Responses the clients of this service got, by status class: index 1..5 for 1xx..5xx, 0 for anything else. */
  responses: number[];
  /** Response body bytes sent to clients (as framed on the wire). */
  responseBytes: number;
  /** Attempts repeated on another (or a fresh) backend connection. */
  retries: number;
  /** Backend connects or verify probes that failed. */
  connectFailures: number;
  /** Proxied exchanges timed, the sum of their durations (request head to response end), and the smoothed duration. */
  timed: number;
  latencySumMs: number;
  latencyMs: number;
}

export function newServiceStats(): ServiceStats {
  return { responses: [0, 0, 0, 0, 0, 0], responseBytes: 0, retries: 0, connectFailures: 0, timed: 0, latencySumMs: 0, latencyMs: -1 };
}

/** Smoothing of the latency figures: 1/8 to the newest sample, as TCP's SRTT. */
const EWMA = 1 / 8;

const smooth = (old: number, ms: number): number => (old < 0 ? ms : old + (ms - old) * EWMA);

/** One proxied exchange's duration, for the service and the backend that answered it. */
export function countLatency(s: ServiceStats, node: NodeStats | null, ms: number): void {
  s.timed++;
  s.latencySumMs += ms;
  s.latencyMs = smooth(s.latencyMs, ms);
  if (node !== null) node.latencyMs = smooth(node.latencyMs, ms);
}

export function countResponse(s: ServiceStats, status: number, bodyBytes: number): void {
  const cls = (status / 100) | 0;
  s.responses[cls >= 1 && cls <= 5 ? cls : 0]!++;
  s.responseBytes += bodyBytes;
}
