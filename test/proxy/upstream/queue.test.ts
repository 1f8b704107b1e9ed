// The max_conns wait queue, pure: FIFO order, requests that ended while waiting are skipped and not counted, the
// oldest wait, and the array is reused rather than grown without end.
import { describe, expect, test } from 'bun:test';
import type { ExchangePhase } from '../../../src/proxy/contracts.ts';
import { depth, enqueue, newWaitQueue, oldestWaitMs, peekWaiting, shiftWaiting, type Waiting } from '../../../src/proxy/upstream/queue.ts';

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
    expect([q.items.length, q.head, depth(q), oldestWaitMs(q, 100)]).toEqual([0, 0, 0, 0]);
  });

  test('a long-lived busy queue compacts its array instead of growing with every request', () => {
    const q = newWaitQueue();
    for (let i = 0; i < 5; i++) enqueue(q, waiter(), 0);
    let max = 0;
    for (let i = 0; i < 50_000; i++) {
      enqueue(q, waiter(), i);
      peekWaiting(q);
      shiftWaiting(q);
      max = Math.max(max, q.items.length);
    }
    expect(depth(q)).toBe(5);
    expect(max).toBeLessThan(2100);
  });
});
