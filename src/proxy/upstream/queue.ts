// The requests of one service waiting for a backend slot (max_conns): Perlbal's two client queues, high priority
// (Highpri, high_priority_cookie) served first, then normal; FIFO within each, as Perlbal's get_client. Each lane is a
// FIFO on an array with a moving head, so a busy queue allocates nothing per request. Requests that ended while
// waiting (client gone, idle_timeout) stay in until they reach the head of their lane and are skipped there. Pure:
// the caller passes `now`; exchange.ts places what comes out.
import type { ExchangePhase } from '../contracts.ts';

/** A waiting request as the queue sees it (exchange.ts's Exchange). */
export interface Waiting {
  readonly phase: ExchangePhase;
  /** When it joined the queue (engine clock, ms); -1 when not queued. */
  queuedAt: number;
}

export interface Lane<W extends Waiting = Waiting> {
  items: (W | undefined)[];
  head: number;
}

export interface WaitQueue<W extends Waiting = Waiting> {
  high: Lane<W>;
  normal: Lane<W>;
  /** Requests that waited past queue_timeout and got 503 (metric). */
  timeouts: number;
  /** Requests that ever had to wait (metric). */
  queued: number;
}

export function newWaitQueue<W extends Waiting>(): WaitQueue<W> {
  return { high: { items: [], head: 0 }, normal: { items: [], head: 0 }, timeouts: 0, queued: 0 };
}

/** Joins the back of its class's lane: a high-priority request goes ahead of every normal one, behind earlier high ones. */
export function enqueue<W extends Waiting>(q: WaitQueue<W>, w: W, now: number, high = false): void {
  w.queuedAt = now;
  (high ? q.high : q.normal).items.push(w);
  q.queued++;
}

/** Anything in the queue at all (ended requests included): whether serving it is worth scheduling. */
export function hasEntries(q: WaitQueue<Waiting>): boolean {
  return q.high.items.length > 0 || q.normal.items.length > 0;
}

function laneHead<W extends Waiting>(l: Lane<W>): W | undefined {
  while (l.head < l.items.length) {
    const w = l.items[l.head]!;
    if (w.phase !== 'done' && w.queuedAt >= 0) return w;
    l.items[l.head++] = undefined;
  }
  l.items.length = 0;
  l.head = 0;
  return undefined;
}

function laneShift(l: Lane<Waiting>): void {
  const w = l.items[l.head];
  if (w === undefined) return;
  w.queuedAt = -1;
  l.items[l.head++] = undefined;
  if (l.head === l.items.length) {
    l.items.length = 0;
    l.head = 0;
  } else if (l.head > 1024 && l.head * 2 > l.items.length) {
    l.items.splice(0, l.head);
    l.head = 0;
  }
}

/** The next request to serve: the oldest high-priority one, else the oldest normal one (ended ones dropped). */
export function peekWaiting<W extends Waiting>(q: WaitQueue<W>): W | undefined {
  return laneHead(q.high) ?? laneHead(q.normal);
}

/** Takes the request `peekWaiting` returned off the queue. */
export function shiftWaiting<W extends Waiting>(q: WaitQueue<W>): void {
  laneShift(laneHead(q.high) !== undefined ? q.high : q.normal);
}

/**
 * A request that has waited `limit` ms or more, taken off the queue (the older lane head first), or undefined. Each
 * lane is checked, so a young high-priority request does not shield an expired normal one.
 */
export function takeExpired<W extends Waiting>(q: WaitQueue<W>, now: number, limit: number): W | undefined {
  const h = laneHead(q.high);
  const n = laneHead(q.normal);
  const lane = h !== undefined && (n === undefined || h.queuedAt <= n.queuedAt) ? q.high : n !== undefined ? q.normal : null;
  if (lane === null) return undefined;
  const w = lane.items[lane.head]!;
  if (now - w.queuedAt < limit) {
    // The older head is young; the other lane's head is younger still.
    return undefined;
  }
  laneShift(lane);
  return w;
}

function laneDepth(l: Lane<Waiting>): number {
  let n = 0;
  for (let i = l.head; i < l.items.length; i++) {
    const w = l.items[i]!;
    if (w.phase !== 'done' && w.queuedAt >= 0) n++;
  }
  return n;
}

function laneOldestMs(l: Lane<Waiting>, now: number): number {
  for (let i = l.head; i < l.items.length; i++) {
    const w = l.items[i]!;
    if (w.phase !== 'done' && w.queuedAt >= 0) return now - w.queuedAt;
  }
  return 0;
}

/** Requests waiting now (ended ones not counted), both lanes, or one with `lane`: the depth of `queues` and /metrics. */
export function depth(q: WaitQueue<Waiting>, lane?: 'high' | 'normal'): number {
  if (lane !== undefined) return laneDepth(q[lane]);
  return laneDepth(q.high) + laneDepth(q.normal);
}

/** The oldest waiting request's wait so far, ms (0 when none), over both lanes or one with `lane`. */
export function oldestWaitMs(q: WaitQueue<Waiting>, now: number, lane?: 'high' | 'normal'): number {
  if (lane !== undefined) return laneOldestMs(q[lane], now);
  return Math.max(laneOldestMs(q.high, now), laneOldestMs(q.normal, now));
}
