// What a connection remembers of stream ids below the highest opened (closed-streams.ts): skipped ids and the ones
// we reset, each bounded.
import { describe, expect, test } from 'bun:test';
import { newClosedStreams, noteOpened, noteResetByUs, wasResetByUs, wasSkipped } from '../../../src/proxy/h2/closed-streams.ts';

describe('closed stream ids', () => {
  test('ids opened in order leave no gap; opening 9 after 3 skips 5 and 7, opening 5 first skips 1 and 3', () => {
    const cs = newClosedStreams();
    noteOpened(cs, 0, 1);
    noteOpened(cs, 1, 3);
    noteOpened(cs, 3, 9);
    expect([1, 3, 5, 7, 9].map((id) => wasSkipped(cs, id))).toEqual([false, false, true, true, false]);
    const first = newClosedStreams();
    noteOpened(first, 0, 5);
    expect([1, 3, 5].map((id) => wasSkipped(first, id))).toEqual([true, true, false]);
  });

  test('the gaps and the reset ids are bounded: the oldest go first', () => {
    const cs = newClosedStreams();
    let last = 1;
    for (let i = 0; i < 100; i++) {
      noteOpened(cs, last, last + 4);
      last += 4;
    }
    expect(cs.gaps.length).toBe(64);
    expect(wasSkipped(cs, last - 2)).toBe(true);
    expect(wasSkipped(cs, 3)).toBe(false);
    for (let id = 1; id <= 99; id += 2) noteResetByUs(cs, id);
    expect(wasResetByUs(cs, 99)).toBe(true);
    expect(wasResetByUs(cs, 1)).toBe(false);
    expect(wasResetByUs(cs, 100)).toBe(false);
  });
});
