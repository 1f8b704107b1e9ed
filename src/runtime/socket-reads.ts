// Reading a socket into a buffer of ours, with our own function called by the handle. Node's `net.connect({ onread })`
// reads a connecting socket into a given buffer and calls back with the byte count; an accepted socket has no such
// option (net.Server builds it), and reads the stream way: a 64 KiB allocation, a shrink, an ArrayBuffer and a Buffer
// per read, then the Readable machinery (push, a 'data' event, a nextTick). `readInto` gives an accepted socket what
// `onread` gives a connecting one, by setting the same three fields the Socket constructor sets for `onread` (found on
// the socket by their symbols' names) and pointing the handle at the buffer. A TLS socket too: its handle (TLSWrap)
// decrypts into whatever buffer its read listener hands out, 16 KiB at most per callback, so the decrypted bytes land
// in ours. One difference: a TLS socket delivers everything it decrypted from one network read, even after pause()
// (which stops the next network read, not that loop), so a callback must take bytes while paused (tsbal's client code
// does in every phase: it stashes or queues them and pauses again); that is at most one read's worth (64 KiB).
//
// Either way Node calls one function per read for every socket, `onStreamRead` (the handle's `onread`): it refreshes
// the socket's setTimeout timer, asks the stream whether it is destroyed, and loads the buffer and callback from the
// socket by symbol. Sockets of different kinds (accepted, connected, TLS) have different shapes, so those loads go
// megamorphic and the call site polymorphic. `readInto` and `readDirect` put our own function on the handle instead:
// it takes the byte count from the binding's shared state (where Node's takes it) and calls the callback with the
// record it was given; end of stream and errors (and a zero-byte read) still go to Node's function, which ends or
// destroys the stream as before. Node's destroy() puts a no-op on the handle, so a destroyed socket gets no reads; and
// tsbal's sockets have no setTimeout timer to refresh (a socket with one is left to Node).
//
// Node only, found by feature: the `stream_wrap` binding's read state, a handle with `useUserBuffer` and an `onread`.
// Elsewhere (Bun, Deno, a Node without these), and when TSBAL_SOCKET_READS=stream, `readInto` returns false and the
// caller listens for 'data' as before; `readDirect` returns false and the socket's `onread` callback stays in charge.
import type { Socket } from 'node:net';

/** Called with the record given to readInto/readDirect and the bytes read into the buffer; they are overwritten next. */
export type ReadCallback<T> = (owner: T, n: number, buf: Buffer) => void;

interface OnreadSymbols {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

interface StreamReadBinding {
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
}

type OnreadFunction = (this: ReadHandle, arrayBuffer: unknown) => unknown;

/** What our `onread` needs of one socket: kept on its handle. */
interface DirectReads {
  owner: unknown;
  callback: ReadCallback<unknown>;
  buffer: Buffer;
  /** Node's own `onread` (onStreamRead): end of stream, errors. */
  passOn: OnreadFunction;
}

const READS = Symbol('tsbal direct reads');

type TimedSocket = { timeout?: number; _parent?: TimedSocket | null };

interface ReadHandle {
  onread: OnreadFunction;
  useUserBuffer?: (b: Uint8Array) => void;
  [READS]?: DirectReads;
}

const NODE = typeof process.versions.bun !== 'string' && typeof (globalThis as { Deno?: unknown }).Deno === 'undefined';

function loadBinding(): StreamReadBinding | null {
  if (!NODE || process.env.TSBAL_SOCKET_READS === 'stream') return null;
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamReadBinding> }).binding('stream_wrap');
    if (!(b.streamBaseState instanceof Int32Array) || typeof b.kReadBytesOrError !== 'number') return null;
    return b as StreamReadBinding;
  } catch {
    return null;
  }
}

const binding = loadBinding();
const readState = binding?.streamBaseState ?? new Int32Array(1);
const READ_BYTES_OR_ERROR = binding?.kReadBytesOrError ?? 0;

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

/** The socket's handle if our function may replace its `onread`, else null. */
function directHandle(socket: Socket): ReadHandle | null {
  if (binding === null) return null;
  const handle = (socket as unknown as { _handle?: ReadHandle | null })._handle;
  if (handle == null || typeof handle.onread !== 'function' || handle[READS] !== undefined) return null;
  // A setTimeout timer (on the socket or the one it wraps) is refreshed by Node's onread on every read, not by ours:
  // such a socket stays Node's. `timeout` is what setTimeout was last given (0: cleared, as after a TLS handshake).
  for (let s: TimedSocket | null | undefined = socket as TimedSocket; s != null; s = s._parent) {
    if (typeof s.timeout === 'number' && s.timeout > 0) return null;
  }
  return handle;
}

function install(handle: ReadHandle, buffer: Buffer, owner: unknown, callback: ReadCallback<unknown>): void {
  handle[READS] = { owner, callback, buffer, passOn: handle.onread };
  handle.onread = onHandleRead;
}

/**
 * The handle's read callback (this = the handle), for every socket read directly: one shape of record, so it stays
 * monomorphic whatever the socket's kind. Returns nothing: the handle keeps reading into the same buffer.
 */
function onHandleRead(this: ReadHandle, arrayBuffer: unknown): unknown {
  const reads = this[READS]!;
  const n = readState[READ_BYTES_OR_ERROR]!;
  if (n > 0) {
    reads.callback(reads.owner, n, reads.buffer);
    return undefined;
  }
  return reads.passOn.call(this, arrayBuffer);
}

/**
 * From now on, the accepted `socket`'s reads land in `buffer` and go to `callback` with `owner` (no 'data' events).
 * Returns false, changing nothing, where this runtime cannot. Call it right after accept, before the first read is
 * delivered.
 */
export function readInto<T>(socket: Socket, buffer: Buffer, owner: T, callback: ReadCallback<T>): boolean {
  if (binding === null) return false;
  const handle = (socket as unknown as { _handle?: ReadHandle | null })._handle;
  if (handle == null || typeof handle.useUserBuffer !== 'function') return false;
  symbols ??= findSymbols(socket);
  if (symbols === null) return false;
  const fields = socket as unknown as Record<symbol, unknown>;
  // Another owner of these fields (an onread socket) is not ours to change.
  if (fields[symbols.buffer] != null) return false;
  const direct = directHandle(socket);
  if (direct === null) return false;
  // The fields make the stream side (pause, resume, _read) treat the socket as an onread socket; Node's onread,
  // which would call kBufferCb, is replaced, so the callback there only stands in for it.
  fields[symbols.buffer] = buffer;
  fields[symbols.callback] = bufferCallbackStandIn;
  fields[symbols.generator] = null;
  handle.useUserBuffer(buffer);
  install(direct, buffer, owner, callback as ReadCallback<unknown>);
  return true;
}

/** Never called while our onread is on the handle; were it called, it keeps reading (as a callback returning true). */
function bufferCallbackStandIn(): boolean {
  return true;
}

/**
 * A socket made with `net.connect({ onread: { buffer } })` (its handle already reads into `buffer`): from now on each
 * read goes to `callback` with `owner` without Node's onStreamRead in between. Returns false, changing nothing, where
 * this runtime cannot: the `onread` callback given to connect then goes on being called. Call it right after connect.
 */
export function readDirect<T>(socket: Socket, buffer: Buffer, owner: T, callback: ReadCallback<T>): boolean {
  if (binding === null) return false;
  symbols ??= findSymbols(socket);
  if (symbols === null || (socket as unknown as Record<symbol, unknown>)[symbols.buffer] !== buffer) return false;
  const direct = directHandle(socket);
  if (direct === null) return false;
  install(direct, buffer, owner, callback as ReadCallback<unknown>);
  return true;
}
