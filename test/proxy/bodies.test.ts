// Message bodies: chunked both ways (trailers too), HTTP/1.0 clients, close-delimited, HEAD/204/304,
// Expect: 100-continue, Upgrade tunnels, and streaming with back-pressure (memory stays bounded).
import { describe, expect, test } from 'bun:test';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { rawBackend, rawRequest, startTestProxy, statusCodes } from './helpers.ts';

describe('bodies', () => {
  test('a chunked request body reaches the backend with its framing as sent', async () => {
    const body = '5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n';
    const b = await rawBackend('b', (socket, _i, received) => {
      if (received.endsWith('0\r\nX-Trailer: t\r\n\r\n')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const { proxy, port } = await startTestProxy([b.port]);
    try {
      const r = await rawRequest(port, ['POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n', body], { until: (d) => d.endsWith('ok') });
      expect(statusCodes(r.data)).toEqual([200]);
      expect(b.conns[0]).toContain('\r\nTransfer-Encoding: chunked\r\n');
      expect(b.conns[0]!.endsWith(`\r\n\r\n${body}`)).toBe(true);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('a chunked response goes to an HTTP/1.1 client as chunked and the connection stays usable (Perlbal hangs)', async () => {
    const b = await rawBackend('b', (socket, _i, received) => {
      if (received.endsWith('\r\n\r\n')) socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n');
    });
    const { proxy, port } = await startTestProxy([b.port], { persist_client: true, persist_backend: true });
    try {
      const req = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
      const r = await rawRequest(port, req + req, { until: (d) => d.split('0\r\nT: 1\r\n\r\n').length === 3 });
      expect(r.data).toBe(
        ('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n' +
          '5\r\nhello\r\n0\r\nT: 1\r\n\r\n').repeat(2),
      );
      expect(b.conns.length).toBe(1);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('a chunked response to an HTTP/1.0 client is de-chunked and close-delimited', async () => {
    const b = await rawBackend('b', (socket, _i, received) => {
      if (received.endsWith('\r\n\r\n')) socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
    });
    const { proxy, port } = await startTestProxy([b.port], { persist_client: true });
    try {
      const r = await rawRequest(port, 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', { timeoutMs: 2000 });
      expect(r.closed).toBe(true);
      expect(r.data).toBe('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('a close-delimited response is relayed to the end and the client connection closed', async () => {
    const b = await rawBackend('b', (socket, _i, received) => {
      if (received.endsWith('\r\n\r\n')) socket.end('HTTP/1.0 200 OK\r\n\r\nuntil the end');
    });
    const { proxy, port } = await startTestProxy([b.port], { persist_client: true });
    try {
      const r = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { timeoutMs: 2000 });
      expect(r.closed).toBe(true);
      expect(r.data).toBe('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('HEAD, 204 and 304 have no body whatever their headers say, and keep the connection', async () => {
    const b = await rawBackend('b', (socket, _i, received) => {
      if (!received.endsWith('\r\n\r\n')) return;
      const last = received.slice(received.lastIndexOf('\r\n\r\n', received.length - 5));
      if (/(^|\n)HEAD /.test(last) || received.split('\r\n\r\n').length === 2) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n');
      else if (last.includes('/204')) socket.write('HTTP/1.1 204 No Content\r\n\r\n');
      else socket.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n');
    });
    const { proxy, port } = await startTestProxy([b.port], { persist_client: true, persist_backend: true });
    try {
      const r = await rawRequest(
        port,
        'HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /304 HTTP/1.1\r\nHost: a\r\n\r\n',
        { until: (d) => d.includes('304 Not Modified') && d.endsWith('\r\n\r\n') },
      );
      expect(statusCodes(r.data)).toEqual([200, 204, 304]);
      expect(r.closed).toBe(false);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test("Expect: 100-continue is forwarded and the backend's 100 Continue relayed before the final answer", async () => {
    const b = await rawBackend('b', (socket, _i, received) => {
      if (received.endsWith('\r\n\r\n')) socket.write('HTTP/1.1 100 Continue\r\n\r\n');
      else if (received.endsWith('hello')) socket.write('HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n');
    });
    const { proxy, port } = await startTestProxy([b.port]);
    try {
      const s = connect(port, '127.0.0.1');
      let got = '';
      await new Promise<void>((resolve) => {
        s.on('connect', () => s.write('PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n'));
        s.on('data', (d) => {
          got += d.toString('latin1');
          if (got === 'HTTP/1.1 100 Continue\r\n\r\n') s.write('hello');
          if (got.includes('201 Created') && got.endsWith('\r\n\r\n')) resolve();
        });
      });
      s.destroy();
      expect(statusCodes(got)).toEqual([100, 201]);
      expect(b.conns[0]).toContain('\r\nExpect: 100-continue\r\n');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('an early final answer to an upload is relayed and the client connection closed (body not read)', async () => {
    const b = await rawBackend('b', (socket, _i, received) => {
      if (received.includes('\r\n\r\n') && !socket.writableEnded) socket.end('HTTP/1.1 413 Too Big\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    // buffer_backend_connect = 0: the backend gets the request before the body is in (by default 100k are held).
    const { proxy, port } = await startTestProxy([b.port], { persist_client: true, buffer_backend_connect: 0 });
    try {
      const r = await rawRequest(port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nabc', { timeoutMs: 2000 });
      expect(statusCodes(r.data)).toEqual([413]);
      expect(r.data).toContain('Connection: close');
      expect(r.closed).toBe(true);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('a large response to a client that stops reading stalls the backend: memory stays bounded', async () => {
    let written = 0;
    const total = 256 * 1024 * 1024;
    const server = createServer((socket: Socket) => {
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`);
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        const pump = (): void => {
          while (written < total) {
            written += chunk.length;
            if (!socket.write(chunk)) return void socket.once('drain', pump);
          }
        };
        pump();
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { proxy, port } = await startTestProxy([(server.address() as AddressInfo).port]);
    const client = connect(port, '127.0.0.1');
    try {
      let received = 0;
      let stoppedOnce = false;
      client.on('data', (d) => {
        received += d.length;
        if (received > 1024 * 1024 && !stoppedOnce) {
          stoppedOnce = true;
          client.pause();
        }
      });
      client.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
      await Bun.sleep(600);
      // Socket buffers (client, proxy both ways, backend) hold a few MB at most; without back-pressure the
      // backend would have pushed all 256 MB into the proxy by now.
      expect(written).toBeLessThan(48 * 1024 * 1024);
      client.resume();
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (received >= total) {
            clearInterval(t);
            resolve();
          }
        }, 20);
      });
      expect(received).toBeGreaterThanOrEqual(total);
    } finally {
      client.destroy();
      await proxy.close({ graceful: false });
      server.close();
    }
  }, 30_000);

  test('a large upload to a slow backend stalls the client: memory stays bounded', async () => {
    let backendRead = 0;
    let backendSocket: Socket | null = null;
    const server = createServer((socket: Socket) => {
      backendSocket = socket;
      socket.on('data', (d) => {
        backendRead += d.length;
        if (backendRead > 1024 * 1024) socket.pause();
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { proxy, port } = await startTestProxy([(server.address() as AddressInfo).port]);
    const client = connect(port, '127.0.0.1');
    try {
      let sent = 0;
      const total = 256 * 1024 * 1024;
      const chunk = Buffer.alloc(64 * 1024, 0x62);
      client.write(`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${total}\r\n\r\n`);
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!client.write(chunk)) return void client.once('drain', pump);
        }
      };
      pump();
      await Bun.sleep(600);
      expect(sent).toBeLessThan(48 * 1024 * 1024);
      expect(backendSocket).not.toBeNull();
    } finally {
      client.destroy();
      await proxy.close({ graceful: false });
      server.close();
    }
  });
});

describe('upgrade', () => {
  test('a 101 to an Upgrade request turns the connection into a two-way tunnel', async () => {
    const b = await rawBackend('ws', (socket, _i, received, chunk) => {
      if (received.endsWith('\r\n\r\n') && received.includes('Upgrade: websocket')) {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nserver-hello');
      } else if (received.includes('\r\n\r\n')) {
        socket.write(Buffer.concat([Buffer.from('echo:'), chunk]));
      }
    });
    const { proxy, port } = await startTestProxy([b.port], { persist_backend: true });
    try {
      const s = connect(port, '127.0.0.1');
      let got = '';
      await new Promise<void>((resolve) => {
        s.on('connect', () => s.write('GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n'));
        s.on('data', (d) => {
          got += d.toString('latin1');
          if (got.endsWith('server-hello')) s.write(Buffer.from('ping\x00\xff', 'latin1'));
          if (got.endsWith('echo:ping\x00\xff')) resolve();
        });
      });
      s.destroy();
      expect(got).toBe('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nserver-helloecho:ping\x00\xff');
      expect(b.conns[0]).toContain('\r\nConnection: upgrade\r\nUpgrade: websocket\r\n');
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });
});
