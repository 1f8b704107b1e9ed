// What the accept path of node:net costs differently on Bun, measured with strace per connection (bench/README.md,
// "New connection per request"). Node keeps its documented behaviour; only Bun takes the shorter way.
import type { Socket } from 'node:net';

const ON_BUN = typeof process.versions.bun === 'string';

/**
 * Whether a listener should ask for TCP_NODELAY on each accepted socket. Bun (uSockets) sets it on every socket it
 * accepts, so asking again costs one more setsockopt per connection; Node's libuv does not set it by itself.
 */
export const ASK_NO_DELAY: boolean = !ON_BUN;

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
