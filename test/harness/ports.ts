// Free ports on 127.0.0.1 and readiness checks by connecting.
//
// Ports are picked at random below the kernel's ephemeral range (32768+), so they do not collide with the
// outgoing connections that wrk and the proxies open by the thousand, and checked by binding. Another test may
// still grab the port between our check and the daemon's bind; daemons.ts retries the start when that happens.
import fs from 'node:fs';
import net from 'node:net';

export const LOOPBACK = '127.0.0.1';
const LOW = 20_000;
const HIGH = 32_000;

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: LOOPBACK, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** One port that is free right now, distinct from `avoid`. */
export async function freePort(avoid: ReadonlySet<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (!avoid.has(port) && (await canBind(port))) return port;
  }
  throw new Error(`no free port found in ${LOW}-${HIGH} after 200 attempts`);
}

/** `count` distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort(ports));
  return [...ports];
}

/** Resolves true when something accepts a TCP connection on `port` within `timeoutMs`. */
export function canConnect(port: number, timeoutMs = 500, host = LOOPBACK): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls until every port accepts connections. Returns early with the reason from `abort` (e.g. "process exited")
 * if it reports one; throws on timeout.
 */
export async function waitForPorts(
  ports: readonly number[],
  timeoutMs: number,
  abort: () => string | null = () => null,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = abort();
    if (reason !== null) throw new Error(reason);
    const ready = await Promise.all(ports.map((port) => canConnect(port, 300)));
    if (ready.every(Boolean)) return;
    if (Date.now() > deadline) {
      const missing = ports.filter((_, i) => !ready[i]);
      throw new Error(`ports ${missing.join(', ')} not accepting connections after ${timeoutMs} ms`);
    }
    await sleep(25);
  }
}

/** Established IPv4 TCP connections whose local port is `port` (the server side of connections to it). */
export function establishedTo(port: number): number {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return fs
    .readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => {
      const fields = line.trim().split(/\s+/);
      return fields[1]?.endsWith(hexPort) && fields[3] === '01';
    }).length;
}
