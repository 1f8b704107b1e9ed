// A raw HTTP client over node:net: sends exact bytes and reads back whole responses with their exact bytes,
// distinguishing a response, a close with no (complete) response, and a timeout.
import net from 'node:net';
import { LOOPBACK } from './ports.ts';
import { type Head, dechunk, messageLength } from './httpwire.ts';

export interface RawResponse {
  /** Exact bytes of the response (head + body as framed on the wire). */
  raw: Buffer;
  head: Head;
  statusLine: string;
  status: number;
  /** Body after de-chunking. */
  body: Buffer;
}

export type ReadOutcome =
  | { kind: 'response'; response: RawResponse; ms: number }
  | { kind: 'closed'; received: Buffer; ms: number }
  | { kind: 'timeout'; received: Buffer; ms: number };

export interface RawConnection {
  send(bytes: string | Buffer): void;
  /** Reads the next response; `method` tells whether it has a body (HEAD). */
  read(options?: { method?: string; timeoutMs?: number }): Promise<ReadOutcome>;
  /** Resolves true if the server closes the connection within `timeoutMs` with no further bytes pending. */
  waitClosed(timeoutMs: number): Promise<boolean>;
  isClosed(): boolean;
  close(): void;
}

/** `localAddress` picks the client's source address (e.g. 127.0.0.5, to test address-based rules). */
export function connectRaw(port: number, host = LOOPBACK, localAddress?: string): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(localAddress === undefined ? { host, port } : { host, port, localAddress });
    let buffered = Buffer.alloc(0);
    let closed = false;
    let wake: (() => void) | null = null;
    const notify = (): void => {
      const w = wake;
      wake = null;
      w?.();
    };
    socket.on('data', (data: Buffer) => {
      buffered = Buffer.concat([buffered, data]);
      notify();
    });
    socket.on('close', () => {
      closed = true;
      notify();
    });
    socket.on('error', () => undefined); // surfaces as 'close'
    const waitForChange = (deadline: number): Promise<boolean> =>
      new Promise((done) => {
        const left = deadline - Date.now();
        if (left <= 0) return done(false);
        const timer = setTimeout(() => {
          wake = null;
          done(false);
        }, left);
        wake = () => {
          clearTimeout(timer);
          done(true);
        };
      });

    const connection: RawConnection = {
      send: (bytes) => void socket.write(bytes),
      async read({ method = 'GET', timeoutMs = 5000 } = {}) {
        const start = Date.now();
        const deadline = start + timeoutMs;
        for (;;) {
          const message = messageLength(buffered, 'response', method, closed);
          if (message !== null) {
            const raw = Buffer.from(buffered.subarray(0, message.total));
            buffered = buffered.subarray(message.total);
            const bodyBytes = raw.subarray(message.head.length);
            const body = message.framing.kind === 'chunked' ? dechunk(bodyBytes) : bodyBytes;
            const status = Number(message.head.startLine.split(' ')[1]);
            const response = { raw, head: message.head, statusLine: message.head.startLine, status, body };
            return { kind: 'response', response, ms: Date.now() - start };
          }
          if (closed) {
            const received = buffered;
            buffered = Buffer.alloc(0);
            return { kind: 'closed', received, ms: Date.now() - start };
          }
          if (!(await waitForChange(deadline))) {
            return { kind: 'timeout', received: Buffer.from(buffered), ms: Date.now() - start };
          }
        }
      },
      async waitClosed(timeoutMs) {
        const deadline = Date.now() + timeoutMs;
        while (!closed) if (!(await waitForChange(deadline))) return false;
        return true;
      },
      isClosed: () => closed,
      close: () => void socket.destroy(),
    };
    socket.once('connect', () => resolve(connection));
    socket.once('error', (error) => {
      if (!closed) reject(error);
    });
  });
}

/** One request on a fresh connection: the outcome, and whether the server then closed the connection. */
export async function exchange(
  port: number,
  request: string | Buffer,
  options: { method?: string; timeoutMs?: number; closeWaitMs?: number; localAddress?: string } = {},
): Promise<{ outcome: ReadOutcome; closedAfter: boolean }> {
  const conn = await connectRaw(port, LOOPBACK, options.localAddress);
  try {
    conn.send(request);
    const outcome = await conn.read(options);
    const closedAfter = outcome.kind !== 'response' || (await conn.waitClosed(options.closeWaitMs ?? 150));
    return { outcome, closedAfter };
  } finally {
    conn.close();
  }
}

/** Describes an outcome for assertion messages. */
export function describeOutcome(outcome: ReadOutcome): string {
  switch (outcome.kind) {
    case 'response':
      return `response after ${outcome.ms} ms: ${JSON.stringify(outcome.response.raw.toString('latin1'))}`;
    case 'closed':
      return `closed after ${outcome.ms} ms, received ${JSON.stringify(outcome.received.toString('latin1'))}`;
    case 'timeout':
      return `no complete response within ${outcome.ms} ms, received ${JSON.stringify(outcome.received.toString('latin1'))}`;
  }
}

/**
 * Every response on one connection as lines to compare between two servers: status, fields (Date and Server values
 * masked), body, then whether the server closed within 300 ms. One entry of `methods` per response read (HEAD has
 * no body); reading stops at the first outcome that is not a response (described without its timing).
 */
export async function transcript(port: number, request: string | Buffer, methods: ReadonlyArray<string | undefined>): Promise<string[]> {
  const conn = await connectRaw(port);
  const out: string[] = [];
  try {
    conn.send(request);
    for (const method of methods) {
      const o = await conn.read(method === undefined ? { timeoutMs: 3000 } : { method, timeoutMs: 3000 });
      if (o.kind !== 'response') {
        out.push(describeOutcome(o).replace(/ after \d+ ms/, ''));
        break;
      }
      const { head, body } = o.response;
      out.push(`status ${o.response.status}`);
      for (const [name, value] of head.headers) out.push(`${name}: ${/^(date|server)$/i.test(name) ? '<masked>' : value}`);
      out.push(`body ${JSON.stringify(body.toString('latin1'))}`);
    }
    out.push(`closed after: ${await conn.waitClosed(300)}`);
  } finally {
    conn.close();
  }
  return out;
}
