// One HTTP/2 stream as the socket of a one-request HTTP/1.1 connection, for the client code (client.ts) that serves
// every connection: what it reads is the request (fed by session.ts), what it writes is parsed as the HTTP/1.1
// response and sent as HEADERS and DATA frames through the connection (output.ts). Only the part of net.Socket the
// client code uses is here (write, end, destroy, cork/uncork, pause/resume, the events data/end/close/drain): a full
// stream.Duplex per HTTP/2 request cost more CPU than the request's own proxying, so this one works synchronously,
// and keeps the client code's listeners in fields (an EventEmitter's registration per stream showed in profiles).
// cork() holds nothing: the session already joins every stream's frames into one socket write per turn, so a held
// write (the engine's holdWrites) would only delay the response to the next turn and copy it once more.
// Request body bytes are credited back to the client (WINDOW_UPDATE) only once the client code took them: while it
// is paused (its backend is slow) they wait here, and the client's stream window stops it.
import { EventEmitter } from 'node:events';
import { ChunkState, decodeChunked, newChunkedDecoder, type ChunkedDecoder } from '../http/chunked.ts';
import { responseHead, type BodyFraming } from './translate.ts';
import { consumed, type H2Connection, type H2Stream } from './connection.ts';
import { resetStream, respond, sendData } from './output.ts';
import { ErrorCode as ERR } from './frame-writer.ts';

/** The transport's addresses, as the client code reads them from a socket. */
export interface StreamTransport {
  remoteAddress?: string | undefined;
  localAddress?: string | undefined;
  localPort?: number | undefined;
  encrypted?: boolean;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

type Listener = (...args: unknown[]) => void;

/** The events the client code listens to, each in a field; anything else (rare) goes to an EventEmitter made then. */
type SlotEvent = 'data' | 'end' | 'close' | 'drain';

export class StreamSocket {
  readonly remoteAddress: string | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /** Read by the client code for X-Forwarded-Proto: true over TLS, false for h2c. */
  readonly encrypted: boolean;
  /** Read by the access log (overHttp2): the request line is logged as HTTP/2.0. */
  readonly http2Stream = true;
  destroyed = false;
  writableCorked = 0;
  /**
   * Nothing waits inside (what the client code writes goes to the connection at once), so 0 once the response is
   * complete: the client code then destroys the virtual connection at once. Before that, 1: a close-delimited
   * response ends with end() (END_STREAM), where destroy() would reset the stream.
   */
  get writableLength(): number {
    return this.responseDone ? 0 : 1;
  }
  /** The response's end went out (END_STREAM). */
  responseDone = false;
  private onData: Listener | null = null;
  private onEnd: Listener | null = null;
  private onClose: Listener | null = null;
  private onDrain: Listener | null = null;
  /** Further listeners (a second one for an event, once(), other events). */
  private more: EventEmitter | null = null;
  private headBuf: Buffer | null = EMPTY;
  private framing: BodyFraming = { kind: 'none' };
  private left = 0;
  private decoder: ChunkedDecoder | null = null;
  private ended = false;
  private paused = false;
  /** Body bytes that came while paused, with the window credit each is worth (padding aside, its length). */
  private inbox: Buffer[] | null = null;
  private inboxCredit: number[] | null = null;
  private readonly conn: H2Connection;
  private readonly st: H2Stream;
  private readonly method: string;

  constructor(conn: H2Connection, st: H2Stream, method: string, transport: StreamTransport) {
    this.conn = conn;
    this.st = st;
    this.method = method;
    this.remoteAddress = transport.remoteAddress;
    this.localAddress = transport.localAddress;
    this.localPort = transport.localPort;
    this.encrypted = transport.encrypted === true;
  }

  on(event: string, fn: Listener): this {
    const more = this.more;
    if (more === null || more.listenerCount(event) === 0) {
      switch (event) {
        case 'data':
          if (this.onData === null) return (this.onData = fn), this;
          break;
        case 'end':
          if (this.onEnd === null) return (this.onEnd = fn), this;
          break;
        case 'close':
          if (this.onClose === null) return (this.onClose = fn), this;
          break;
        case 'drain':
          if (this.onDrain === null) return (this.onDrain = fn), this;
          break;
        case 'error':
          return this; // never emitted
      }
    }
    (this.more ??= new EventEmitter()).on(event, fn);
    return this;
  }

  addListener(event: string, fn: Listener): this {
    return this.on(event, fn);
  }

  once(event: string, fn: Listener): this {
    (this.more ??= new EventEmitter()).once(event, fn);
    return this;
  }

  off(event: string, fn: Listener): this {
    if (event === 'data' && this.onData === fn) this.onData = null;
    else if (event === 'end' && this.onEnd === fn) this.onEnd = null;
    else if (event === 'close' && this.onClose === fn) this.onClose = null;
    else if (event === 'drain' && this.onDrain === fn) this.onDrain = null;
    else this.more?.off(event, fn);
    return this;
  }

  removeListener(event: string, fn: Listener): this {
    return this.off(event, fn);
  }

  /** Calls the field's listener, then any further ones. */
  emit(event: SlotEvent, arg?: unknown): boolean {
    const fn = event === 'data' ? this.onData : event === 'end' ? this.onEnd : event === 'close' ? this.onClose : this.onDrain;
    if (fn !== null) fn.call(this, arg);
    const more = this.more;
    if (more !== null) return more.emit(event, arg) || fn !== null;
    return fn !== null;
  }

  /** Hands the client code the request head, or body bytes worth `credit` bytes of the client's window. */
  feed(chunk: Buffer, credit = 0): void {
    if (this.destroyed) return;
    if (this.paused) {
      (this.inbox ??= []).push(chunk);
      (this.inboxCredit ??= []).push(credit);
      return;
    }
    this.emit('data', chunk);
    if (credit > 0) consumed(this.conn, this.st, credit);
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    const inbox = this.inbox;
    const credits = this.inboxCredit;
    if (inbox === null || credits === null) return this;
    this.inbox = null;
    this.inboxCredit = null;
    for (let i = 0; i < inbox.length; i++) {
      if (this.paused || this.destroyed) {
        // Paused again by what it just read: the rest waits.
        (this.inbox ??= []).push(...inbox.slice(i));
        (this.inboxCredit ??= []).push(...credits.slice(i));
        return this;
      }
      this.emit('data', inbox[i]!);
      if (credits[i]! > 0) consumed(this.conn, this.st, credits[i]!);
    }
    return this;
  }

  cork(): void {
    this.writableCorked++;
  }

  uncork(): void {
    if (this.writableCorked > 0) this.writableCorked--;
  }

  /**
   * Like net.Socket#write: false when the stream's queue is full (then 'drain' follows). Bytes after the response's
   * end (the stream may close inside the write that completes it) are dropped, as a complete response has no more.
   */
  write(data: Buffer | string, encoding?: BufferEncoding): boolean {
    if (this.responseDone) return true;
    if (this.destroyed || this.ended) return false;
    return this.send(typeof data === 'string' ? Buffer.from(data, encoding ?? 'utf8') : data);
  }

  /** The client code closes the one-request connection: a close-delimited body ends here; then it is closed. */
  end(): this {
    if (this.ended || this.destroyed) return this;
    this.writableCorked = 0;
    this.ended = true;
    if (!this.responseDone && this.st.state !== 'closed') {
      this.responseDone = true;
      if (this.headBuf === null && this.framing.kind === 'close') sendData(this.conn, this.st, EMPTY, true);
      else resetStream(this.conn, this.st, ERR.INTERNAL_ERROR);
    }
    // The one request is answered: the read side ends too, and the connection is over.
    process.nextTick(emitEndThenClose, this);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    if (!this.responseDone && this.st.state !== 'closed') resetStream(this.conn, this.st, ERR.INTERNAL_ERROR);
    // Body bytes nobody will read still count against the connection window: give them back, or each such stream
    // shrinks it for good (the stream is closed by now, so only the connection is credited).
    const credits = this.inboxCredit;
    this.inbox = null;
    this.inboxCredit = null;
    if (credits !== null) for (const c of credits) if (c > 0) consumed(this.conn, this.st, c);
    process.nextTick(emitClose, this);
    return this;
  }

  /** The connection's queue for this stream went down: the client code may write again. */
  drained(): void {
    if (!this.destroyed) this.emit('drain');
  }

  private send(chunk: Buffer): boolean {
    if (this.st.state === 'closed' || this.responseDone) return true;
    let body = chunk;
    if (this.headBuf !== null) {
      const buf = this.headBuf.length === 0 ? chunk : Buffer.concat([this.headBuf, chunk]);
      const end = buf.indexOf(HEAD_END);
      if (end === -1) {
        this.headBuf = buf;
        return true;
      }
      const res = responseHead(buf.toString('latin1', 0, end), this.method);
      if (res === null) {
        this.responseDone = true;
        resetStream(this.conn, this.st, ERR.INTERNAL_ERROR);
        return true;
      }
      // 100 Continue and the like: HTTP/2 clients need none of them; the final head follows.
      if (res.status < 200) {
        this.headBuf = EMPTY;
        return this.send(buf.subarray(end + 4));
      }
      this.headBuf = null;
      this.framing = res.framing;
      if (res.framing.kind === 'length') this.left = res.framing.length;
      if (res.framing.kind === 'chunked') this.decoder = newChunkedDecoder(16_384);
      body = buf.subarray(end + 4);
      const f = res.framing;
      if (f.kind === 'none' || (f.kind === 'length' && f.length === 0)) {
        this.responseDone = true;
        respond(this.conn, this.st, res.headers, true);
        return true;
      }
      // A response whose whole body is in this write: HEADERS and one DATA frame (END_STREAM).
      if (f.kind === 'length' && body.length >= f.length) {
        this.responseDone = true;
        this.left = 0;
        if (respond(this.conn, this.st, res.headers, false)) sendData(this.conn, this.st, body.length === f.length ? body : body.subarray(0, f.length), true);
        return true;
      }
      if (!respond(this.conn, this.st, res.headers, false)) return true;
    }
    return this.sendBody(body);
  }

  private sendBody(body: Buffer): boolean {
    if (body.length === 0) return true;
    const f = this.framing;
    if (f.kind === 'length') {
      const take = body.length <= this.left ? body : body.subarray(0, this.left);
      this.left -= take.length;
      if (this.left === 0) this.responseDone = true;
      return sendData(this.conn, this.st, take, this.left === 0);
    }
    if (f.kind === 'chunked') {
      const parts: Buffer[] = [];
      const d = this.decoder!;
      decodeChunked(d, body, 0, body.length, (buf, s, e) => parts.push(buf.subarray(s, e)));
      const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (d.state === ChunkState.Done || d.state === ChunkState.Error) {
        this.responseDone = true;
        return sendData(this.conn, this.st, data, true);
      }
      return data.length > 0 ? sendData(this.conn, this.st, data, false) : true;
    }
    return sendData(this.conn, this.st, body, false);
  }
}

function emitEndThenClose(s: StreamSocket): void {
  s.emit('end');
  if (!s.destroyed) {
    s.destroyed = true;
    s.emit('close');
  }
}

function emitClose(s: StreamSocket): void {
  s.emit('close');
}
