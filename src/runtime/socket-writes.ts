// Writing to a plain socket's handle directly. Node's `socket.write()` goes through the Writable stream for every
// write (state checks, a callback, a WriteWrap per write, an after-write tick, and with cork/uncork a buffered entry
// and a writev), which on a kept-alive proxy costs more than the rest of the request. Here a write is one call of the
// handle's own `writeBuffer`/`writev` (what the stream calls in the end), with one reused request object: a write the
// kernel takes at once (the usual case) allocates nothing and leaves nothing pending. A write the kernel cannot take
// in full goes on asynchronously in libuv, which orders it before any later write or shutdown of the same handle;
// until it completes the socket counts as backed up (the caller pauses its source), and its completion emits 'drain'
// as the stream would. Errors destroy the socket with the same `write EPIPE`-style error as the stream path.
//
// Held writes (`sendHeld`) wait until the batch runs in the check phase of this event-loop turn, after every ready
// socket was read: a batch of responses leaves back to back, and a peer is woken once per batch. So that the stream
// path can never overtake held bytes, a socket with direct state flushes them before any write and before its FIN.
//
// A TLS socket (TLSWrap) is written the same way once its handshake is done, one write at a time: TLSWrap takes
// one write in flight and completes every write asynchronously, so later writes are held until it completes, the
// socket counts as backed up from the stream's high-water mark, and the stream's own writes and shutdown
// (close_notify, FIN) wait for ours.
//
// Node only, found by feature: the `stream_wrap` binding's WriteWrap and write state, and a handle with `writeBuffer`
// and `writev`. Anywhere else (Bun, Deno, the HTTP/2 stream socket, a Node without these), and when
// TSBAL_SOCKET_WRITES=stream, every call falls back to the stream path with cork/uncork for held writes, as before.
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

/** The handle calls this module uses (LibuvStreamWrap: TCP, Pipe). */
interface StreamHandle {
  writeBuffer(req: WriteReq, data: Buffer): number;
  writev(req: WriteReq, chunks: Buffer[], allBuffers: boolean): number;
}

/** A WriteWrap object; the fields after `oncomplete` are ours, kept while the write is in flight. */
interface WriteReq {
  oncomplete: (this: WriteReq, status: number) => void;
  error?: string;
  state: DirectState | null;
  data: Buffer | Buffer[] | null;
  /** Bytes of this write (TLS: counted against the high-water mark until it completes). */
  size: number;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

/** A socket written directly: what waits for the batch, and how many writes are still in libuv. */
interface DirectState {
  socket: StreamInternals;
  handle: StreamHandle;
  /** The socket's Writable state: what the stream still buffers, and whether it ended or was destroyed. */
  ws: WritableFlags;
  /** Held for the batch: the first chunk, and any others (rare: two writes to one socket in a turn). */
  first: Buffer | null;
  more: Buffer[] | null;
  /** Asynchronous writes not completed yet. */
  inFlight: number;
  /**
   * TLS (TLSWrap): one write at a time (a second one while the first is in flight aborts the process), and every
   * write completes asynchronously, on an immediate, after the encrypted bytes went to the TCP handle. Writes
   * while one is in flight are held and go out, together, when it completes.
   */
  serial: boolean;
  /** TLS: bytes held or in flight, against the stream's high-water mark; and whether 'drain' is owed. */
  pendingBytes: number;
  needDrain: boolean;
  /** TLS: the stream's own write or shutdown, waiting for our write in flight (and anything held) to finish. */
  deferred: (() => void) | null;
}

/** Writable's default high-water mark: a TLS socket counts as backed up from here, as socket.write() would say. */
const TLS_HIGH_WATER = 16384;

/** Sockets with writes held until the end of this event-loop turn (one per engine). */
export interface WriteBatch {
  /**
   * The first `directCount` entries wait for the run (the rest are null). Arrays kept at their size: emptying one
   * with `length = 0` drops its backing store, and the next push allocates one again (once per turn).
   */
  direct: Array<DirectState | null>;
  directCount: number;
  /** Stream-path sockets corked for the batch, the same way. */
  corked: Array<Socket | null>;
  corkedCount: number;
  scheduled: boolean;
  run: () => void;
}

interface WritableFlags {
  length: number;
  ending: boolean;
  destroyed: boolean;
}

type StreamInternals = Socket & {
  _handle?: unknown;
  _writableState?: WritableFlags;
  _writeGeneric?: (writev: boolean, data: unknown, encoding: string, cb: (err?: Error | null) => void) => void;
  _final?: (cb: (err?: Error | null) => void) => void;
};

const STATE = Symbol('tsbal direct writes');
type WithState = StreamInternals & { [STATE]?: DirectState | null };

const NODE = typeof process.versions.bun !== 'string' && typeof (globalThis as { Deno?: unknown }).Deno === 'undefined';

function loadBinding(): StreamWrapBinding | null {
  if (!NODE || process.env.TSBAL_SOCKET_WRITES === 'stream') return null;
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
    if (typeof b.WriteWrap !== 'function' || !(b.streamBaseState instanceof Int32Array) || typeof b.kLastWriteWasAsync !== 'number') return null;
    return b as StreamWrapBinding;
  } catch {
    return null;
  }
}

const binding = loadBinding();
const writeState = binding?.streamBaseState ?? null;
const LAST_WRITE_WAS_ASYNC = binding?.kLastWriteWasAsync ?? 0;

/** The request object for the next write. A write that completes at once leaves it untouched, so it is reused. */
let spare: WriteReq | null = null;

function newReq(): WriteReq {
  const req = new binding!.WriteWrap();
  req.oncomplete = onWriteComplete;
  req.state = null;
  req.data = null;
  req.size = 0;
  return req;
}

/** Whether this process writes sockets directly (false: every socket takes the stream path). */
export const DIRECT_WRITES_AVAILABLE = binding !== null;

export function newWriteBatch(): WriteBatch {
  const batch: WriteBatch = { direct: [], directCount: 0, corked: [], corkedCount: 0, scheduled: false, run: () => runBatch(batch) };
  return batch;
}

/**
 * Writes `data` now. Returns false when the socket is backed up (the kernel did not take everything): stop feeding
 * it until its 'drain'.
 */
export function sendNow(socket: Socket, data: Buffer): boolean {
  const st = usable(socket as WithState);
  if (st === null) return socket.write(data);
  if (st.first !== null) {
    holdChunk(st, data);
    return flushState(st);
  }
  return writeOne(st, data);
}

/** Writes the chunks now, in order, in one system call where the kernel takes them. Returns as sendNow. */
export function sendAll(socket: Socket, chunks: Buffer[]): boolean {
  const st = usable(socket as WithState);
  if (st === null) {
    socket.cork();
    let ok = true;
    for (let i = 0; i < chunks.length; i++) ok = socket.write(chunks[i]!) && ok;
    socket.uncork();
    return ok;
  }
  for (let i = 0; i < chunks.length; i++) holdChunk(st, chunks[i]!);
  return flushState(st);
}

/**
 * Writes `data` in the batch's run, at the end of this event-loop turn, with any other write held for the same
 * socket. Returns false when the socket is already backed up.
 */
export function sendHeld(batch: WriteBatch, socket: Socket, data: Buffer): boolean {
  const st = usable(socket as WithState);
  if (st === null) {
    if (socket.writableCorked === 0) {
      socket.cork();
      batch.corked[batch.corkedCount++] = socket;
      schedule(batch);
    }
    return socket.write(data);
  }
  if (st.first === null) {
    batch.direct[batch.directCount++] = st;
    schedule(batch);
  }
  holdChunk(st, data);
  return roomLeft(st);
}

/** Sends what is held for this socket now (before a close that must not lose it). */
export function flushHeld(socket: Socket): void {
  const st = (socket as WithState)[STATE];
  if (st != null && st.first !== null) flushState(st);
  while (socket.writableCorked > 0) socket.uncork();
}

/** Bytes or writes this socket still has to hand to the kernel: nothing (0) means a close(2) loses nothing. */
export function writesPending(socket: Socket): number {
  const st = (socket as WithState)[STATE];
  const direct = st == null ? 0 : st.inFlight + (st.first === null ? 0 : 1);
  return direct + socket.writableLength;
}

function schedule(batch: WriteBatch): void {
  if (batch.scheduled) return;
  batch.scheduled = true;
  setImmediate(batch.run);
}

function runBatch(batch: WriteBatch): void {
  batch.scheduled = false;
  const direct = batch.direct;
  for (let i = 0; i < batch.directCount; i++) {
    const st = direct[i]!;
    direct[i] = null;
    if (st.first !== null) flushState(st);
  }
  batch.directCount = 0;
  const corked = batch.corked;
  for (let i = 0; i < batch.corkedCount; i++) {
    const socket = corked[i]!;
    corked[i] = null;
    socket.uncork();
  }
  batch.corkedCount = 0;
}

/** The socket's direct state if a direct write may go out now: else null (the stream path keeps the order). */
function usable(socket: WithState): DirectState | null {
  let st = socket[STATE];
  if (st === undefined) st = attach(socket);
  if (st === null) return null;
  // Bytes the stream still buffers go first; a destroyed (handle closed) or ended stream is the stream path's to
  // refuse. (Not `socket._handle`: Node's getter for it is a symbol load that goes megamorphic across sockets.)
  const ws = st.ws;
  if (ws.length !== 0 || ws.ending || ws.destroyed) return null;
  return st;
}

function attach(socket: WithState): DirectState | null {
  // Not connected yet: the stream path buffers until it is; asked again on a later write.
  if (socket.connecting) return null;
  // TLS before its handshake finished: the stream path (TLSWrap holds it until then); asked again later.
  const encrypted = (socket as { encrypted?: boolean }).encrypted === true;
  if (encrypted && (socket as { _secureEstablished?: boolean })._secureEstablished !== true) return null;
  let st: DirectState | null = null;
  const handle = socket._handle as Partial<StreamHandle> | null | undefined;
  if (
    binding !== null &&
    handle != null &&
    typeof handle.writeBuffer === 'function' &&
    typeof handle.writev === 'function' &&
    socket._writableState !== undefined &&
    typeof socket._writeGeneric === 'function' &&
    typeof socket._final === 'function'
  ) {
    st = {
      socket,
      handle: handle as StreamHandle,
      ws: socket._writableState,
      first: null,
      more: null,
      inFlight: 0,
      serial: encrypted,
      pendingBytes: 0,
      needDrain: false,
      deferred: null,
    };
    // Held bytes go before anything the stream writes later, and before its FIN.
    socket._writeGeneric = writeGenericAfterHeld;
    socket._final = finalAfterHeld;
  }
  socket[STATE] = st;
  return st;
}

function writeGenericAfterHeld(this: WithState, writev: boolean, data: unknown, encoding: string, cb: (err?: Error | null) => void): void {
  const st = this[STATE];
  // TLS: after our write completes (the stream counts this chunk meanwhile, so nothing overtakes it).
  if (flushHeldFirst(st)) st!.deferred = () => Object.getPrototypeOf(this)._writeGeneric.call(this, writev, data, encoding, cb);
  else Object.getPrototypeOf(this)._writeGeneric.call(this, writev, data, encoding, cb);
}

function finalAfterHeld(this: WithState, cb: (err?: Error | null) => void): void {
  const st = this[STATE];
  // TLS: close_notify and the FIN after our last write, as the stream's own writes go first.
  if (flushHeldFirst(st)) st!.deferred = () => Object.getPrototypeOf(this)._final.call(this, cb);
  else Object.getPrototypeOf(this)._final.call(this, cb);
}

/** Sends what is held before the stream's own operation; true when that operation must wait (TLS, a write in flight). */
function flushHeldFirst(st: DirectState | null | undefined): boolean {
  if (st == null) return false;
  if (st.first !== null) flushState(st);
  return st.serial && st.inFlight !== 0;
}

function holdChunk(st: DirectState, data: Buffer): void {
  st.pendingBytes += data.length;
  if (st.first === null) st.first = data;
  else if (st.more === null) st.more = [data];
  else st.more.push(data);
}

/** Writes everything held for the socket, in one system call. */
function flushState(st: DirectState): boolean {
  // TLS with a write in flight: held until it completes.
  if (st.inFlight !== 0 && st.serial) return roomLeft(st);
  const first = st.first!;
  const more = st.more;
  const size = st.pendingBytes;
  st.first = null;
  st.more = null;
  if (!st.serial) st.pendingBytes = 0;
  // Closed meanwhile: the bytes go with the connection, as a destroyed stream's buffer does.
  if (st.ws.destroyed) return false;
  // (The held bytes are counted already.)
  if (more === null) return writeBuffer(st, first);
  more.unshift(first);
  const req = startWrite(st, more, size);
  return afterWrite(st, req, st.handle.writev(req, more, true));
}

function writeOne(st: DirectState, data: Buffer): boolean {
  if (st.serial) {
    if (st.inFlight !== 0) {
      holdChunk(st, data);
      return roomLeft(st);
    }
    st.pendingBytes += data.length;
  }
  return writeBuffer(st, data);
}

function writeBuffer(st: DirectState, data: Buffer): boolean {
  const req = startWrite(st, data, data.length);
  return afterWrite(st, req, st.handle.writeBuffer(req, data));
}

/**
 * The request for a write, counted in flight before the handle sees it: a TLSWrap whose TCP write fails (the client
 * gone: EPIPE, ECONNRESET) completes the request with the error inside the writeBuffer/writev call, and returns 0.
 */
function startWrite(st: DirectState, data: Buffer | Buffer[], size: number): WriteReq {
  const req = spare ?? newReq();
  spare = null;
  req.state = st;
  req.data = data;
  req.size = size;
  st.inFlight++;
  return req;
}

/** Whether the caller may go on writing; when not, 'drain' follows. */
function roomLeft(st: DirectState): boolean {
  if (!st.serial) return st.inFlight === 0;
  if (st.pendingBytes < TLS_HIGH_WATER) return true;
  st.needDrain = true;
  return false;
}

function afterWrite(st: DirectState, req: WriteReq, err: number): boolean {
  // Completed (or failed) inside the call: onWriteComplete has run and counted it.
  if (req.state === null) return !st.ws.destroyed && roomLeft(st);
  if (err !== 0) {
    req.state = null;
    req.data = null;
    st.inFlight--;
    // The request object may carry the error text now: not reused.
    writeFailed(st.socket, err, req.error);
    return false;
  }
  if (writeState![LAST_WRITE_WAS_ASYNC] === 0) {
    req.state = null;
    req.data = null;
    st.inFlight--;
    spare = req;
    if (st.serial) st.pendingBytes -= req.size;
    return roomLeft(st);
  }
  // In libuv until the kernel takes the rest: the data stays alive on the request, which is the write's own.
  return st.serial ? roomLeft(st) : false;
}

function onWriteComplete(this: WriteReq, status: number): void {
  const st = this.state;
  // Not a write of ours in flight (already counted as done): nothing to settle.
  if (st === null) return;
  this.state = null;
  this.data = null;
  st.inFlight--;
  const socket = st.socket;
  if (socket.destroyed) return;
  if (status < 0) {
    writeFailed(socket, status, this.error);
    return;
  }
  if (st.serial) {
    st.pendingBytes -= this.size;
    tlsWriteDone(st);
  } else if (st.inFlight === 0) {
    socket.emit('drain');
  }
  // The request is free once this callback returns: the next write takes it.
  if (spare === null) spare = this;
}

/** TLS: the write in flight completed; what was held goes now, then the stream's deferred write or shutdown. */
function tlsWriteDone(st: DirectState): void {
  if (st.first !== null) flushState(st);
  if (st.ws.destroyed) return;
  if (st.inFlight === 0 && st.deferred !== null) {
    const run = st.deferred;
    st.deferred = null;
    run();
  }
  if (st.needDrain && st.pendingBytes < TLS_HIGH_WATER) {
    st.needDrain = false;
    st.socket.emit('drain');
  }
}

/** As the stream path reports it: `write EPIPE`, with code, errno and syscall. */
function writeFailed(socket: Socket, err: number, detail: string | undefined): void {
  const code = getSystemErrorName(err);
  const e = new Error(detail ? `write ${code} (${detail})` : `write ${code}`) as NodeJS.ErrnoException;
  e.errno = err;
  e.code = code;
  e.syscall = 'write';
  socket.destroy(e);
}
