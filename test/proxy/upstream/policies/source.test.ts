// sticky = source: rendezvous hashing of the client address. Removing a backend moves only its own clients; the
// share of each backend follows its weight.
import { describe, expect, test } from 'bun:test';
import { rendezvousPick } from '../../../../src/proxy/upstream/policies/source.ts';

const backends = (n: number, weight = (_i: number) => 1) =>
  Array.from({ length: n }, (_, i) => ({ key: `10.0.0.${i + 2}:80`, weight: weight(i) }));
const clients = Array.from({ length: 20_000 }, (_, i) => `198.51.${(i >> 8) & 255}.${i & 255}`);

describe('source hashing', () => {
  test('removing one of 5 backends moves no client of the other four, and only its own', () => {
    const five = backends(5);
    const before = clients.map((ip) => five[rendezvousPick(five, ip)]!.key);
    const removed = five[2]!.key;
    const four = five.filter((b) => b.key !== removed);
    let moved = 0;
    for (let i = 0; i < clients.length; i++) {
      const after = four[rendezvousPick(four, clients[i]!)]!.key;
      if (before[i] !== removed) expect(after).toBe(before[i]!);
      else moved++;
    }
    // The removed backend's share, about 1/5.
    expect(moved / clients.length).toBeGreaterThan(0.17);
    expect(moved / clients.length).toBeLessThan(0.23);
  });

  test('adding a sixth backend takes about 1/6 of the clients and moves nobody between the old five', () => {
    const five = backends(5);
    const six = backends(6);
    let moved = 0;
    for (const ip of clients) {
      const a = five[rendezvousPick(five, ip)]!.key;
      const b = six[rendezvousPick(six, ip)]!.key;
      if (a !== b) {
        expect(b).toBe(six[5]!.key);
        moved++;
      }
    }
    expect(moved / clients.length).toBeGreaterThan(0.14);
    expect(moved / clients.length).toBeLessThan(0.19);
  });

  test('equal weights spread clients evenly; weights 1 and 3 split them about 25/75', () => {
    const even = backends(4);
    const counts = [0, 0, 0, 0];
    for (const ip of clients) counts[rendezvousPick(even, ip)]!++;
    for (const c of counts) expect(Math.abs(c / clients.length - 0.25)).toBeLessThan(0.02);
    const weighted = backends(2, (i) => (i === 0 ? 1 : 3));
    let heavy = 0;
    for (const ip of clients) if (rendezvousPick(weighted, ip) === 1) heavy++;
    expect(Math.abs(heavy / clients.length - 0.75)).toBeLessThan(0.02);
  });

  test('the same client always gets the same backend, whatever the candidates order', () => {
    const five = backends(5);
    const reversed = [...five].reverse();
    for (const ip of clients.slice(0, 500)) expect(reversed[rendezvousPick(reversed, ip)]!.key).toBe(five[rendezvousPick(five, ip)]!.key);
  });
});
