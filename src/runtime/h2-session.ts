// An HTTP/2 server session on a TLS socket tsbal accepted and handshook itself (ALPN chose `h2`). Node >= 20.12 has
// http2.performServerHandshake for exactly this. Bun 1.4 has no such function, but its node:http2 accepts a socket
// handed to a plain (cleartext) http2 server with `emit('connection', socket)` and announces the new session
// synchronously by 'session' (measured on Bun 1.4.5: SETTINGS, stream resets, GOAWAY and session timeouts all
// behave as on Node). Both give the same ServerHttp2Session, so h2/session.ts has one path for both runtimes.
import { createServer, performServerHandshake, type ServerHttp2Session, type ServerOptions } from 'node:http2';
import type { TLSSocket } from 'node:tls';

export type ServerSessionOpener = (socket: TLSSocket) => ServerHttp2Session;

export type ServerSessionOptions = Pick<ServerOptions, 'settings' | 'maxHeaderListPairs'>;

/** Opens server sessions with these options; throws when the runtime made none. */
export function serverSessionOpener(options: ServerSessionOptions): ServerSessionOpener {
  if (typeof performServerHandshake === 'function') return (socket) => performServerHandshake(socket, options);
  // One server per listener configuration; it never listens, it only turns sockets into sessions.
  const server = createServer(options);
  let opened: ServerHttp2Session | null = null;
  server.on('session', (session: ServerHttp2Session) => {
    opened = session;
  });
  return (socket) => {
    opened = null;
    server.emit('connection', socket);
    const session = opened as ServerHttp2Session | null;
    opened = null;
    if (session === null) throw new Error('this runtime opened no HTTP/2 session on the socket');
    return session;
  };
}
