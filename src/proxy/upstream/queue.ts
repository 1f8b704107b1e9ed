// The requests of one service waiting for a backend slot (max_conns), oldest first: HAProxy's backend queue,
// Perlbal's "normal" client queue. A FIFO on an array with a moving head, so a busy queue allocates nothing per
// request. Requests that ended while waiting (client gone, idle_timeout) stay in until they reach the head and are
// skipped there. Pure: the caller passes `now`; exchange.ts places what comes out.
import type { ExchangePhase } from '../contracts.ts';

/** A waiting request as the queue sees it (exchange.ts's Exchange). */
export interface Waiting {
  readonly phase: ExchangePhase;
  /** When it joined the queue (engine clock, ms); -1 when not queued. */
  queuedAt: number;
}

export interface WaitQueue<W extends Waiting = Waiting> {
  items: (W | undefined)[];
  head: number;
  /** Requests that waited past queue_timeout and got 503 (metric). */
  timeouts: number;
  /** Requests that ever had to wait (metric). */
  queued: number;
}

export function newWaitQueue<W extends Waiting>(): WaitQueue<W> {
  return { items: [], head: 0, timeouts: 0, queued: 0 };
}

export function enqueue<W extends Waiting>(q: WaitQueue<W>, w: W, now: number): void {
  w.queuedAt = now;
  q.items.push(w);
  q.queued++;
}

/** The oldest request still waiting (ended ones at the head are dropped), or undefined. */
export function peekWaiting<W extends Waiting>(q: WaitQueue<W>): W | undefined {
  while (q.head < q.items.length) {
    const w = q.items[q.head]!;
    if (w.phase !== 'done' && w.queuedAt >= 0) return w;
    q.items[q.head++] = undefined;
  }
  reset(q);
  return undefined;
}

/** Takes the head (the one `peekWaiting` returned) off the queue. */
export function shiftWaiting<W extends Waiting>(q: WaitQueue<W>): void {
  const w = q.items[q.head];
  if (w === undefined) return;
  w.queuedAt = -1;
  q.items[q.head++] = undefined;
  if (q.head === q.items.length) reset(q);
  else if (q.head > 1024 && q.head * 2 > q.items.length) {
    q.items.splice(0, q.head);
    q.head = 0;
  }
}

function reset(q: WaitQueue<Waiting>): void {
  q.items.length = 0;
  q.head = 0;
}

/** Requests waiting now (ended ones not counted): the queue depth of `queues` and /metrics. */
export function depth(q: WaitQueue<Waiting>): number {
  let n = 0;
  for (let i = q.head; i < q.items.length; i++) {
    const w = q.items[i]!;
    if (w.phase !== 'done' && w.queuedAt >= 0) n++;
  }
  return n;
}

/** The oldest waiting request's wait so far, ms (0 when none). */
export function oldestWaitMs(q: WaitQueue<Waiting>, now: number): number {
  for (let i = q.head; i < q.items.length; i++) {
    const w = q.items[i]!;
    if (w.phase !== 'done' && w.queuedAt >= 0) return now - w.queuedAt;
  }
  return 0;
}
