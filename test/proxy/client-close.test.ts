// How tsbal closes a client connection after its last answer: right after its FIN when the client asked to close
// and sent nothing more (as HAProxy does: no wait for the client's FIN per connection), lingering otherwise, so the
// client's unread bytes do not turn the close into a reset.
import { afterEach, describe, expect, test } from 'bun:test';
import net from 'node:net';
import type { ProxyHandle } from '../../src/proxy/index.ts';
import { type RawBackend, rawBackend, startTestProxy } from './helpers.ts';

interface HalfOpenClient {
  socket: net.Socket;
  data: () => string;
  /** Resolves once the proxy's FIN arrived. */
  ended: Promise<void>;
  errors: string[];
}

/** A client that keeps its own side open after the proxy's FIN (allowHalfOpen), as a slow or lazy client does. */
function halfOpenClient(port: number, request: string): Promise<HalfOpenClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let data = '';
    const errors: string[] = [];
    const ended = new Promise<void>((r) => socket.once('end', () => r()));
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
    socket.once('connect', () => {
      socket.write(request, 'latin1');
      resolve({ socket, data: () => data, ended, errors });
    });
    socket.once('error', reject);
  });
}

const within = async (ms: number, cond: () => boolean): Promise<boolean> => {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 10))) if (cond()) return true;
  return cond();
};

describe('closing a client connection after its last answer', () => {
  let backend: RawBackend | null = null;
  let proxy: ProxyHandle | null = null;
  let client: HalfOpenClient | null = null;
  afterEach(async () => {
    client?.socket.destroy();
    await proxy?.close({ graceful: false });
    await backend?.close();
    [backend, proxy, client] = [null, null, null];
  });

  async function start(): Promise<number> {
    backend = await rawBackend('b1');
    const started = await startTestProxy([backend.port], { persist_client: true, persist_backend: true });
    proxy = started.proxy;
    return started.port;
  }

  test('Connection: close: the answer, our FIN, and the connection is gone without waiting for the client FIN', async () => {
    const port = await start();
    client = await halfOpenClient(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await client.ended;
    expect(client.data()).toContain('hello from b1');
    expect(client.data()).toContain('Connection: close');
    // The client still has its side open: the proxy has let go of the connection all the same.
    expect(await within(2000, () => proxy!.engine.clients.size === 0)).toBe(true);
    // The answer was all in the kernel, so the proxy closed without shutdown(2): the data and a FIN, never a reset.
    await new Promise((r) => setTimeout(r, 100));
    expect(client.errors).toEqual([]);
  });

  test('Connection: close with a large answer read slowly: every byte arrives before the close', async () => {
    const body = Buffer.alloc(4 * 1024 * 1024, 'y');
    backend = await rawBackend('big', (socket, _conn, received) => {
      if (received.includes('\r\n\r\n') && !received.startsWith('OPTIONS')) {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
        socket.write(body);
      } else if (received.startsWith('OPTIONS')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    });
    const started = await startTestProxy([backend.port], { persist_client: true, persist_backend: true, verify_backend: false });
    proxy = started.proxy;
    client = await halfOpenClient(started.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    // A slow reader: the proxy's writes back up, so its FIN and close wait for the socket to drain.
    client.socket.pause();
    await new Promise((r) => setTimeout(r, 300));
    client.socket.resume();
    await client.ended;
    const data = client.data();
    expect(data.length - (data.indexOf('\r\n\r\n') + 4)).toBe(body.length);
    expect(client.errors).toEqual([]);
  });

  test('HTTP/1.0 without keep-alive closes the same way', async () => {
    const port = await start();
    client = await halfOpenClient(port, 'GET / HTTP/1.0\r\n\r\n');
    await client.ended;
    expect(client.data()).toContain('hello from b1');
    expect(await within(2000, () => proxy!.engine.clients.size === 0)).toBe(true);
  });

  test('bytes after a Connection: close request: the connection lingers, reading and dropping them, with no reset', async () => {
    const port = await start();
    client = await halfOpenClient(
      port,
      'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    await client.ended;
    expect(client.data().match(/hello from b1/g)?.length).toBe(1);
    // Still there, discarding what comes: more bytes from the client meet no reset.
    client.socket.write('more bytes the proxy will drop\r\n');
    await new Promise((r) => setTimeout(r, 300));
    expect(proxy!.engine.clients.size).toBe(1);
    expect(client.errors).toEqual([]);
    // Our FIN ends the linger.
    client.socket.end();
    expect(await within(2000, () => proxy!.engine.clients.size === 0)).toBe(true);
    expect(client.errors).toEqual([]);
  });
});
