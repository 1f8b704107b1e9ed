// HTTP/2 for clients on a TLS listener (ALPN h2): node:http2 carries the framing, and every stream becomes one
// virtual HTTP/1.1 connection handed to the service's ordinary client code (`accept`), so an HTTP/2 request takes
// exactly the path an HTTP/1.1 request takes: routing, plugins, access control, limits, X-Forwarded-*, balancing,
// retries and HTTP/1.1 backend connections. The virtual connection carries one request (`Connection: close`); what
// tsbal writes to it (an HTTP/1.1 response) is turned back into HEADERS and DATA frames (translate.ts).
// Limits: concurrent streams and header list size (SETTINGS), rapid-reset protection (guard.ts), idle timeout.
import { Duplex } from 'node:stream';
import { constants, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ConsolaInstance } from 'consola';
import { ChunkState, decodeChunked, newChunkedDecoder, type ChunkedDecoder } from '../http/chunked.ts';
import { newResetGuard, noteEarlyReset } from './guard.ts';
import { requestHead, responseHead, type BodyFraming } from './translate.ts';
import { serverSessionOpener, type ServerSessionOpener } from '../../runtime/h2-session.ts';

export interface H2Limits {
  maxConcurrentStreams: number;
  /** max_header_size: the SETTINGS_MAX_HEADER_LIST_SIZE offered. */
  maxHeaderListSize: number;
  /** idle_timeout: a session with no frames for this long is closed (GOAWAY). */
  idleTimeoutMs: number;
}

export interface H2Host {
  /** Hands a virtual connection to the service's client code (acceptClient). */
  accept(virtual: Socket): void;
  draining(): boolean;
  log: ConsolaInstance;
  service: string;
}

/** A TLS listener's HTTP/2 side: its limits and what turns a socket into a session with them. */
export interface H2Listener {
  limits: H2Limits;
  open: ServerSessionOpener;
}

export function newH2Listener(limits: H2Limits): H2Listener {
  const settings = { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderListSize, enablePush: false };
  return { limits, open: serverSessionOpener({ settings, maxHeaderListPairs: 256 }) };
}

/** Serves HTTP/2 on a TLS socket that negotiated `h2`. */
export function serveH2(socket: TLSSocket, h2: H2Listener, host: H2Host): void {
  const limits = h2.limits;
  let session: ServerHttp2Session;
  try {
    session = h2.open(socket);
  } catch (error) {
    host.log.debug(`service ${host.service}: HTTP/2 session with ${socket.remoteAddress ?? '?'} failed: ${(error as Error).message}`);
    socket.destroy();
    return;
  }
  const guard = newResetGuard();
  let cut = false;
  session.setTimeout(limits.idleTimeoutMs, () => session.close());
  session.on('error', () => {});
  session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    if (host.draining()) {
      session.goaway(constants.NGHTTP2_NO_ERROR);
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const head = requestHead(headers, stream.endAfterHeaders);
    if (!head.ok) {
      stream.respond({ ':status': head.status, 'content-type': 'text/plain' });
      stream.end(`${head.why}\n`);
      return;
    }
    const virtual = new StreamConn(stream, head.method, socket);
    stream.on('error', () => {});
    // Reset by the client before its response was complete: an early reset (counted), and the request dies.
    stream.on('aborted', () => {
      host.log.debug(`service ${host.service}: HTTP/2 stream ${stream.id} from ${socket.remoteAddress ?? '?'} reset by the client before its response was complete`);
      if (noteEarlyReset(guard, performance.now()) && !cut) {
        cut = true;
        host.log.warn(`service ${host.service}: HTTP/2 client ${socket.remoteAddress ?? '?'} cut off: more than ${guard.limit} streams cancelled within ${guard.windowMs / 1000} s (rapid reset)`);
        cutOff(session);
      }
    });
    // The stream is over: so is its virtual connection (the client code sees it close).
    stream.on('close', () => virtual.destroy());
    host.accept(virtual as unknown as Socket);
    virtual.push(Buffer.from(head.head, 'latin1'));
    if (!stream.endAfterHeaders) {
      const chunked = head.chunkedBody;
      stream.on('data', (chunk: Buffer) => {
        const more = chunked ? virtual.push(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, CRLF])) : virtual.push(chunk);
        if (!more) stream.pause();
      });
      stream.on('end', () => {
        if (chunked) virtual.push(LAST_CHUNK);
      });
    }
  });
}

/** GOAWAY ENHANCE_YOUR_CALM, no new streams, then the connection closes once the frame had time to leave. */
function cutOff(session: ServerHttp2Session): void {
  // GOAWAY makes nghttp2 refuse any later stream; the socket goes once the frame had time to leave.
  session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
  setTimeout(() => session.destroy(), CUT_OFF_GRACE_MS).unref();
}

/** How long a cut-off session's GOAWAY gets before the socket is destroyed. */
const CUT_OFF_GRACE_MS = 250;

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * One HTTP/2 stream as the socket of a one-request HTTP/1.1 connection: what the client code reads is the request
 * (pushed by serveH2), what it writes is parsed as the HTTP/1.1 response and sent as HEADERS and DATA.
 */
class StreamConn extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /** Read by the client code for X-Forwarded-Proto: an HTTP/2 stream always came over TLS here. */
  readonly encrypted = true;
  /** The response's end went out (END_STREAM). */
  responseDone = false;
  private headBuf: Buffer | null = Buffer.alloc(0);
  private framing: BodyFraming = { kind: 'none' };
  private left = 0;
  private decoder: ChunkedDecoder | null = null;

  private readonly stream: ServerHttp2Stream;
  private readonly method: string;

  constructor(stream: ServerHttp2Stream, method: string, tlsSocket: TLSSocket) {
    super({ allowHalfOpen: true });
    this.stream = stream;
    this.method = method;
    this.remoteAddress = tlsSocket.remoteAddress;
    this.localAddress = tlsSocket.localAddress;
    this.localPort = tlsSocket.localPort;
  }

  override _read(): void {
    if (!this.stream.destroyed) this.stream.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.stream.destroyed || this.responseDone) return cb();
    let body: Buffer = chunk;
    if (this.headBuf !== null) {
      const buf = this.headBuf.length === 0 ? chunk : Buffer.concat([this.headBuf, chunk]);
      const end = buf.indexOf(HEAD_END);
      if (end === -1) {
        this.headBuf = buf;
        return cb();
      }
      const res = responseHead(buf.subarray(0, end).toString('latin1'), this.method);
      if (res === null) {
        this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
        return cb();
      }
      if (res.status < 200) {
        // 100 Continue and the like: HTTP/2 clients need none of them; the final head follows.
        this.headBuf = Buffer.alloc(0);
        return this._write(buf.subarray(end + 4), _enc, cb);
      }
      this.headBuf = null;
      this.framing = res.framing;
      if (res.framing.kind === 'length') this.left = res.framing.length;
      if (res.framing.kind === 'chunked') this.decoder = newChunkedDecoder(16_384);
      const endStream = res.framing.kind === 'none' || (res.framing.kind === 'length' && res.framing.length === 0);
      this.stream.respond({ ...res.headers, ':status': res.status }, { endStream });
      if (endStream) {
        this.responseDone = true;
        return cb();
      }
      body = buf.subarray(end + 4);
    }
    this.sendBody(body, cb);
  }

  private sendBody(body: Buffer, cb: (err?: Error | null) => void): void {
    if (body.length === 0) return cb();
    const f = this.framing;
    if (f.kind === 'length') {
      const take = body.subarray(0, Math.min(body.length, this.left));
      this.left -= take.length;
      if (this.left === 0) {
        this.responseDone = true;
        this.stream.end(take, () => cb());
      } else this.stream.write(take, () => cb());
      return;
    }
    if (f.kind === 'chunked') {
      const parts: Buffer[] = [];
      decodeChunked(this.decoder!, body, 0, body.length, (buf, s, e) => parts.push(Buffer.from(buf.subarray(s, e))));
      const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (this.decoder!.state === ChunkState.Done || this.decoder!.state === ChunkState.Error) {
        this.responseDone = true;
        this.stream.end(data, () => cb());
      } else if (data.length > 0) this.stream.write(data, () => cb());
      else cb();
      return;
    }
    this.stream.write(body, () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    // The client code closes the one-request connection: a close-delimited body ends here.
    if (!this.responseDone && !this.stream.destroyed) {
      if (this.headBuf === null && this.framing.kind === 'close') {
        this.responseDone = true;
        this.stream.end();
      } else this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    }
    cb();
    // The one request is answered: the virtual connection's read side ends too, so it closes now.
    this.push(null);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.responseDone && !this.stream.destroyed) this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    cb(err);
  }
}
