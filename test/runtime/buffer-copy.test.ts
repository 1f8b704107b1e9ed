// copyBytes (src/runtime/buffer-copy.ts): on Node it calls the buffer binding's native copy directly, after a probe
// at load; on Bun (this test process), with TSBAL_BUFFER_COPY=portable, or with a binding that answers the probe
// wrongly, it is Buffer#copy. Both copy exactly the range asked for. The Node side runs in a Node 22 child.
import { describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { NODE22 } from '../harness/dist.ts';
import { REPO_ROOT } from '../harness/cli.ts';
import { NATIVE_BUFFER_COPY, copyBytes, copyBytesWith, nativeCopyFrom, portableCopyBytes } from '../../src/runtime/buffer-copy.ts';

/** Copies random ranges with copyBytes and with Buffer#copy into random targets; prints whether it was native and any mismatch. */
const NODE_SIDE = `
import { NATIVE_BUFFER_COPY, copyBytes } from ${JSON.stringify(join(REPO_ROOT, 'src/runtime/buffer-copy.ts'))};
let seed = 7;
const rnd = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
let mismatches = 0;
for (let k = 0; k < 2000; k++) {
  const source = Buffer.alloc(1 + rnd(300));
  for (let i = 0; i < source.length; i++) source[i] = rnd(256);
  const sourceStart = rnd(source.length);
  const sourceEnd = sourceStart + rnd(source.length - sourceStart + 1);
  const target = Buffer.alloc(sourceEnd - sourceStart + rnd(50));
  const targetStart = rnd(target.length - (sourceEnd - sourceStart) + 1);
  const a = Buffer.from(target.fill(rnd(256)));
  const b = Buffer.from(a);
  copyBytes(source, a, targetStart, sourceStart, sourceEnd);
  source.copy(b, targetStart, sourceStart, sourceEnd);
  if (!a.equals(b)) mismatches++;
}
const refused = [];
for (const [ts, ss, se] of [[0, 0, 11], [0, 5, 4], [7, 0, 2], [-1, 0, 2], [0, -1, 2]]) {
  try { copyBytes(Buffer.alloc(10), Buffer.alloc(8), ts, ss, se); } catch (e) { if (e instanceof RangeError) refused.push([ts, ss, se]); }
}
console.log(JSON.stringify({ native: NATIVE_BUFFER_COPY, mismatches, refused: refused.length }));
`;

function runNodeSide(env: Record<string, string>): { native: boolean; mismatches: number; refused: number } {
  const dir = mkdtempSync(join(tmpdir(), 'tsbal-buffer-copy-'));
  try {
    const script = join(dir, 'side.mts');
    writeFileSync(script, NODE_SIDE);
    const r = spawnSync(NODE22, ['--experimental-strip-types', '--no-warnings', script], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { native: boolean; mismatches: number; refused: number };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('buffer copy for the head writer', () => {
  test('on Node 22 the native copy is taken, copies exactly what Buffer#copy does, and refuses ranges past either buffer', () => {
    expect(runNodeSide({})).toEqual({ native: true, mismatches: 0, refused: 5 });
  });

  test('on Node 22 with TSBAL_BUFFER_COPY=portable, Buffer#copy is used, with the same bytes', () => {
    const portable = runNodeSide({ TSBAL_BUFFER_COPY: 'portable' });
    expect({ native: portable.native, mismatches: portable.mismatches }).toEqual({ native: false, mismatches: 0 });
  });

  test('on Bun the portable copy is used', () => {
    expect(NATIVE_BUFFER_COPY).toBe(false);
    expect(copyBytes).toBe(portableCopyBytes);
  });

  test('a binding without copy, or whose copy fails the probe, is not used', () => {
    expect(nativeCopyFrom(null)).toBeNull();
    expect(nativeCopyFrom({})).toBeNull();
    // Node 20's style: (source, target, targetStart, sourceStart, sourceEnd) would copy one byte less here.
    const endNotCount = (s: Uint8Array, t: Uint8Array, ts: number, ss: number, se: number): number => {
      t.set(s.subarray(ss, se), ts);
      return se - ss;
    };
    expect(nativeCopyFrom({ copy: endNotCount })).toBeNull();
    expect(
      nativeCopyFrom({
        copy: () => {
          throw new Error('no');
        },
      }),
    ).toBeNull();
    expect(copyBytesWith(null)).toBe(portableCopyBytes);
  });

  test('a copy taking (targetStart, sourceStart, count) passes the probe and copies the same as the portable one', () => {
    const byCount = (s: Uint8Array, t: Uint8Array, ts: number, ss: number, n: number): number => {
      t.set(s.subarray(ss, ss + n), ts);
      return n;
    };
    expect(nativeCopyFrom({ copy: byCount })).toBe(byCount);
    const viaNative = copyBytesWith(byCount);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), fc.nat(), fc.nat(20), (bytes, a, b, slack) => {
        const source = Buffer.from(bytes);
        const sourceStart = a % source.length;
        const sourceEnd = sourceStart + (b % (source.length - sourceStart + 1));
        const x = Buffer.alloc(sourceEnd - sourceStart + slack, 0xee);
        const y = Buffer.from(x);
        viaNative(source, x, slack, sourceStart, sourceEnd);
        portableCopyBytes(source, y, slack, sourceStart, sourceEnd);
        expect(x.equals(y)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
