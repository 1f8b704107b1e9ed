// The max_conns wait queue, pure: FIFO order, requests that ended while waiting are skipped and not counted, the
// oldest wait, and the array is reused rather than grown without end.
import { describe, expect, test } from 'bun:test';
import type { ExchangePhase } from '../../../src/proxy/contracts.ts';
import { depth, enqueue, hasEntries, newWaitQueue, oldestWaitMs, peekWaiting, shiftWaiting, takeExpired, type Waiting } from '../../../src/proxy/upstream/queue.ts';

const waiter = (phase: ExchangePhase = 'dispatch'): Waiting & { phase: ExchangePhase } => ({ phase, queuedAt: -1 });

describe('wait queue', () => {
  test('first in, first out; taking one off marks it not queued', () => {
    const q = newWaitQueue();
    const [a, b] = [waiter(), waiter()];
    enqueue(q, a, 10);
    enqueue(q, b, 20);
    expect(peekWaiting(q)).toBe(a);
    shiftWaiting(q);
    expect(a.queuedAt).toBe(-1);
    expect(peekWaiting(q)).toBe(b);
    expect([depth(q), q.queued]).toEqual([1, 2]);
  });

  test('requests that ended while waiting are skipped at the head and not counted in the depth or the age', () => {
    const q = newWaitQueue();
    const [a, b, c] = [waiter(), waiter(), waiter()];
    enqueue(q, a, 0);
    enqueue(q, b, 50);
    enqueue(q, c, 80);
    a.phase = 'done';
    expect(depth(q)).toBe(2);
    expect(oldestWaitMs(q, 100)).toBe(50);
    expect(peekWaiting(q)).toBe(b);
    b.phase = 'done';
    c.phase = 'done';
    expect(peekWaiting(q)).toBeUndefined();
    expect([hasEntries(q), q.normal.head, depth(q), oldestWaitMs(q, 100)]).toEqual([false, 0, 0, 0]);
  });

  test('a long-lived busy queue compacts its array instead of growing with every request', () => {
    const q = newWaitQueue();
    for (let i = 0; i < 5; i++) enqueue(q, waiter(), 0);
    let max = 0;
    for (let i = 0; i < 50_000; i++) {
      enqueue(q, waiter(), i);
      peekWaiting(q);
      shiftWaiting(q);
      max = Math.max(max, q.normal.items.length);
    }
    expect(depth(q)).toBe(5);
    expect(max).toBeLessThan(2100);
  });

  test('a high-priority request is served before every normal one, FIFO within each class', () => {
    const q = newWaitQueue();
    const [n1, n2, n3, h1, h2] = [waiter(), waiter(), waiter(), waiter(), waiter()];
    enqueue(q, n1, 0);
    enqueue(q, n2, 1);
    enqueue(q, h1, 2, true);
    enqueue(q, n3, 3);
    enqueue(q, h2, 4, true);
    expect([depth(q), depth(q, 'high'), depth(q, 'normal')]).toEqual([5, 2, 3]);
    expect([oldestWaitMs(q, 10, 'high'), oldestWaitMs(q, 10, 'normal'), oldestWaitMs(q, 10)]).toEqual([8, 10, 10]);
    const order: Waiting[] = [];
    for (let w = peekWaiting(q); w !== undefined; w = peekWaiting(q)) {
      order.push(w);
      shiftWaiting(q);
    }
    expect(order).toEqual([h1, h2, n1, n2, n3]);
  });

  test('a high-priority request that ended while waiting is skipped and the next one served', () => {
    const q = newWaitQueue();
    const [n1, h1] = [waiter(), waiter()];
    enqueue(q, n1, 0);
    enqueue(q, h1, 1, true);
    h1.phase = 'done';
    expect(peekWaiting(q)).toBe(n1);
    shiftWaiting(q);
    expect([peekWaiting(q), hasEntries(q)]).toEqual([undefined, false]);
  });

  test('queue_timeout expires the oldest of either lane, even behind a young high-priority head', () => {
    const q = newWaitQueue();
    const [n1, h1, n2] = [waiter(), waiter(), waiter()];
    enqueue(q, n1, 0);
    enqueue(q, h1, 90, true);
    enqueue(q, n2, 95);
    expect(takeExpired(q, 100, 50)).toBe(n1);
    expect(n1.queuedAt).toBe(-1);
    expect(takeExpired(q, 100, 50)).toBeUndefined();
    expect(takeExpired(q, 141, 50)).toBe(h1);
    expect(takeExpired(q, 141, 50)).toBeUndefined();
    expect(takeExpired(q, 145, 50)).toBe(n2);
  });
});
