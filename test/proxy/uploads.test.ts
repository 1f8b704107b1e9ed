// Buffered uploads for real: buffer_backend_connect holds a body in memory, buffer_uploads spools large, slow and
// chunked bodies to buffer_uploads_path before any backend connection, sends them from the file, removes the file
// on completion and on client abort.
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type Socket } from 'node:net';
import { rawBackend, startTestProxy, statusCodes, type RawBackend } from './helpers.ts';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbal-spool-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A backend that answers 200 once it has the head and `bodyLen` body bytes (or the chunked terminator). */
function answeringBackend(bodyLen: number | 'chunked'): Promise<RawBackend> {
  return rawBackend('b', (socket, _i, received) => {
    const h = received.indexOf('\r\n\r\n');
    if (h === -1) return;
    const body = received.length - h - 4;
    const complete = bodyLen === 'chunked' ? received.endsWith('0\r\n\r\n') : body >= bodyLen;
    if (complete) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  });
}

/** A client connection that collects what it gets back. */
function client(port: number): Promise<{ socket: Socket; got: () => string; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    let closed = false;
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, got: () => data, closed: () => closed }));
    socket.once('error', reject);
  });
}

const spoolFiles = (): string[] => fs.readdirSync(dir);

function payload(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

function bodyOf(conn: string): Buffer {
  return Buffer.from(conn.slice(conn.indexOf('\r\n\r\n') + 4), 'latin1');
}

type Client = Awaited<ReturnType<typeof client>>;

/**
 * The proxy (with `opts`) in front of `backends`, one client connected to it, `run`; then all of it is closed,
 * whatever happened, and the backends with it.
 */
async function withProxy(backends: RawBackend[], opts: Parameters<typeof startTestProxy>[1], run: (c: Client) => Promise<void>, pool?: Parameters<typeof startTestProxy>[2]): Promise<void> {
  const { proxy, port } = await startTestProxy(backends.map((b) => b.port), opts, pool);
  let c: Client | null = null;
  try {
    c = await client(port);
    await run(c);
  } finally {
    c?.socket.destroy();
    await proxy.close({ graceful: false });
    for (const b of backends) await b.close();
  }
}

const answered = (c: Client, ms?: number): Promise<void> => until(() => c.got().endsWith('ok'), 'the response', ms);
const spoolRemoved = (): Promise<void> => until(() => spoolFiles().length === 0, 'the spool file to be removed');

describe('buffered uploads', () => {
  test('a body over buffer_upload_threshold_size is spooled while the client sends, and the backend is connected only once it is complete', async () => {
    const size = 300 * 1024;
    const body = payload(size);
    const b = await answeringBackend(size);
    await withProxy([b], { buffer_uploads: true, buffer_uploads_path: dir }, async (c) => {
      c.socket.write(`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`);
      c.socket.write(body.subarray(0, 200 * 1024));
      await until(() => spoolFiles().length === 1 && fs.statSync(path.join(dir, spoolFiles()[0]!)).size === 200 * 1024, 'the spool file to hold 200 KiB');
      await sleep(100);
      expect(b.conns.length).toBe(0);
      c.socket.write(body.subarray(200 * 1024));
      await answered(c);
      expect(statusCodes(c.got())).toEqual([200]);
      expect(b.conns.length).toBe(1);
      expect(b.conns[0]).toStartWith('POST /up HTTP/1.1\r\n');
      expect(bodyOf(b.conns[0]!).equals(body)).toBe(true);
      await spoolRemoved();
    });
  });

  test('a client slower than buffer_upload_threshold_rate is spooled', async () => {
    const size = 20_000;
    const body = payload(size);
    const b = await answeringBackend(size);
    await withProxy([b], {
      buffer_uploads: true,
      buffer_uploads_path: dir,
      buffer_backend_connect: 1000,
      buffer_upload_threshold_rate: 1_000_000,
    }, async (c) => {
      c.socket.write(`PUT /slow HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`);
      // 600 bytes, then 900 more half a second later: about 3000 B/s, far under the threshold.
      c.socket.write(body.subarray(0, 600));
      await sleep(500);
      expect(spoolFiles()).toEqual([]);
      c.socket.write(body.subarray(600, 1500));
      await until(() => spoolFiles().length === 1, 'a spool file');
      await sleep(100);
      expect(b.conns.length).toBe(0);
      c.socket.write(body.subarray(1500));
      await answered(c);
      expect(bodyOf(b.conns[0]!).equals(body)).toBe(true);
      await spoolRemoved();
    });
  });

  test('a body whose rest would take longer than buffer_upload_threshold_time is spooled', async () => {
    const size = 1_000_000;
    const body = payload(size);
    const b = await answeringBackend(size);
    await withProxy([b], {
      buffer_uploads: true,
      buffer_uploads_path: dir,
      buffer_backend_connect: 1000,
      buffer_upload_threshold_size: 0,
      buffer_upload_threshold_time: 1000,
    }, async (c) => {
      c.socket.write(`POST /t HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`);
      c.socket.write(body.subarray(0, 500));
      await sleep(300);
      // About 1500 B/s with about 1 MB to go: ~10 minutes > 1 s.
      c.socket.write(body.subarray(500, 1500));
      await until(() => spoolFiles().length === 1, 'a spool file');
      await sleep(100);
      expect(b.conns.length).toBe(0);
      c.socket.write(body.subarray(1500));
      await answered(c, 5000);
      expect(bodyOf(b.conns[0]!).equals(body)).toBe(true);
      await spoolRemoved();
    });
  });

  test('a fast client is not spooled by the rate threshold: its body streams once buffer_backend_connect is in', async () => {
    const size = 200_000;
    const body = payload(size);
    const b = await answeringBackend(size);
    await withProxy([b], {
      buffer_uploads: true,
      buffer_uploads_path: dir,
      buffer_backend_connect: 1000,
      buffer_upload_threshold_size: 0,
      buffer_upload_threshold_time: 0,
      buffer_upload_threshold_rate: 1000,
    }, async (c) => {
      c.socket.write(Buffer.concat([Buffer.from(`POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`), body.subarray(0, 100_000)]));
      await until(() => b.conns.length === 1, 'a backend connection before the body is complete');
      expect(spoolFiles()).toEqual([]);
      c.socket.write(body.subarray(100_000));
      await answered(c);
      expect(bodyOf(b.conns[0]!).equals(body)).toBe(true);
    });
  });

  test('a small fast body is held in memory up to buffer_backend_connect and never touches the disk', async () => {
    const size = 10_000;
    const body = payload(size);
    const b = await answeringBackend(size);
    await withProxy([b], { buffer_uploads: true, buffer_uploads_path: dir, buffer_backend_connect: 4096 }, async (c) => {
      c.socket.write(`POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`);
      c.socket.write(body.subarray(0, 2000));
      await sleep(150);
      // Under buffer_backend_connect: no backend yet.
      expect(b.conns.length).toBe(0);
      c.socket.write(body.subarray(2000, 6000));
      // Over it, fast: a backend gets the request while the client is still sending.
      await until(() => b.conns.length === 1 && bodyOf(b.conns[0]!).length === 6000, 'the backend to get the first 6000 bytes');
      expect(c.got()).toBe('');
      c.socket.write(body.subarray(6000));
      await answered(c);
      expect(bodyOf(b.conns[0]!).equals(body)).toBe(true);
      expect(spoolFiles()).toEqual([]);
    });
  });

  test('buffer_backend_connect = 0 streams a body to the backend from the first byte', async () => {
    const b = await answeringBackend(5000);
    await withProxy([b], { buffer_backend_connect: 0 }, async (c) => {
      c.socket.write(`POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\nabc`);
      await until(() => b.conns.length === 1 && b.conns[0]!.endsWith('\r\n\r\nabc'), 'the backend to get the first bytes');
      c.socket.write('x'.repeat(4997));
      await answered(c);
    });
  });

  test('a client that gives up during a spooled upload leaves no spool file and no backend connection', async () => {
    const b = await answeringBackend(300 * 1024);
    await withProxy([b], { buffer_uploads: true, buffer_uploads_path: dir }, async (c) => {
      c.socket.write(`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${300 * 1024}\r\n\r\n`);
      c.socket.write(payload(50_000));
      await until(() => spoolFiles().length === 1, 'a spool file');
      c.socket.destroy();
      await spoolRemoved();
      await sleep(100);
      expect(b.conns.length).toBe(0);
    });
  });

  test('at start, spool files left by a tsbal that is gone are removed; a live process\'s files and other files stay', async () => {
    // A pid that existed and has exited: a child that is reaped before the proxy starts.
    const dead = Bun.spawnSync(['/bin/true']).pid;
    fs.writeFileSync(path.join(dir, `tsbal-upload-${dead}-7`), 'left by a crash');
    fs.writeFileSync(path.join(dir, `tsbal-upload-${process.pid}-3`), 'a live writer');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not ours');
    const b = await answeringBackend(0);
    const { proxy } = await startTestProxy([b.port], { buffer_uploads: true, buffer_uploads_path: dir });
    try {
      expect(fs.readdirSync(dir).sort()).toEqual(['notes.txt', `tsbal-upload-${process.pid}-3`]);
    } finally {
      await proxy.close({ graceful: false });
      await b.close();
    }
  });

  test('a chunked request body is spooled de-chunked and reaches the backend with a Content-Length, as in Perlbal', async () => {
    const b = await answeringBackend(11);
    await withProxy([b], { buffer_uploads: true, buffer_uploads_path: dir }, async (c) => {
      const chunks = '5\r\nhello\r\n6\r\n world\r\n';
      c.socket.write(`POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`);
      await until(() => spoolFiles().length === 1, 'a spool file');
      await sleep(100);
      expect(b.conns.length).toBe(0);
      c.socket.write('0\r\nX-Sum: 1\r\n\r\n');
      await answered(c);
      expect(b.conns[0]).not.toMatch(/transfer-encoding/i);
      expect(b.conns[0]).toContain('\r\nContent-Length: 11\r\n');
      // The payload alone; the trailer section is dropped.
      expect(b.conns[0]!.endsWith('\r\n\r\nhello world')).toBe(true);
      await spoolRemoved();
    });
  });

  test('a spooled PUT whose backend closed before answering is sent again, whole, to another backend', async () => {
    const size = 300 * 1024;
    const body = payload(size);
    const bad = await rawBackend('bad', (socket, _i, received) => {
      const h = received.indexOf('\r\n\r\n');
      if (h !== -1 && received.length - h - 4 >= size) socket.destroy();
    });
    const good = await answeringBackend(size);
    await withProxy([bad, good], { buffer_uploads: true, buffer_uploads_path: dir }, async (c) => {
      c.socket.write(`PUT /again HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`);
      c.socket.write(body);
      await until(() => c.got().length > 0 && (c.got().endsWith('ok') || c.closed()), 'the response', 5000);
      expect(statusCodes(c.got())).toEqual([200]);
      // The first attempt reached the failing backend with the whole body.
      expect(bad.conns.length).toBe(1);
      expect(bodyOf(bad.conns[0]!).equals(body)).toBe(true);
      expect(good.conns.length).toBe(1);
      expect(bodyOf(good.conns[0]!).equals(body)).toBe(true);
      await spoolRemoved();
    }, { balance_method: 'roundrobin' } as never);
  });

  test('Expect: 100-continue gets 100 Continue from tsbal while it holds the body, and only once', async () => {
    // This backend answers the Expect itself too, as Apache does.
    const b = await rawBackend('b', (socket, _i, received, chunk) => {
      if (chunk.toString('latin1').includes('Expect: 100-continue')) socket.write('HTTP/1.1 100 Continue\r\n\r\n');
      if (received.endsWith('\r\n\r\n0123456789')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    await withProxy([b], {}, async (c) => {
      c.socket.write(`POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n`);
      await until(() => c.got().startsWith('HTTP/1.1 100 Continue\r\n\r\n'), '100 Continue');
      expect(b.conns.length).toBe(0);
      c.socket.write('0123456789');
      await answered(c);
      // One 100 Continue: the backend's own (if any) is not relayed as a second one.
      expect(c.got().split('100 Continue').length).toBe(2);
      expect(bodyOf(b.conns[0]!).toString()).toBe('0123456789');
    });
  });
});
