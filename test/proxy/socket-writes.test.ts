// The proxy's writes on Node, where they go straight to the socket's handle (src/runtime/socket-writes.ts), and with
// TSBAL_SOCKET_WRITES=stream, the stream path Bun uses: back-pressure both ways, every byte in order, a close
// after a write still in flight, and a peer's reset in the middle of a write. tsbal runs as dist/tsbal.cjs under
// Node 22 (the runtime the SEA binary ships; TSBAL_TEST_BIN=dist/tsbal-bun runs the same tests on Bun). Each runs
// over plain TCP and over TLS on the client side (TLSWrap: one write at a time, every write completing later).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect as tcpConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { spawn } from 'node:child_process';
import { makePki, type Leaf, type TestPki } from '../harness/certs.ts';
import { NODE22 } from '../harness/dist.ts';
import { reverseProxyConfFor, startWithConf, type PerlbalConfProxy } from '../harness/perlbal.ts';
import { launchSingleTsbal } from '../harness/tsbal.ts';
import { runWrk } from '../harness/wrk.ts';

const MODES = ['direct', 'stream', 'direct over TLS', 'stream over TLS'] as const;
type Mode = (typeof MODES)[number];

const started: PerlbalConfProxy[] = [];
const servers: Server[] = [];
let pki: TestPki | null = null;
let leaf: Leaf | null = null;
beforeAll(() => {
  pki = makePki();
  leaf = pki.issue('site', ['localhost']);
});
afterAll(async () => {
  for (const p of started) await p.stop();
  for (const s of servers) s.close();
  pki?.cleanup();
});

const overTls = (mode: Mode): boolean => mode.endsWith('over TLS');

/** The TCP socket under each TLS client, so that a test can reset it. */
const rawOf = new WeakMap<Socket, Socket>();

function connect(mode: Mode, port: number): Socket {
  const raw = tcpConnect(port, '127.0.0.1');
  if (!overTls(mode)) return raw;
  const client = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
  rawOf.set(client, raw);
  return client;
}

function resetAndDestroy(client: Socket): void {
  (rawOf.get(client) ?? client).resetAndDestroy();
}

function startProxy(mode: Mode, backendPort: number): Promise<PerlbalConfProxy> {
  const launch = launchSingleTsbal({ kind: 'dist', node: NODE22 });
  const tls: Record<string, string> = overTls(mode) ? { enable_ssl: 'on', ssl_key_file: leaf!.key, ssl_cert_file: leaf!.crt } : {};
  const set = { persist_client: 'on', persist_backend: 'on', ...tls };
  return startWithConf('tsbal', 1, reverseProxyConfFor({ backends: [backendPort], set }), (conf) => {
    const l = launch(conf);
    return { ...l, env: { ...l.env, TSBAL_SOCKET_WRITES: mode.startsWith('stream') ? 'stream' : '' } };
  }).then((p) => {
    started.push(p);
    return p;
  });
}

async function listen(onConnection: (socket: Socket) => void): Promise<number> {
  const server = createServer(onConnection);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as AddressInfo).port;
}

/** The byte at `offset` of a test body: the 64 KiB block's number, so a reordered or lost block shows. */
const patternAt = (offset: number): number => (offset >>> 16) & 0xff;

function patternBlock(index: number): Buffer {
  return Buffer.alloc(64 * 1024, index & 0xff);
}

/** Checks `chunk` (at `offset` of the body) against the pattern; returns the first wrong offset or -1. */
function firstMismatch(chunk: Buffer, offset: number): number {
  for (let i = 0; i < chunk.length; i += 4096) if (chunk[i] !== patternAt(offset + i)) return offset + i;
  return chunk.length > 0 && chunk[chunk.length - 1] !== patternAt(offset + chunk.length - 1) ? offset + chunk.length - 1 : -1;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe.each(MODES)('socket writes (%s)', (mode) => {
  test('a large response to a client that stops reading stalls the backend, then every byte arrives in order', async () => {
    const total = 96 * 1024 * 1024;
    let written = 0;
    const port = await listen((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`);
        const pump = (): void => {
          while (written < total) {
            const block = patternBlock(written >>> 16);
            written += block.length;
            if (!socket.write(block)) return void socket.once('drain', pump);
          }
        };
        pump();
      });
    });
    const proxy = await startProxy(mode, port);
    const client = connect(mode, proxy.port);
    try {
      let head: string | null = null;
      let pending = Buffer.alloc(0);
      let received = 0;
      let mismatch = -1;
      let stopped = false;
      client.on('data', (d: Buffer) => {
        if (head === null) {
          pending = Buffer.concat([pending, d]);
          const end = pending.indexOf('\r\n\r\n');
          if (end === -1) return;
          head = pending.toString('latin1', 0, end);
          d = pending.subarray(end + 4);
        }
        if (mismatch === -1) mismatch = firstMismatch(d, received);
        received += d.length;
        if (received > 1024 * 1024 && !stopped) {
          stopped = true;
          client.pause();
        }
      });
      client.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
      await waitFor(() => client.isPaused(), 10_000, 'the first MiB');
      await sleep(600);
      // Socket buffers hold a few MiB at most; without back-pressure the backend would have sent all 96 MiB.
      expect(written).toBeLessThan(48 * 1024 * 1024);
      client.resume();
      await waitFor(() => received >= total, 20_000, `${total} body bytes (got ${received})`);
      expect(head).toStartWith('HTTP/1.1 200 OK\r\n');
      expect(received).toBe(total);
      expect(mismatch).toBe(-1);
    } finally {
      client.destroy();
    }
  }, 40_000);

  test('a large upload to a backend that stops reading stalls the client, then every byte arrives in order', async () => {
    const total = 96 * 1024 * 1024;
    let backendRead = 0;
    let headSeen = false;
    let mismatch = -1;
    let backendSocket: Socket | null = null;
    const port = await listen((socket) => {
      backendSocket = socket;
      socket.on('error', () => {});
      let carry = Buffer.alloc(0);
      let stopped = false;
      socket.on('data', (d: Buffer) => {
        if (!headSeen) {
          carry = Buffer.concat([carry, d]);
          const end = carry.indexOf('\r\n\r\n');
          if (end === -1) return;
          headSeen = true;
          d = carry.subarray(end + 4);
        }
        if (mismatch === -1) mismatch = firstMismatch(d, backendRead);
        backendRead += d.length;
        if (backendRead > 1024 * 1024 && !stopped) {
          stopped = true;
          socket.pause();
        }
        if (backendRead >= total) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    const proxy = await startProxy(mode, port);
    const client = connect(mode, proxy.port);
    try {
      let answer = '';
      client.on('data', (d: Buffer) => (answer += d.toString('latin1')));
      let sent = 0;
      client.write(`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${total}\r\n\r\n`);
      const pump = (): void => {
        while (sent < total) {
          const block = patternBlock(sent >>> 16);
          sent += block.length;
          if (!client.write(block)) return void client.once('drain', pump);
        }
      };
      pump();
      await waitFor(() => backendSocket !== null && backendSocket.isPaused(), 10_000, 'the backend to pause');
      await sleep(600);
      expect(sent).toBeLessThan(48 * 1024 * 1024);
      backendSocket!.resume();
      await waitFor(() => answer.endsWith('ok'), 20_000, `the answer (backend read ${backendRead} of ${total})`);
      expect(answer).toStartWith('HTTP/1.1 200 OK\r\n');
      expect(backendRead).toBe(total);
      expect(mismatch).toBe(-1);
    } finally {
      client.destroy();
    }
  }, 40_000);

  test('Connection: close with an answer still being written when the backend is done: every byte, then the close', async () => {
    const total = 24 * 1024 * 1024;
    const port = await listen((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`);
        for (let i = 0; i < total >>> 16; i++) socket.write(patternBlock(i));
      });
    });
    const proxy = await startProxy(mode, port);
    const client = connect(mode, proxy.port);
    try {
      let body = -1;
      let carry = Buffer.alloc(0);
      let mismatch = -1;
      let closed = false;
      client.on('data', (d: Buffer) => {
        if (body === -1) {
          carry = Buffer.concat([carry, d]);
          const end = carry.indexOf('\r\n\r\n');
          if (end === -1) return;
          body = 0;
          d = carry.subarray(end + 4);
        }
        if (mismatch === -1) mismatch = firstMismatch(d, body);
        body += d.length;
      });
      client.on('close', () => (closed = true));
      client.on('error', () => {});
      client.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      // Read nothing for a while: the proxy has the whole answer from the backend but cannot hand it on yet.
      client.pause();
      await sleep(800);
      client.resume();
      await waitFor(() => closed, 20_000, `the close (got ${body} body bytes)`);
      expect(body).toBe(total);
      expect(mismatch).toBe(-1);
    } finally {
      client.destroy();
    }
  }, 40_000);

  test.if(overTls(mode))('over TLS, Connection: close after a large answer still being written ends with close_notify, not a bare FIN', async () => {
    const total = 24 * 1024 * 1024;
    const port = await listen((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`);
        for (let i = 0; i < total >>> 16; i++) socket.write(patternBlock(i));
      });
    });
    const proxy = await startProxy(mode, port);
    // openssl s_client reports a FIN without close_notify as "unexpected eof while reading".
    const client = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${proxy.port}`, '-quiet', '-ign_eof', '-servername', 'localhost'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = 0;
    let stderr = '';
    client.stdout.on('data', (d: Buffer) => (stdout += d.length));
    client.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => client.on('exit', (code) => r(code)));
    const timer = setTimeout(() => client.kill(), 20_000);
    try {
      client.stdin.end('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      await exited;
      expect(stdout).toBeGreaterThan(total);
      expect(stderr).not.toContain('unexpected eof');
    } finally {
      clearTimeout(timer);
      client.kill();
    }
  }, 30_000);

  test('a backend that resets while the upload is written to it gets the client a 502 and a close', async () => {
    const port = await listen((socket) => {
      socket.on('error', () => {});
      let read = 0;
      socket.on('data', (d: Buffer) => {
        read += d.length;
        // Stop reading, so that the proxy's writes back up, then reset with the data unread.
        if (read > 256 * 1024 && !socket.isPaused()) {
          socket.pause();
          setTimeout(() => socket.resetAndDestroy(), 300);
        }
      });
    });
    const proxy = await startProxy(mode, port);
    const client = connect(mode, proxy.port);
    try {
      let answer = '';
      let closed = false;
      client.on('data', (d: Buffer) => (answer += d.toString('latin1')));
      client.on('close', () => (closed = true));
      client.on('error', () => {});
      const total = 64 * 1024 * 1024;
      let sent = 0;
      client.write(`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${total}\r\n\r\n`);
      const pump = (): void => {
        while (sent < total && !closed) {
          sent += 64 * 1024;
          if (!client.write(patternBlock(0))) return void client.once('drain', pump);
        }
      };
      pump();
      await waitFor(() => closed, 15_000, 'the client connection to close');
      expect(answer).toStartWith('HTTP/1.1 502 ');
      expect(sent).toBeLessThan(total);
    } finally {
      client.destroy();
    }
  }, 30_000);

  test('wrk with Connection: close, which ends its run by closing connections with requests in flight: tsbal serves on', async () => {
    // A TLS socket's write into a connection the client closed fails inside the write call itself (TLSWrap completes
    // the request with EPIPE/ECONNRESET before returning): at the end of such a wrk run that once crashed tsbal.
    const port = await listen((socket) => {
      socket.on('error', () => {});
      socket.on('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    const proxy = await startProxy(mode, port);
    const url = `${overTls(mode) ? 'https' : 'http'}://127.0.0.1:${proxy.port}/`;
    for (let run = 0; run < 2; run++) {
      const r = await runWrk({ url, threads: 2, connections: 32, durationSeconds: 2, headers: ['Connection: close'] });
      expect(r.requests).toBeGreaterThan(0);
    }
    const next = connect(mode, proxy.port);
    try {
      let got = '';
      next.on('data', (d: Buffer) => (got += d.toString('latin1')));
      next.on('error', () => {});
      next.write('GET /small HTTP/1.1\r\nHost: a\r\n\r\n');
      await waitFor(() => got.endsWith('ok'), 10_000, `the next answer (tsbal: ${proxy.output().slice(-600)})`);
      expect(got).toStartWith('HTTP/1.1 200 OK\r\n');
    } finally {
      next.destroy();
    }
  }, 40_000);

  test('a client that resets in the middle of a large answer costs nothing else: the next client is served', async () => {
    const total = 64 * 1024 * 1024;
    const port = await listen((socket) => {
      socket.on('error', () => {});
      socket.on('data', (d: Buffer) => {
        if (d.includes('/big')) {
          socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`);
          let n = 0;
          const pump = (): void => {
            while (n < total && !socket.destroyed) {
              n += 64 * 1024;
              if (!socket.write(patternBlock(0))) return void socket.once('drain', pump);
            }
          };
          pump();
        } else {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        }
      });
    });
    const proxy = await startProxy(mode, port);
    const first = connect(mode, proxy.port);
    first.on('error', () => {});
    let got = 0;
    first.on('data', (d: Buffer) => {
      got += d.length;
      if (got > 4 * 1024 * 1024) first.pause();
    });
    first.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
    await waitFor(() => first.isPaused(), 10_000, 'the first 4 MiB');
    await sleep(300);
    resetAndDestroy(first);
    await sleep(200);
    const second = connect(mode, proxy.port);
    try {
      let answer = '';
      second.on('data', (d: Buffer) => (answer += d.toString('latin1')));
      second.write('GET /small HTTP/1.1\r\nHost: a\r\n\r\n');
      await waitFor(() => answer.endsWith('ok'), 10_000, 'the second answer');
      expect(answer).toStartWith('HTTP/1.1 200 OK\r\n');
    } finally {
      second.destroy();
    }
  }, 30_000);
});
