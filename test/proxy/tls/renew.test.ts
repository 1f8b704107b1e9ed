// Session-ticket IVs (src/proxy/tls/renew.ts): drawn from a CSPRNG pool, each used once, also across refills.
import { describe, expect, test } from 'bun:test';
import { newIvPool, nextIv } from '../../../src/proxy/tls/renew.ts';

describe('ticket IV pool', () => {
  test('every IV drawn is 16 fresh bytes, none repeated across several refills of the pool', () => {
    const pool = newIvPool();
    const iv = Buffer.alloc(16);
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      iv.fill(0);
      nextIv(pool, iv);
      const hex = iv.toString('hex');
      expect(hex).not.toBe('00'.repeat(16));
      seen.add(hex);
    }
    expect(seen.size).toBe(1000);
  });

  test('a refill draws new random bytes rather than reusing the previous pool', () => {
    const pool = newIvPool();
    const iv = Buffer.alloc(16);
    nextIv(pool, iv);
    const first = Buffer.from(pool.bytes);
    for (let i = 1; i < 256; i++) nextIv(pool, iv);
    nextIv(pool, iv);
    expect(pool.bytes.equals(first)).toBe(false);
    expect(iv.equals(pool.bytes.subarray(0, 16))).toBe(true);
  });
});
