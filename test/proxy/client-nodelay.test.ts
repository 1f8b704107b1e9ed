// When tsbal turns Nagle off (TCP_NODELAY) on a client connection: not at accept, but once the connection may write
// more than once per answer. A request that asked to close and whose answer goes in one write needs none (close(2)
// sends it with the FIN), which saves a system call per connection. Read from outside the process, on tsbal.cjs
// under the Node 22 that the SEA binary ships (Bun sets TCP_NODELAY on every socket itself, so this is Node's path).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { REPO_ROOT } from '../harness/cli.ts';
import { ensureDist, NODE22 } from '../harness/dist.ts';
import type { PerlbalConfProxy } from '../harness/perlbal.ts';
import { reverseProxyConfFor } from '../harness/perlbal.ts';
import { startTsbalWithConf } from '../harness/tsbal.ts';
import { type RawBackend, rawBackend } from './helpers.ts';

const PROBE = path.join(REPO_ROOT, 'test/harness/tcp-nodelay.py');

/** TCP_NODELAY of tsbal's end of the client connection whose local port is `clientPort`. */
function noDelayOf(proxy: PerlbalConfProxy, clientPort: number): number {
  const r = spawnSync('python3', [PROBE, String(proxy.pid), String(proxy.port), String(clientPort)], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`tcp-nodelay.py: ${r.stdout}${r.stderr}`);
  return Number(r.stdout.trim());
}

/** The backend's connections that carried a request, in order: each test answers its own by hand. */
const backendSockets: net.Socket[] = [];

const BODY = 'x'.repeat(64);
const HEAD = `HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\n\r\n`;

describe('TCP_NODELAY on client connections (Node)', () => {
  let backend: RawBackend;
  let proxy: PerlbalConfProxy;

  beforeAll(async () => {
    await ensureDist();
    // Holds every request until the test answers it.
    backend = await rawBackend('b', (socket, _conn, received) => {
      if (received.includes('\r\n\r\n') && !backendSockets.includes(socket)) backendSockets.push(socket);
    });
    proxy = await startTsbalWithConf(
      1,
      reverseProxyConfFor({ backends: [backend.port], set: { persist_client: 'on', persist_backend: 'off' } }),
      { kind: 'dist', node: NODE22 },
    );
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await backend?.close();
  });

  /** Sends `request`; `received` resolves with what came back once the whole body arrived or tsbal closed. */
  function client(request: string): Promise<{ socket: net.Socket; received: Promise<string> }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(proxy.port, '127.0.0.1');
      let data = '';
      const received = new Promise<string>((r) => {
        socket.on('data', (d: Buffer) => {
          data += d.toString('latin1');
          if (data.endsWith(BODY)) r(data);
        });
        socket.on('close', () => r(data));
      });
      socket.once('connect', () => {
        socket.write(request);
        resolve({ socket, received });
      });
      socket.once('error', reject);
    });
  }

  const waitFor = async (cond: () => boolean, ms = 5000): Promise<void> => {
    for (const t0 = Date.now(); !cond(); await new Promise((r) => setTimeout(r, 10))) {
      if (Date.now() - t0 > ms) throw new Error('timed out');
    }
  };

  test('a request that asked to close: Nagle stays on while its one-write answer is awaited, and the answer arrives whole', async () => {
    const before = backendSockets.length;
    const c = await client('GET /close HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    await waitFor(() => backendSockets.length > before);
    expect(noDelayOf(proxy, c.socket.localPort!)).toBe(0);
    backendSockets[before]!.write(HEAD + BODY);
    expect(await c.received).toEndWith(BODY);
    c.socket.destroy();
  });

  test('a request that may be followed by another (keep-alive): Nagle is off before its answer', async () => {
    const before = backendSockets.length;
    const c = await client('GET /kept HTTP/1.1\r\nHost: t\r\n\r\n');
    await waitFor(() => backendSockets.length > before);
    expect(noDelayOf(proxy, c.socket.localPort!)).toBe(1);
    backendSockets[before]!.write(HEAD + BODY);
    expect(await c.received).toEndWith(BODY);
    c.socket.destroy();
  });

  test('a close request whose response keeps coming after the first backend read: Nagle is off for the rest', async () => {
    const before = backendSockets.length;
    const c = await client('GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    await waitFor(() => backendSockets.length > before);
    const be = backendSockets[before]!;
    be.write(HEAD + BODY.slice(0, 10));
    await waitFor(() => {
      try {
        return noDelayOf(proxy, c.socket.localPort!) === 1;
      } catch {
        return false;
      }
    });
    be.write(BODY.slice(10));
    expect(await c.received).toEndWith(BODY);
    c.socket.destroy();
  });
});
