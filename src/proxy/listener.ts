// Listening sockets of the proxy: open one for a service, and hand an open one to another service (a reload that
// renames a service keeps its address bound rather than closing and re-binding it, which would refuse connections).
import { createServer, type Server, type Socket } from 'node:net';
import type { HostPort } from '../config/model.ts';
import { acceptClient } from './client.ts';
import type { ServiceRuntime } from './service.ts';

/** Binds `server` to `addr`; rejects with the bind error (EADDRINUSE, EADDRNOTAVAIL, ...), the server closed. */
export function listenServer(server: Server, { host, port }: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.close();
      reject(err);
    };
    server.once('error', onError);
    server.listen({ host, port, backlog: 1024 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** A listening socket on `addr` whose connections go to `svc`. */
export async function listenOn(svc: ServiceRuntime, addr: HostPort): Promise<Server> {
  const server = createServer({ allowHalfOpen: true, noDelay: true });
  retarget(server, svc);
  await listenServer(server, addr);
  server.on('error', (err) => svc.engine.log.error(`listener ${addr.host}:${addr.port}: ${err.message}`));
  return server;
}

/** From now on, connections accepted by `server` belong to `svc`. */
export function retarget(server: Server, svc: ServiceRuntime): void {
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => acceptClient(svc, socket));
}
