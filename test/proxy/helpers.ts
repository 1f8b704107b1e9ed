// Test helpers: config models built in code, raw backends that record exactly what they receive, raw clients.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { PerlbalConfig, PoolModel, ServiceModel } from '../../src/config/model.ts';
import { createConsola } from 'consola';
import { startProxy, type ProxyHandle } from '../../src/proxy/index.ts';

const loc = { file: 'test.conf', line: 1 };

export function poolModel(name: string, ports: number[], extra: Partial<PoolModel> = {}): PoolModel {
  return {
    name,
    nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
    balance_method: 'random',
    nodefile: null,
    options: {},
    loc,
    ...extra,
  };
}

export function serviceModel(name: string, pool: string, options: ServiceModel['options'] = {}, extra: Partial<ServiceModel> = {}): ServiceModel {
  return {
    name,
    role: 'reverse_proxy',
    enabled: true,
    listen: { host: '127.0.0.1', port: 0 },
    pool,
    options,
    headers: [],
    plugins: [],
    vhosts: [],
    vpaths: [],
    extra: {},
    loc,
    ...extra,
  };
}

export function configModel(services: ServiceModel[], pools: PoolModel[]): PerlbalConfig {
  return { file: 'test.conf', files: ['test.conf'], services, pools, server: {}, loadedPlugins: [], access: {}, redirects: {}, warnings: [] };
}

export const quietLog = createConsola({ level: process.env.TSBAL_TEST_LOG ? 5 : 0 });

/** Starts a proxy with one reverse_proxy service over `ports`; returns it and its port. */
export async function startTestProxy(
  ports: number[],
  options: ServiceModel['options'] = {},
  poolExtra: Partial<PoolModel> = {},
  serviceExtra: Partial<ServiceModel> = {},
): Promise<{ proxy: ProxyHandle; port: number }> {
  const config = configModel([serviceModel('svc', 'pool', options, serviceExtra)], [poolModel('pool', ports, poolExtra)]);
  const proxy = await startProxy(config, { log: quietLog });
  return { proxy, port: proxy.listeners()[0]!.port };
}

export interface RawBackend {
  port: number;
  server: Server;
  /** Every connection's received bytes, in order (latin1). */
  conns: string[];
  sockets: Set<Socket>;
  close(): Promise<void>;
}

/**
 * A backend on a raw socket. `onData(socket, connIndex, allBytesSoFar)` decides what to answer; the default
 * answers each complete request head with a keep-alive 200 naming the backend.
 */
export async function rawBackend(
  name: string,
  onData?: (socket: Socket, conn: number, received: string, chunk: Buffer) => void,
  port = 0,
): Promise<RawBackend> {
  const conns: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const idx = conns.length;
    conns.push('');
    sockets.add(socket);
    let handled = 0;
    socket.on('data', (chunk) => {
      conns[idx] += chunk.toString('latin1');
      if (onData) return onData(socket, idx, conns[idx]!, chunk);
      // Default: answer each complete head (bodies ignored unless Content-Length given; fine for GETs).
      let text = conns[idx]!;
      for (;;) {
        const end = text.indexOf('\r\n\r\n', handled);
        if (end === -1) break;
        const head = text.slice(handled, end);
        handled = end + 4;
        const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (cl) handled += Number(cl[1]);
        const body = `hello from ${name}\n`;
        socket.write(`HTTP/1.1 200 OK\r\nX-Backend: ${name}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        text = conns[idx]!;
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    conns,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface RawResult {
  data: string;
  /** The connection was closed by the peer (vs. our timeout). */
  closed: boolean;
  ms: number;
}

/** Sends `payload` on a new connection and collects the answer until close, `until` matches, or `timeoutMs`. */
export function rawRequest(
  port: number,
  payload: string | Buffer | Array<string | Buffer>,
  opts: { until?: (data: string) => boolean; timeoutMs?: number; endAfterWrite?: boolean } = {},
): Promise<RawResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data, closed, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 3000);
    socket.on('connect', () => {
      const parts = Array.isArray(payload) ? payload : [payload];
      for (const p of parts) socket.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
      if (opts.endAfterWrite) socket.end();
    });
    socket.on('data', (d) => {
      data += d.toString('latin1');
      if (opts.until?.(data)) finish(false);
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

/** Parses responses out of a raw transcript: status codes and bodies (Content-Length framed only). */
export function statusCodes(data: string): number[] {
  return [...data.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
}

/** A free port with nothing listening (bound then released). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A "blackhole" backend: a listening socket that accepts TCP (kernel backlog) but never reads or answers. */
export async function blackhole(): Promise<{ port: number; close(): Promise<void> }> {
  const s = createServer({ pauseOnConnect: true }, () => {});
  const held: Socket[] = [];
  s.on('connection', (sock) => held.push(sock));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return {
    port: (s.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const h of held) h.destroy();
        s.close(() => r());
      }),
  };
}
