// web_server writes over real sockets, on what Perlbal does not promise: atomic replacement, no temp file left by
// an aborted upload, nothing written or deleted outside the docroot through symlinks, 100-continue for sized PUTs,
// and a large body streamed with back-pressure.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeConfigFs, parsePerlbalConfig } from '../../../src/config/perlbal.ts';
import { startProxy, type ProxyHandle } from '../../../src/proxy/index.ts';
import { connectRaw, describeOutcome, exchange, type RawResponse } from '../../harness/rawclient.ts';
import { sleep } from '../../harness/ports.ts';
import { quietLog } from '../helpers.ts';

const SECRET = 'TOP-SECRET-outside-the-docroot';
let base: string;
let root: string;
let proxy: ProxyHandle;
let port: number;

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'tsbal-put-'));
  root = join(base, 'root');
  mkdirSync(join(root, 'up'), { recursive: true });
  mkdirSync(join(base, 'outside'));
  writeFileSync(join(base, 'outside', 'secret.txt'), SECRET);
  symlinkSync(join(base, 'outside'), join(root, 'out-dir'));
  symlinkSync(join(base, 'outside', 'secret.txt'), join(root, 'out-file.txt'));
  const conf = `CREATE SERVICE w\n SET role = web_server\n SET listen = 127.0.0.1:0\n SET docroot = ${root}\n SET persist_client = on\n SET enable_put = on\n SET enable_delete = on\nENABLE w\n`;
  proxy = await startProxy(parsePerlbalConfig(conf, { file: join(base, 'p.conf'), fs: nodeConfigFs }), { log: quietLog });
  port = proxy.listeners()[0]!.port;
});

afterAll(async () => {
  await proxy?.close({ graceful: false });
  rmSync(base, { recursive: true, force: true });
});

async function send(request: string | Buffer): Promise<RawResponse> {
  const { outcome } = await exchange(port, request, { closeWaitMs: 0 });
  if (outcome.kind !== 'response') throw new Error(describeOutcome(outcome));
  return outcome.response;
}

const put = (path: string, body: string): string => `PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
const outside = (): string[] => readdirSync(join(base, 'outside')).sort();
const temps = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.tmp'));

describe('web_server PUT and DELETE: safety', () => {
  test('never writes through a symlinked directory that leads outside the docroot, nor makes directories there', async () => {
    expect((await send(put('/out-dir/x.txt', 'pwned'))).status).toBe(403);
    expect((await send(put('/out-dir/new/x.txt', 'pwned'))).status).toBe(403);
    expect(outside()).toEqual(['secret.txt']);
  });

  test('a PUT over a symlink replaces the link, never the file it points to', async () => {
    expect((await send(put('/out-file.txt', 'mine'))).status).toBe(200);
    expect(lstatSync(join(root, 'out-file.txt')).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(root, 'out-file.txt'), 'latin1')).toBe('mine');
    expect(readFileSync(join(base, 'outside', 'secret.txt'), 'latin1')).toBe(SECRET);
  });

  test('DELETE never removes a file through a symlinked directory', async () => {
    expect((await send('DELETE /out-dir/secret.txt HTTP/1.0\r\n\r\n')).status).toBe(403);
    expect(outside()).toEqual(['secret.txt']);
  });

  test('readers see the old file until the new one is complete, then the new one (atomic replacement)', async () => {
    writeFileSync(join(root, 'up', 'page.txt'), 'old version');
    const body = 'new version, longer';
    const conn = await connectRaw(port);
    try {
      conn.send(`PUT /up/page.txt HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
      await sleep(100);
      expect(readFileSync(join(root, 'up', 'page.txt'), 'latin1')).toBe('old version');
      expect((await send('GET /up/page.txt HTTP/1.0\r\n\r\n')).body.toString()).toBe('old version');
      conn.send(body.slice(5));
      const r = await conn.read();
      expect(r.kind === 'response' && r.response.status).toBe(200);
    } finally {
      conn.close();
    }
    expect((await send('GET /up/page.txt HTTP/1.0\r\n\r\n')).body.toString()).toBe(body);
    expect(temps(join(root, 'up'))).toEqual([]);
  });

  test('a client that goes away mid-upload leaves no temp file and no target', async () => {
    const conn = await connectRaw(port);
    conn.send('PUT /up/aborted.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(5000));
    await sleep(100);
    expect(temps(join(root, 'up')).length, 'the upload is under way in a temp file').toBe(1);
    conn.close();
    const deadline = Date.now() + 2000;
    while (temps(join(root, 'up')).length > 0 && Date.now() < deadline) await sleep(20);
    expect(temps(join(root, 'up'))).toEqual([]);
    expect(existsSync(join(root, 'up', 'aborted.bin'))).toBe(false);
  });

  test('answers Expect: 100-continue on a sized HTTP/1.1 PUT before the body is sent', async () => {
    const conn = await connectRaw(port);
    try {
      conn.send('PUT /up/continued.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n');
      const interim = await conn.read({ timeoutMs: 1000 });
      expect(interim.kind === 'response' && interim.response.statusLine).toBe('HTTP/1.1 100 Continue');
      conn.send('ok');
      const final = await conn.read();
      expect(final.kind === 'response' && final.response.status).toBe(200);
    } finally {
      conn.close();
    }
    expect(readFileSync(join(root, 'up', 'continued.txt'), 'latin1')).toBe('ok');
  });

  test('a refused PUT with Expect: 100-continue gets its 400 and no 100 Continue', async () => {
    const { outcome, closedAfter } = await exchange(port, 'PUT /bad%20name HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n', { closeWaitMs: 500 });
    expect(outcome.kind === 'response' && outcome.response.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(closedAfter).toBe(true);
  });

  test('streams an 8 MiB chunked body with Content-MD5 to disk intact (201)', async () => {
    const body = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const md5 = createHash('md5').update(body).digest('base64');
    const chunks: Buffer[] = [];
    for (let off = 0; off < body.length; off += 100_000) {
      const part = body.subarray(off, Math.min(off + 100_000, body.length));
      chunks.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
    }
    const head = `PUT /up/big.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-MD5: ${md5}\r\nConnection: close\r\n\r\n`;
    const { outcome } = await exchange(port, Buffer.concat([Buffer.from(head), ...chunks, Buffer.from('0\r\n\r\n')]), { timeoutMs: 20_000, closeWaitMs: 0 });
    expect(outcome.kind === 'response' ? outcome.response.status : describeOutcome(outcome)).toBe(201);
    expect(readFileSync(join(root, 'up', 'big.bin')).equals(body)).toBe(true);
  }, 30_000);
});
