// Copying a byte range between Buffers for the head writer. `Buffer#copy` ends in Node's native copy (a V8 fast
// API call, ~15 instructions), but first runs its JavaScript argument checks (views, integers, ranges, clamping):
// ~250 instructions a call under callgrind, two or three calls per kept-alive request. The proxy's calls are
// always in range, so on Node the native function is called directly.
//
// Node only, found by feature: `process.binding('buffer').copy(source, target, targetStart, sourceStart, count)`,
// checked once at load by a probe copy. Anywhere else (Bun, Deno, a Node whose binding is missing or answers the
// probe wrongly), and when TSBAL_BUFFER_COPY=portable, `Buffer#copy` is used, as before.
import { Buffer } from 'node:buffer';

/** Copies `source[sourceStart, sourceEnd)` to `target` at `targetStart`; the caller guarantees the ranges fit. */
export type CopyBytes = (source: Buffer, target: Buffer, targetStart: number, sourceStart: number, sourceEnd: number) => void;

type NativeCopy = (source: Uint8Array, target: Uint8Array, targetStart: number, sourceStart: number, count: number) => number;

export const portableCopyBytes: CopyBytes = (source, target, targetStart, sourceStart, sourceEnd) => {
  source.copy(target, targetStart, sourceStart, sourceEnd);
};

/** The native copy if `binding` has one that copies as expected (a probe: an offset range, count bytes, nothing more). */
export function nativeCopyFrom(binding: unknown): NativeCopy | null {
  const copy = (binding as { copy?: unknown } | null)?.copy;
  if (typeof copy !== 'function') return null;
  try {
    const source = Buffer.from([1, 2, 3, 4, 5, 6]);
    const target = Buffer.alloc(8);
    const n = (copy as NativeCopy)(source, target, 3, 1, 4);
    if (n !== 4 || target.join(',') !== '0,0,0,2,3,4,5,0') return null;
    return copy as NativeCopy;
  } catch {
    return null;
  }
}

function loadNativeCopy(): NativeCopy | null {
  if (typeof process.versions.bun === 'string' || typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') return null;
  if (process.env.TSBAL_BUFFER_COPY === 'portable') return null;
  try {
    return nativeCopyFrom((process as unknown as { binding(name: string): unknown }).binding('buffer'));
  } catch {
    return null;
  }
}

/**
 * A CopyBytes over a native copy, or the portable one. The native copy is a bare memmove without bounds checks, so
 * the ranges are checked here (a few instructions): a wrong offset throws instead of reading or writing past a buffer.
 */
export function copyBytesWith(native: NativeCopy | null): CopyBytes {
  if (native === null) return portableCopyBytes;
  return (source, target, targetStart, sourceStart, sourceEnd) => {
    const count = sourceEnd - sourceStart;
    if (!(sourceStart >= 0 && count >= 0 && sourceEnd <= source.length && targetStart >= 0 && targetStart + count <= target.length)) {
      throw new RangeError(`copy of [${sourceStart}, ${sourceEnd}) from ${source.length} bytes to ${targetStart} of ${target.length}`);
    }
    native(source, target, targetStart, sourceStart, count);
  };
}

const native = loadNativeCopy();

/** Whether this process copies through Node's native function (false: Buffer#copy). */
export const NATIVE_BUFFER_COPY = native !== null;

export const copyBytes: CopyBytes = copyBytesWith(native);
