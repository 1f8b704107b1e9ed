// HTTP/2 for clients on a TLS listener (ALPN h2): node:http2 carries the framing, and every stream becomes one
// virtual HTTP/1.1 connection handed to the service's ordinary client code (`accept`), so an HTTP/2 request takes
// exactly the path an HTTP/1.1 request takes: routing, plugins, access control, limits, X-Forwarded-*, balancing,
// retries and HTTP/1.1 backend connections. The virtual connection carries one request (`Connection: close`); what
// tsbal writes to it (an HTTP/1.1 response) is turned back into HEADERS and DATA frames (translate.ts).
// Limits: concurrent streams and header list size (SETTINGS), rapid-reset protection (guard.ts), idle timeout.
import { constants, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ConsolaInstance } from 'consola';
import { newResetGuard, noteEarlyReset } from './guard.ts';
import { requestHead } from './translate.ts';
import { StreamSocket } from './stream-socket.ts';
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
    const virtual = new StreamSocket(stream, head.method, !stream.endAfterHeaders, socket);
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
    virtual.feed(Buffer.from(head.head, 'latin1'));
    if (!stream.endAfterHeaders) {
      const chunked = head.chunkedBody;
      stream.on('data', (chunk: Buffer) => {
        virtual.feed(chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, CRLF]) : chunk);
      });
      stream.on('end', () => {
        if (chunked) virtual.feed(LAST_CHUNK);
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
