// Weighted balancing, pure: smooth weighted round robin's exact order (nginx's), weighted random's shares with a
// deterministic source of randomness, weighted leastconn's choice, and the hooks that reset a policy's state.
import { describe, expect, test } from 'bun:test';
import { newSelector } from '../../../src/proxy/upstream/select.ts';

interface C {
  name: string;
  active: number;
  weightNow: number;
  lbScore: number;
}
const node = (name: string, weightNow: number, active = 0): C => ({ name, active, weightNow, lbScore: 0 });
/** `n` picks of a fresh selector over `cands`, as a string of names. */
function run(method: 'roundrobin' | 'random' | 'leastconn', cands: C[], n: number): string {
  const s = newSelector<C>(method);
  return Array.from({ length: n }, () => s.select(cands, null)!.name).join('');
}

describe('smooth weighted round robin (roundrobin)', () => {
  test('weights 5/1/1 give nginx\'s interleaved order a a b a c a a, and repeat it', () => {
    const cands = [node('a', 5), node('b', 1), node('c', 1)];
    expect(run('roundrobin', cands, 14)).toBe('aabacaa'.repeat(2));
  });

  test('weights 1/3 give one b-run at most three long and exact 25/75 per cycle of 4', () => {
    const seq = run('roundrobin', [node('a', 1), node('b', 3)], 400);
    expect(seq.split('a').length - 1).toBe(100);
    expect(seq).not.toContain('bbbb');
    expect(seq.slice(0, 8)).toBe('babbbabb');
  });

  test('equal weights cycle in order, as plain round robin did', () => {
    expect(run('roundrobin', [node('a', 1), node('b', 1), node('c', 1)], 6)).toBe('abcabc');
  });

  test('a weight change shows from the next pick on: 1/1 turned to 1/3 gives exactly 100 of 400 to a afterwards', () => {
    const s = newSelector<C>('roundrobin');
    const [a, b] = [node('a', 1), node('b', 1)];
    for (let i = 0; i < 3; i++) s.select([a, b], null);
    b.weightNow = 3;
    const got = Array.from({ length: 400 }, () => s.select([a, b], null)!.name).join('');
    expect(got.split('a').length - 1).toBe(100);
    expect(got).not.toContain('bbbb');
  });

  test('a backend left out of a pick keeps its place (others do not skip ahead of it)', () => {
    const s = newSelector<C>('roundrobin');
    const [a, b, c] = [node('a', 1), node('b', 1), node('c', 1)];
    expect(s.select([a, b, c], null)!.name).toBe('a');
    expect(s.select([a, c], null)!.name).toBe('c');
    expect(s.select([a, b, c], null)!.name).toBe('b');
  });
});

describe('weighted random', () => {
  test('a uniform sweep of the random source lands exactly 25/75 over weights 1/3', () => {
    const s = newSelector<C>('random', { random: (() => { let i = 0; return () => (i++ % 1000) / 1000; })() });
    const cands = [node('a', 1), node('b', 3)];
    let a = 0;
    for (let i = 0; i < 1000; i++) if (s.select(cands, null)!.name === 'a') a++;
    expect(a).toBe(250);
  });

  test('the top of the random range picks the last candidate (no rounding past the end)', () => {
    const s = newSelector<C>('random', { random: () => 0.999_999_999_9 });
    expect(s.select([node('a', 1), node('b', 3)], null)!.name).toBe('b');
  });
});

describe('weighted leastconn', () => {
  test('in flight per unit of weight decides: 5 in flight on weight 3 beats 2 on weight 1', () => {
    const s = newSelector<C>('leastconn');
    expect(s.select([node('a', 1, 2), node('b', 3, 5)], null)!.name).toBe('b');
    expect(s.select([node('a', 1, 1), node('b', 3, 5)], null)!.name).toBe('a');
  });

  test('filling up from zero keeps in-flight counts proportional to weights 1/3', () => {
    const s = newSelector<C>('leastconn');
    const cands = [node('a', 1), node('b', 3)];
    for (let i = 0; i < 40; i++) s.select(cands, null)!.active++;
    expect([cands[0]!.active, cands[1]!.active]).toEqual([10, 30]);
  });
});
