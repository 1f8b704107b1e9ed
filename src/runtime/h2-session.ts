// An HTTP/2 server session on a TLS socket tsbal accepted and handshook itself (ALPN chose `h2`).
// `http2.performServerHandshake` does exactly this on Node >= 20.12 and on Bun 1.4 (measured on Bun 1.4.5: a
// function, and sessions from it serve curl --http2, nghttp and chromium). Where a runtime lacks it, a non-listening
// http2.createServer() is handed the socket with `emit('connection', socket)` and announces the session synchronously
// by 'session' (also works on Node 22 and Bun 1.4.5). Both give the same ServerHttp2Session, so h2/session.ts has
// one path whatever the runtime.
import { createServer, performServerHandshake, type ServerHttp2Session, type ServerOptions } from 'node:http2';
import type { TLSSocket } from 'node:tls';

export type ServerSessionOpener = (socket: TLSSocket) => ServerHttp2Session;

export type ServerSessionOptions = Pick<ServerOptions, 'settings' | 'maxHeaderListPairs'>;

/** How a session is made: 'handshake' (performServerHandshake) where the runtime has it, else 'server-emit'. */
export type SessionWay = 'handshake' | 'server-emit';

export const DEFAULT_SESSION_WAY: SessionWay = typeof performServerHandshake === 'function' ? 'handshake' : 'server-emit';

/** Opens server sessions with these options; the opener throws when the runtime made none. */
export function serverSessionOpener(options: ServerSessionOptions, way: SessionWay = DEFAULT_SESSION_WAY): ServerSessionOpener {
  if (way === 'handshake') return (socket) => performServerHandshake(socket, options);
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
