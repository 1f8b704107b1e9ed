// One HTTP/2 stream as the socket of a one-request HTTP/1.1 connection, for the client code (client.ts) that serves
// every connection: what it reads is the request (fed by session.ts), what it writes is parsed as the HTTP/1.1
// response and sent as HEADERS and DATA frames. Only the part of net.Socket the client code uses is here (write, end,
// destroy, cork/uncork, pause/resume, the events data/end/close/drain): a full stream.Duplex per HTTP/2 request cost
// more CPU than the request's own proxying (its buffering, nextTick hops and the errors it builds for callbacks
// pending at destroy), so this one does its work synchronously.
import { EventEmitter } from 'node:events';
import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { ChunkState, decodeChunked, newChunkedDecoder, type ChunkedDecoder } from '../http/chunked.ts';
import { responseHead, type BodyFraming } from './translate.ts';

const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const END_STREAM = { endStream: true } as const;

/**
 * Whether this runtime's stream.respond() takes a raw header list (Node 22 and Bun 1.4 do, Node 20 does not). A
 * property of the runtime, learnt from the first refusal; the raw form saves node:http2 an object copy per response.
 */
let rawHeadersTaken = true;

/** The raw list as the object form: a repeated name becomes an array. */
function headersObject(raw: string[]): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

export class StreamSocket extends EventEmitter {
  readonly remoteAddress: string | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /** Read by the client code for X-Forwarded-Proto: an HTTP/2 stream always came over TLS here. */
  readonly encrypted = true;
  /** Read by the access log (overHttp2): the request line is logged as HTTP/2.0. */
  readonly http2Stream = true;
  destroyed = false;
  writableCorked = 0;
  /** The response's end went out (END_STREAM). */
  responseDone = false;
  private corked: Buffer[] = [];
  private headBuf: Buffer | null = EMPTY;
  private framing: BodyFraming = { kind: 'none' };
  private left = 0;
  private decoder: ChunkedDecoder | null = null;
  private ended = false;
  private readonly stream: ServerHttp2Stream;
  private readonly method: string;
  private readonly hasBody: boolean;

  constructor(stream: ServerHttp2Stream, method: string, hasBody: boolean, tlsSocket: TLSSocket) {
    super();
    this.stream = stream;
    this.method = method;
    this.hasBody = hasBody;
    this.remoteAddress = tlsSocket.remoteAddress;
    this.localAddress = tlsSocket.localAddress;
    this.localPort = tlsSocket.localPort;
  }

  /** The client code's listeners are on: hand it the request head (and, later, body bytes). */
  feed(chunk: Buffer): boolean {
    if (this.destroyed) return false;
    this.emit('data', chunk);
    return !this.paused;
  }

  private paused = false;

  // Only a request with a body is read from the HTTP/2 stream. One without is never touched: node:http2 then keeps
  // the stream until its response's last write completed, where a stream read to its end is destroyed as soon as
  // nghttp2 closes it, and the write's completion then builds an ERR_STREAM_DESTROYED (6 % of the CPU under h2load).
  pause(): this {
    this.paused = true;
    if (this.hasBody && !this.stream.destroyed) this.stream.pause();
    return this;
  }

  resume(): this {
    this.paused = false;
    if (this.hasBody && !this.stream.destroyed) this.stream.resume();
    return this;
  }

  cork(): void {
    this.writableCorked++;
  }

  uncork(): void {
    if (this.writableCorked === 0) return;
    if (--this.writableCorked > 0 || this.corked.length === 0) return;
    const parts = this.corked;
    this.corked = [];
    this.send(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  /** Like net.Socket#write: false when the stream's buffer is full (then 'drain' follows). */
  write(data: Buffer | string, encoding?: BufferEncoding): boolean {
    if (this.destroyed || this.ended) return false;
    const chunk = typeof data === 'string' ? Buffer.from(data, encoding ?? 'utf8') : data;
    if (this.writableCorked > 0) {
      this.corked.push(chunk);
      return true;
    }
    return this.send(chunk);
  }

  /** The client code closes the one-request connection: a close-delimited body ends here; then it is closed. */
  end(): this {
    if (this.ended || this.destroyed) return this;
    this.writableCorked = 0;
    if (this.corked.length > 0) this.uncorkAll();
    this.ended = true;
    if (!this.responseDone && !this.stream.destroyed) {
      if (this.headBuf === null && this.framing.kind === 'close') {
        this.responseDone = true;
        this.stream.end();
      } else this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    }
    // The one request is answered: the read side ends too, and the connection is over.
    process.nextTick(emitEndThenClose, this);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    if (!this.responseDone && !this.stream.destroyed) this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    process.nextTick(emitClose, this);
    return this;
  }

  private uncorkAll(): void {
    const parts = this.corked;
    this.corked = [];
    this.send(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  private send(chunk: Buffer): boolean {
    if (this.stream.destroyed || this.responseDone) return true;
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
        this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
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
      const endStream = f.kind === 'none' || (f.kind === 'length' && f.length === 0);
      // A response whose whole body is here goes out as HEADERS and one DATA frame (END_STREAM) without more calls.
      if (endStream) {
        this.responseDone = true;
        this.respond(res.headers, true);
        return true;
      }
      if (!this.respond(res.headers, false)) return true;
    }
    return this.sendBody(body);
  }

  /**
   * HEADERS; false when node:http2 refused the head (a status outside 200-599, a single-value field such as
   * content-type repeated): HTTP/2 cannot carry it, so the stream is reset rather than the exception reaching the
   * relay code that wrote the head.
   */
  private respond(headers: string[], endStream: boolean): boolean {
    const options = endStream ? END_STREAM : undefined;
    try {
      if (rawHeadersTaken) {
        try {
          this.stream.respond(headers as unknown as OutgoingHttpHeaders, options);
          return true;
        } catch (error) {
          // Node 20 (Debian's) takes only an object: learn it once, then always send the object form.
          if ((error as { code?: string }).code !== 'ERR_INVALID_ARG_TYPE') throw error;
          rawHeadersTaken = false;
        }
      }
      this.stream.respond(headersObject(headers), options);
      return true;
    } catch {
      this.responseDone = true;
      if (!this.stream.destroyed) this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      return false;
    }
  }

  private sendBody(body: Buffer): boolean {
    if (body.length === 0) return true;
    const f = this.framing;
    if (f.kind === 'length') {
      const take = body.length <= this.left ? body : body.subarray(0, this.left);
      this.left -= take.length;
      if (this.left === 0) {
        this.responseDone = true;
        this.stream.end(take);
        return true;
      }
      return this.writeStream(take);
    }
    if (f.kind === 'chunked') {
      const parts: Buffer[] = [];
      const d = this.decoder!;
      decodeChunked(d, body, 0, body.length, (buf, s, e) => parts.push(buf.subarray(s, e)));
      const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (d.state === ChunkState.Done || d.state === ChunkState.Error) {
        this.responseDone = true;
        this.stream.end(data);
        return true;
      }
      return data.length > 0 ? this.writeStream(data) : true;
    }
    return this.writeStream(body);
  }

  /** A body write; when the stream's buffer is full, the client code hears 'drain' once it has room again. */
  private writeStream(data: Buffer): boolean {
    if (this.stream.write(data)) return true;
    if (!this.waitingDrain) {
      this.waitingDrain = true;
      this.stream.once('drain', () => {
        this.waitingDrain = false;
        this.emit('drain');
      });
    }
    return false;
  }

  private waitingDrain = false;
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
