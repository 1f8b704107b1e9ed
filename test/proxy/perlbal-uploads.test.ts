// Buffered uploads, differential: the same perlbal.conf under Perlbal 1.80 and tsbal. A body over
// buffer_upload_threshold_size is spooled to buffer_uploads_path while the client sends, no backend connection
// exists until it is complete, the backend then gets the exact bytes, and the spool file is gone afterwards. A body
// under buffer_backend_connect is held in memory the same way, without a file.
import { afterEach, beforeEach, describe, expect } from 'bun:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type Socket } from 'node:net';
import { KINDS, startRig, testFor } from './diffkit.ts';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbal-pspool-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function payload(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + 5) & 0xff;
  return b;
}

function open(port: number): Promise<{ socket: Socket; got: () => string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, got: () => data }));
    socket.once('error', reject);
  });
}

describe.each(KINDS)('%s: buffered uploads', (kind) => {
  testFor(kind)('a large upload is spooled, sent to the backend only when complete, byte for byte, and the file removed', async () => {
    const rig = await startRig(kind, { set: { buffer_uploads: 'on', buffer_uploads_path: dir } });
    try {
      const size = 300 * 1024;
      const body = payload(size);
      const c = await open(rig.proxy.port);
      c.socket.write(`POST /up HTTP/1.0\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`);
      c.socket.write(body.subarray(0, 200 * 1024));
      await until(() => fs.readdirSync(dir).length === 1, 'a spool file');
      await sleep(300);
      expect(rig.backends[0]!.connectionCount()).toBe(0);
      c.socket.write(body.subarray(200 * 1024));
      const [req] = await rig.backends[0]!.waitForRequests(1, 5000);
      const raw = req!.raw;
      const got = raw.subarray(raw.indexOf('\r\n\r\n') + 4);
      expect(got.equals(body)).toBe(true);
      expect(req!.head.headers.find(([k]) => k.toLowerCase() === 'content-length')?.[1]).toBe(String(size));
      await until(() => c.got().includes('hello from b1'), 'the response');
      expect(c.got()).toStartWith('HTTP/1.');
      expect(c.got().slice(9, 12)).toBe('200');
      await until(() => fs.readdirSync(dir).length === 0, 'the spool file to be removed');
      c.socket.destroy();
    } finally {
      await rig.stop();
    }
  }, 30_000);

  testFor(kind)('a chunked upload reaches the backend de-chunked with a Content-Length', async () => {
    const rig = await startRig(kind, { set: { buffer_uploads: 'on', buffer_uploads_path: dir } });
    try {
      const c = await open(rig.proxy.port);
      c.socket.write('POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      await sleep(300);
      expect(rig.backends[0]!.connectionCount()).toBe(0);
      c.socket.write('6\r\n world\r\n0\r\n\r\n');
      const [req] = await rig.backends[0]!.waitForRequests(1, 5000);
      const raw = req!.raw.toString('latin1');
      expect(raw).not.toMatch(/transfer-encoding/i);
      expect(req!.head.headers.find(([k]) => k.toLowerCase() === 'content-length')?.[1]).toBe('11');
      expect(raw.endsWith('\r\n\r\nhello world')).toBe(true);
      await until(() => c.got().includes('hello from b1'), 'the response');
      await until(() => fs.readdirSync(dir).length === 0, 'the spool file to be removed');
      c.socket.destroy();
    } finally {
      await rig.stop();
    }
  }, 30_000);

  testFor(kind)('a body under buffer_backend_connect is held in memory: no backend connection until it is complete', async () => {
    const rig = await startRig(kind, { set: { buffer_uploads: 'on', buffer_uploads_path: dir } });
    try {
      const size = 50_000;
      const body = payload(size);
      const c = await open(rig.proxy.port);
      c.socket.write(`POST /small HTTP/1.0\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`);
      c.socket.write(body.subarray(0, 10_000));
      await sleep(400);
      expect(rig.backends[0]!.connectionCount()).toBe(0);
      expect(fs.readdirSync(dir)).toEqual([]);
      c.socket.write(body.subarray(10_000));
      const [req] = await rig.backends[0]!.waitForRequests(1, 5000);
      expect(req!.raw.subarray(req!.raw.indexOf('\r\n\r\n') + 4).equals(body)).toBe(true);
      await until(() => c.got().includes('hello from b1'), 'the response');
      c.socket.destroy();
    } finally {
      await rig.stop();
    }
  }, 30_000);
});
