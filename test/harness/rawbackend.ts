// A tiny node:net backend that records the exact bytes of every request it receives (per connection, in order)
// and answers keep-alive HTTP/1.1 with Content-Length, like the logging backend of the Perlbal reference (8.1).
import net from 'node:net';
import { LOOPBACK } from './ports.ts';
import { type Head, header, messageLength } from './httpwire.ts';

export interface RecordedRequest {
  /** 1-based connection number on this backend. */
  conn: number;
  /** 1-based request number on that connection. */
  seq: number;
  /** Exact bytes (head + body). */
  raw: Buffer;
  head: Head;
  method: string;
  target: string;
}

/** What to send back: bytes to write, whether to close after, or 'hang' to never answer. */
export type Reply = { bytes: string | Buffer; close?: boolean } | { hang: true } | { destroy: true };

export interface RawBackend {
  name: string;
  port: number;
  requests(): RecordedRequest[];
  /** Requests other than verify_backend's OPTIONS probes. */
  proxied(): RecordedRequest[];
  connectionCount(): number;
  /** Resolves when at least `n` requests have arrived; rejects after `timeoutMs` with what did arrive. */
  waitForRequests(n: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  clear(): void;
  close(): Promise<void>;
}

/** The reference's backend answer: HTTP/1.1 keep-alive, Content-Length, X-Backend and two Set-Cookie lines. */
export function defaultReply(name: string, req: RecordedRequest): Reply {
  if (req.method === 'OPTIONS') return { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n' };
  const body = `hello from ${name} path=${req.target}\n`;
  const head =
    `HTTP/1.1 200 OK\r\nServer: testbackend/${name}\r\nX-Backend: ${name}\r\nContent-Type: text/plain\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n`;
  const wantsClose = /\bclose\b/i.test(header(req.head.headers, 'connection') ?? '');
  return { bytes: req.method === 'HEAD' ? head : head + body, close: wantsClose };
}

export function startRawBackend(
  options: {
    name?: string;
    reply?: (req: RecordedRequest, name: string) => Reply;
    /** A fixed port (e.g. to bring a stopped backend back on the same address); default: any free port. */
    port?: number;
  } = {},
): Promise<RawBackend> {
  const name = options.name ?? 'b';
  const reply = options.reply ?? ((req: RecordedRequest) => defaultReply(name, req));
  const recorded: RecordedRequest[] = [];
  const sockets = new Set<net.Socket>();
  const waiters: Array<() => void> = [];
  let connections = 0;

  const server = net.createServer((socket) => {
    const conn = ++connections;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    let seq = 0;
    socket.on('data', (data: Buffer) => {
      buffered = Buffer.concat([buffered, data]);
      for (;;) {
        const message = messageLength(buffered, 'request');
        if (message === null) return;
        const raw = Buffer.from(buffered.subarray(0, message.total));
        buffered = buffered.subarray(message.total);
        const [method = '', target = ''] = message.head.startLine.split(' ');
        const req: RecordedRequest = { conn, seq: ++seq, raw, head: message.head, method, target };
        recorded.push(req);
        for (const wake of waiters.splice(0)) wake();
        const answer = reply(req, name);
        if ('hang' in answer) continue;
        if ('destroy' in answer) {
          socket.destroy();
          return;
        }
        if (answer.close) socket.end(answer.bytes);
        else socket.write(answer.bytes);
      }
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: LOOPBACK, port: options.port ?? 0 }, () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        name,
        port,
        requests: () => [...recorded],
        proxied: () => recorded.filter((r) => r.method !== 'OPTIONS'),
        connectionCount: () => connections,
        clear: () => {
          recorded.length = 0;
        },
        async waitForRequests(n, timeoutMs = 5000) {
          const deadline = Date.now() + timeoutMs;
          while (recorded.length < n) {
            const left = deadline - Date.now();
            if (left <= 0) {
              const got = recorded.map((r) => JSON.stringify(r.raw.toString('latin1'))).join('\n  ');
              throw new Error(`backend ${name}: expected ${n} requests within ${timeoutMs} ms, got ${recorded.length}:\n  ${got}`);
            }
            await new Promise<void>((wake) => {
              const timer = setTimeout(wake, left);
              waiters.push(() => {
                clearTimeout(timer);
                wake();
              });
            });
          }
          return [...recorded];
        },
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
