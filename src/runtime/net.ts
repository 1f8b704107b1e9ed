// What the accept path of node:net costs differently on Bun, measured with strace per connection (bench/README.md,
// "New connection per request"). Node keeps its documented behaviour; only Bun takes the shorter way.
import type { Socket } from 'node:net';

const ON_BUN = typeof process.versions.bun === 'string';

/**
 * Whether TCP_NODELAY must be asked for on an accepted socket. Bun (uSockets) sets it on every socket it accepts, so
 * asking again costs one more setsockopt per connection; Node's libuv does not set it by itself.
 */
export const ASK_NO_DELAY: boolean = !ON_BUN;

/** A client connection whose TCP_NODELAY may still be off (Nagle): `noDelay` says whether it is on or not ours to ask. */
export interface NoDelayHolder {
  noDelay: boolean;
  readonly socket: Socket;
}

/**
 * Turns Nagle off for good on a plain accepted socket (one setsockopt; Linux also sends at once what Nagle held).
 * Asked only once a connection may carry more than one write per answer (nginx's `tcp_nodelay`, which it sets when a
 * connection goes keep-alive): an answer in one write followed by close(2) needs none, close sends it with the FIN.
 */
export function askNoDelay(c: NoDelayHolder): void {
  c.noDelay = true;
  c.socket.setNoDelay(true);
}

/**
 * Whether TCP_NODELAY is still to be asked for on a socket handed to the HTTP/1 client code: only a plain socket on
 * Node (the listeners no longer ask at accept); TLS sockets have it from their listener, HTTP/2 stream stand-ins
 * have no TCP of their own, and Bun sets it itself.
 */
export function noDelayPending(socket: Socket): boolean {
  return ASK_NO_DELAY && (socket as { encrypted?: boolean }).encrypted !== true && typeof socket.setNoDelay === 'function';
}

type BunHandle = { remoteAddress?: unknown };

/**
 * The peer address of an accepted socket. On Bun, `socket.remoteAddress` fills address, port and family at once,
 * one getpeername per field (three system calls); its native handle answers the address alone with one. Anything
 * else (Node, a TLS or HTTP/2 stand-in socket without that handle) asks the socket.
 */
export function peerAddress(socket: Socket): string | undefined {
  if (ON_BUN) {
    const address = (socket as unknown as { _handle?: BunHandle | null })._handle?.remoteAddress;
    if (typeof address === 'string') return address;
  }
  return socket.remoteAddress;
}
