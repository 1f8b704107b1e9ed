// Reading an accepted socket into a buffer of ours. Node's `net.connect({ onread })` reads a connecting socket into
// a given buffer and calls back with the byte count; an accepted socket has no such option (net.Server builds it),
// and reads the stream way: a 64 KiB allocation, a shrink, an ArrayBuffer and a Buffer per read, then the Readable
// machinery (push, a 'data' event, a nextTick). This gives an accepted socket what `onread` gives a connecting one,
// by setting the same three fields the Socket constructor sets for `onread` (found on the socket by their symbols'
// names) and pointing the handle at the buffer. A TLS socket too: its handle (TLSWrap) decrypts into whatever buffer
// its read listener hands out, 16 KiB at most per callback, so the decrypted bytes land in ours. One difference: a
// TLS socket delivers everything it decrypted from one network read, even after pause() (which stops the next network
// read, not that loop), so a callback must take bytes while paused (tsbal's client code does in every phase: it
// stashes or queues them and pauses again); that is at most one read's worth (64 KiB). Node only: elsewhere (Bun,
// Deno, a handle without `useUserBuffer`) it returns false and the caller listens for 'data' as before.
import type { Socket } from 'node:net';

/** Called as the socket's method (this = the socket) with the bytes read into the buffer; they are overwritten next. */
export type ReadCallback = (this: Socket, n: number, buf: Buffer) => void;

interface OnreadSymbols {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

const NODE = typeof process.versions.bun !== 'string' && typeof (globalThis as { Deno?: unknown }).Deno === 'undefined';

/** The runtime's own symbols, the same for every socket: kept once found on one. */
let symbols: OnreadSymbols | null = null;

function findSymbols(socket: Socket): OnreadSymbols | null {
  const own = Object.getOwnPropertySymbols(socket);
  const named = (name: string) => own.find((s) => s.description === name);
  const buffer = named('kBuffer');
  const callback = named('kBufferCb');
  const generator = named('kBufferGen');
  return buffer === undefined || callback === undefined || generator === undefined ? null : { buffer, callback, generator };
}

/**
 * From now on, `socket`'s reads land in `buffer` and go to `callback` (no 'data' events). Returns false, changing
 * nothing, where this runtime cannot. Call it right after accept, before the first read is delivered.
 */
export function readInto(socket: Socket, buffer: Buffer, callback: ReadCallback): boolean {
  if (!NODE) return false;
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } })._handle;
  if (handle == null || typeof handle.useUserBuffer !== 'function') return false;
  symbols ??= findSymbols(socket);
  if (symbols === null) return false;
  const fields = socket as unknown as Record<symbol, unknown>;
  // Another owner of these fields (an onread socket) is not ours to change.
  if (fields[symbols.buffer] != null) return false;
  fields[symbols.buffer] = buffer;
  fields[symbols.callback] = callback;
  fields[symbols.generator] = null;
  handle.useUserBuffer(buffer);
  return true;
}
