// The accept path of node:net made cheaper per connection, per runtime, measured with strace and callgrind
// (bench/README.md, "New connection per request"): the peer address from the native handle, TCP_NODELAY where needed.
// Node internals used here (a socket's `_handle`) are found by feature, with `socket.remoteAddress` as the fallback.
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
 * Turns Nagle off for good on a plain accepted socket (one setsockopt, once; Linux also sends at once what Nagle held).
 * Asked only once a connection may carry more than one write per answer (nginx's `tcp_nodelay`, which it sets when a
 * connection goes keep-alive): an answer in one write followed by close(2) needs none, close sends it with the FIN.
 */
export function askNoDelay(c: NoDelayHolder): void {
  if (c.noDelay) return;
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
type NodeHandle = { getpeername?: (out: PeerName) => number };
type PeerName = { address: unknown; family: unknown; port: unknown };

/**
 * Node: the result object the handle's getpeername fills, one for all connections. `socket.remoteAddress` passes a
 * fresh `{}` per call, and the native side adds address, family and port to it one by one (three map transitions);
 * into an object that already has them it only stores: callgrind, 20,000 calls, 7.1k -> 4.8k instructions per call.
 */
const PEER_NAME: PeerName = { address: '', family: '', port: 0 };

/**
 * The peer address of an accepted socket. On Bun, `socket.remoteAddress` fills address, port and family at once,
 * one getpeername per field (three system calls); its native handle answers the address alone with one. On Node, a
 * plain socket's handle fills PEER_NAME (one getpeername, as remoteAddress makes, without its object). Anything
 * else (a TLS or HTTP/2 stand-in socket, a handle without getpeername, an error) asks the socket.
 */
export function peerAddress(socket: Socket): string | undefined {
  if (ON_BUN) {
    const address = (socket as unknown as { _handle?: BunHandle | null })._handle?.remoteAddress;
    if (typeof address === 'string') return address;
  } else if ((socket as { encrypted?: boolean }).encrypted !== true) {
    const handle = (socket as unknown as { _handle?: NodeHandle | null })._handle;
    if (handle != null && typeof handle.getpeername === 'function' && handle.getpeername(PEER_NAME) === 0) {
      const address = PEER_NAME.address;
      if (typeof address === 'string') return address;
    }
  }
  return socket.remoteAddress;
}
