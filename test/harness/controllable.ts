// A backend that a test can make healthy, answer 500, slow, accept-and-silent or dead on demand, on one fixed
// address (so a dead one comes back where the proxy expects it). It tells tsbal's health checks (User-Agent
// tsbal-health-check) apart from proxied requests and timestamps both, so tests can measure removal and return times
// and count requests sent to it while it was down. Bodiless requests only (GET/HEAD/OPTIONS), keep-alive honoured.
import net from 'node:net';
import { LOOPBACK } from './ports.ts';

export type BackendMode = { kind: 'healthy' } | { kind: 'status'; status: number } | { kind: 'slow'; delayMs: number } | { kind: 'silent' } | { kind: 'dead' };

export interface Seen {
  at: number;
  check: boolean;
  method: string;
  target: string;
  host: string;
  /** The mode it found the backend in. */
  mode: BackendMode['kind'];
}

export interface ControllableBackend {
  readonly name: string;
  readonly port: number;
  readonly key: string;
  /** Switches behaviour; `dead` stops listening and cuts every connection, leaving `dead` listens again. */
  set(mode: BackendMode): Promise<void>;
  seen(): Seen[];
  /** Proxied requests (not checks) seen at or after `since` (performance.now()). */
  proxiedSince(since: number): Seen[];
  checksSince(since: number): Seen[];
  close(): Promise<void>;
}

export async function startControllableBackend(name: string, port = 0): Promise<ControllableBackend> {
  let mode: BackendMode = { kind: 'healthy' };
  const seen: Seen[] = [];
  const sockets = new Set<net.Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const answer = (socket: net.Socket, status: number, keepAlive: boolean, head: boolean): void => {
    if (socket.destroyed) return;
    const body = `${name} ${status}\n`;
    const reason = status === 200 ? 'OK' : status === 500 ? 'Internal Server Error' : 'Status';
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\n${keepAlive ? 'Connection: keep-alive\r\n' : ''}X-Backend: ${name}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n` +
        `${keepAlive ? '' : 'Connection: close\r\n'}\r\n${head ? '' : body}`,
    );
    if (!keepAlive) socket.end();
  };

  const onRequest = (socket: net.Socket, text: string): void => {
    const lines = text.split('\r\n');
    const [method = '', target = ''] = lines[0]!.split(' ');
    const field = (n: string): string => lines.find((l) => l.toLowerCase().startsWith(`${n}:`))?.slice(n.length + 1).trim() ?? '';
    const check = field('user-agent') === 'tsbal-health-check';
    seen.push({ at: performance.now(), check, method, target, host: field('host'), mode: mode.kind });
    const connection = field('connection');
    const keepAlive = lines[0]!.endsWith('HTTP/1.1') ? !/close/i.test(connection) : /keep-alive/i.test(connection);
    const head = method === 'HEAD';
    switch (mode.kind) {
      case 'healthy':
        return answer(socket, 200, keepAlive, head);
      case 'status':
        return answer(socket, mode.status, keepAlive, head);
      case 'slow': {
        const t = setTimeout(() => {
          timers.delete(t);
          answer(socket, 200, keepAlive, head);
        }, mode.delayMs);
        timers.add(t);
        return;
      }
      case 'silent':
      case 'dead':
        return;
    }
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
        const text = buf.slice(0, end);
        buf = buf.slice(end + 4);
        onRequest(socket, text);
      }
    });
  });
  const listen = (p: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, LOOPBACK, () => {
        server.off('error', reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });
  const bound = await listen(port);

  return {
    name,
    port: bound,
    key: `${LOOPBACK}:${bound}`,
    async set(next) {
      const wasDead = mode.kind === 'dead';
      mode = next;
      if (next.kind === 'dead' && !wasDead) await stop();
      else if (next.kind !== 'dead' && wasDead) await listen(bound);
    },
    seen: () => seen,
    proxiedSince: (since) => seen.filter((s) => !s.check && s.at >= since),
    checksSince: (since) => seen.filter((s) => s.check && s.at >= since),
    async close() {
      for (const t of timers) clearTimeout(t);
      await stop();
    },
  };
}
