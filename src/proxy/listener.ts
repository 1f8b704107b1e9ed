// Listening sockets of the proxy: open one for a service, and hand an open one to another service (a reload that
// renames a service keeps its address bound rather than closing and re-binding it, which would refuse connections).
import { createServer, type Server, type Socket } from 'node:net';
import type { HostPort } from '../config/model.ts';
import { acceptClient } from './client.ts';
import type { ServiceRuntime } from './service.ts';
import { startHandshake } from './tls/context.ts';
import { acceptCleartext } from './h2/cleartext.ts';
import { formatHostPort } from '../config/perlbal/values.ts';
import { ASK_NO_DELAY } from '../runtime/net.ts';
import { hasReusePort } from './workers/count.ts';
import { probeAddress } from './workers/probe.ts';

/**
 * A bind error that means "not local yet" (a VIP before the HA engine adds it, with ip_nonlocal_bind=0): the listener
 * waits for retryBind instead of failing the start.
 */
export function isNotYetLocal(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EADDRNOTAVAIL';
}

/**
 * Binds one service's listener with `bindNow`: the address it got (for the "listening on" line), or, for an address
 * not local yet, the error to wait on. Any other bind error throws `service S: cannot listen on H:P: CODE (message)`.
 */
export async function bindOrDefer(
  service: string,
  { host, port }: HostPort,
  bindNow: () => Promise<Server>,
): Promise<{ address: string; pending?: undefined } | { pending: NodeJS.ErrnoException }> {
  try {
    const a = (await bindNow()).address();
    return { address: formatHostPort(typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : { host, port }) };
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (!isNotYetLocal(err)) throw new Error(`service ${service}: cannot listen on ${formatHostPort({ host, port })}: ${err.code ?? 'ERROR'} (${err.message})`);
    return { pending: err };
  }
}

/**
 * The accept queue a listener asks for (the kernel caps it at net.core.somaxconn). A burst of new connections waits
 * there until the event loop accepts it, one per loop turn in libuv; when it overflows, the kernel drops the SYNs and
 * clients retry after 1 s or more. HAProxy asks for its maxconn (4096 in bench/proxy), nginx for 511.
 */
export const LISTEN_BACKLOG = 4096;

/** Binds `server` to `addr`; rejects with the bind error (EADDRINUSE, EADDRNOTAVAIL, ...), the server closed. */
export function listenServer(server: Server, { host, port }: HostPort, reusePort = false): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.close();
      reject(err);
    };
    server.once('error', onError);
    // reusePort (SERVER workers): each worker has its own socket and accept queue on the address; the kernel spreads
    // new connections across them. `[::]` is IPv6 only (as nginx's `listen [::]:80`): `SET listen = 80` (0.0.0.0)
    // takes IPv4, and both can be configured side by side; a dual-stack `::` would collide with 0.0.0.0 on the same port.
    server.listen({ host, port, backlog: LISTEN_BACKLOG, ipv6Only: host === '::', ...(reusePort ? { reusePort: true } : {}) }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** A listening socket on `addr` whose connections go to `svc`. */
export async function listenOn(svc: ServiceRuntime, addr: HostPort): Promise<Server> {
  const engine = svc.engine;
  // The owner of workers accepts nothing: its stand-in only names the address the workers listen on.
  if (engine.ownerBind !== null) return engine.ownerBind(addr);
  // No noDelay here: TCP_NODELAY is asked for where a connection needs it (client.ts, askNoDelay), not per accept.
  const server = createServer({ allowHalfOpen: true });
  retarget(server, svc);
  // A single process spreads its accepts over ACCEPT_SOCKETS sockets too, where the runtime has SO_REUSEPORT: it
  // looks first, as the owner of workers does, so that it never joins another program's port.
  const worker = engine.listenMode === 'worker';
  if (!worker && SINGLE_PROCESS_SPREADS) await probeAddress(addr);
  const spread = worker || SINGLE_PROCESS_SPREADS;
  await listenServer(server, addr, spread);
  server.on('error', (err) => svc.engine.log.error(`listener ${formatHostPort(addr)}: ${err.message}`));
  if (spread) await addAcceptSockets(server, addr, svc);
  return server;
}

/**
 * Listening sockets a process opens on each address (SO_REUSEPORT, the kernel spreads new connections over all of
 * them by a hash). libuv accepts one connection per socket per event-loop turn, and under load a turn takes tens of
 * ms: with one socket a burst of 1,000 connects waited seconds in the accept queue (wrk timeouts, bench/README.md
 * "bench/proxy/workers.ts"); with n sockets a turn accepts up to n. Before binding, the owner of workers (or the single
 * process itself) has checked in /proc that no other program listens there: SO_REUSEPORT would let a second tsbal
 * join the port silently. A runtime without SO_REUSEPORT (Node < 22.12) binds one plain socket, which a second tsbal
 * then fails to bind.
 */
export const ACCEPT_SOCKETS = 16;

/** Whether one process (no workers) listens on ACCEPT_SOCKETS sockets per address: where SO_REUSEPORT exists. */
const SINGLE_PROCESS_SPREADS = hasReusePort(process.versions);

/**
 * Opens the other ACCEPT_SOCKETS - 1 sockets of a listener: what they accept is `server`'s (its
 * 'connection' listeners, which retarget replaces), and closing `server` closes them.
 */
async function addAcceptSockets(server: Server, addr: HostPort, svc: ServiceRuntime): Promise<void> {
  const extra: Server[] = [];
  const forward = (socket: Socket): void => {
    server.emit('connection', socket);
  };
  for (let i = 1; i < ACCEPT_SOCKETS; i++) {
    const s = createServer({ allowHalfOpen: true });
    s.on('connection', forward);
    try {
      await listenServer(s, addr, true);
    } catch (err) {
      svc.engine.log.debug(`listener ${formatHostPort(addr)}: accept socket ${i + 1} of ${ACCEPT_SOCKETS}: ${(err as Error).message}`);
      break;
    }
    s.on('error', (err) => svc.engine.log.error(`listener ${formatHostPort(addr)}: ${err.message}`));
    extra.push(s);
  }
  const close = server.close.bind(server);
  server.close = (callback?: (err?: Error) => void): Server => {
    for (const s of extra) s.close();
    return close(callback);
  };
}

/** From now on, connections accepted by `server` belong to `svc`. */
export function retarget(server: Server, svc: ServiceRuntime): void {
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    // Read at each connection: a reload may turn TLS on or off, or bring new certificates, on the same socket.
    if (svc.tls === null) {
      // h2c on (http2_cleartext): the first bytes tell HTTP/2 from HTTP/1.1.
      if (svc.h2 !== null) acceptCleartext(svc, socket);
      else acceptClient(svc, socket);
    }
    else {
      // TLS writes its records as they come (handshake flights, then each response): Nagle off from the start.
      if (ASK_NO_DELAY) socket.setNoDelay(true);
      startHandshake(svc.tls, socket);
    }
  });
}
