// tsbal's own HTTP/2 connection on real sockets, under Node and under Bun: flow control both ways with real
// clients (nghttp with a 64 KiB window, curl uploading), h2load pushing 100 streams per connection against a limit
// of 10, and a graceful stop (SIGTERM) finishing a stream in flight before the connection goes.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePki, type Leaf, type TestPki } from '../../harness/certs.ts';
import { execProc, type ProcHandle } from '../../harness/proc.ts';
import { freePort } from '../../harness/ports.ts';
import { RUNTIMES, startTsbal, stopTsbal } from './daemon.ts';

let pki: TestPki;
let leaf: Leaf;
let backend: { port: number; server: Server };
/** /slow/ requests the backend received so far. */
let slowSeen = 0;

const PIECE = Buffer.alloc(65_536, 'abcdefghijklmnopqrstuvwxyz0123456789\n');

/** The body /bytes/N sends: a 64 KiB pattern repeated. */
function patternDigest(size: number): string {
  const h = createHash('sha256');
  for (let sent = 0; sent < size; sent += PIECE.length) h.update(PIECE.subarray(0, Math.min(PIECE.length, size - sent)));
  return h.digest('hex');
}

beforeAll(async () => {
  pki = makePki();
  leaf = pki.issue('site', ['h2.test']);
  // /bytes/N: N bytes of the pattern, written honouring backpressure; /slow/...: answered after 1.5 s; anything
  // else: the size and SHA-256 of the request body it read.
  const server = createServer((req, res) => {
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      h.update(c);
    });
    req.on('end', () => {
      const url = req.url ?? '';
      if (url.startsWith('/slow/')) slowSeen++;
      if (url.startsWith('/slow/')) return void setTimeout(() => res.end(`slow ${url}\n`), 1_500);
      if (!url.startsWith('/bytes/')) return void res.end(`${n} ${h.digest('hex')}\n`);
      const size = Number(url.slice('/bytes/'.length));
      res.writeHead(200, { 'content-length': size });
      let sent = 0;
      const pump = (): void => {
        while (sent < size) {
          const k = Math.min(PIECE.length, size - sent);
          sent += k;
          if (!res.write(k === PIECE.length ? PIECE : PIECE.subarray(0, k))) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend = { port: (server.address() as AddressInfo).port, server };
});
afterAll(() => {
  backend?.server.closeAllConnections();
  backend?.server.close();
  pki?.cleanup();
});

function config(port: number, extra: string): string {
  return `CREATE POOL p
  POOL p ADD 127.0.0.1:${backend.port}
CREATE SERVICE site
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
  SET persist_backend = on
  SET enable_ssl = on
  SET ssl_cert_file = ${leaf.crt}
  SET ssl_key_file = ${leaf.key}
${extra}ENABLE site
`;
}

describe.each(RUNTIMES)('HTTP/2 flow control and limits, tsbal under %p', (rt) => {
  let port: number;
  let proc: ProcHandle | undefined;

  beforeAll(async () => {
    port = await freePort();
    const conf = join(pki.dir, `flow-${rt.name}.conf`);
    writeFileSync(conf, config(port, '  SET http2_max_concurrent_streams = 10\n'));
    proc = await startTsbal(rt, conf, [port], 'flow');
  }, 40_000);
  afterAll(() => stopTsbal(proc));

  test('a 4 MiB download to nghttp with 64 KiB windows (-w 16 -W 16) arrives byte for byte', async () => {
    const size = 4 << 20;
    const file = join(pki.dir, `download-${rt.name}.bin`);
    const r = await execProc(['sh', '-c', `nghttp --timeout=30 -w 16 -W 16 -H ':authority: h2.test' https://127.0.0.1:${port}/bytes/${size} > ${file}`], { timeoutMs: 60_000 });
    const body = readFileSync(file);
    expect({ code: r.code, length: body.length }).toEqual({ code: 0, length: size });
    expect(createHash('sha256').update(body).digest('hex')).toBe(patternDigest(size));
  }, 70_000);

  test('a 3 MiB upload (past the 1 MiB stream window we offer) reaches the backend whole', async () => {
    const file = join(pki.dir, `upload-${rt.name}.bin`);
    const data = Buffer.alloc(3 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    writeFileSync(file, data);
    const r = await execProc(['curl', '-sS', '--http2', '--max-time', '30', '--cacert', pki.caCrt, '--resolve', `h2.test:${port}:127.0.0.1`,
      '--data-binary', `@${file}`, `https://h2.test:${port}/upload`], { timeoutMs: 40_000 });
    expect(r.stdout).toBe(`${data.length} ${createHash('sha256').update(data).digest('hex')}\n`);
  }, 50_000);

  test('h2load with 100 streams per connection against a limit of 10: every request succeeds', async () => {
    const r = await execProc(['h2load', '-n', '2000', '-c', '2', '-m', '100', '-t', '1', `https://127.0.0.1:${port}/h2load`], { timeoutMs: 60_000 });
    // h2load keeps to the server's SETTINGS_MAX_CONCURRENT_STREAMS: nothing is refused, nothing fails.
    expect(r.stdout).toMatch(/requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout/);
    expect(r.stdout).toMatch(/status codes: 2000 2xx/);
  }, 70_000);
});

describe.each(RUNTIMES)('graceful stop with HTTP/2, tsbal under %p', (rt) => {
  test('SIGTERM while a stream waits for its backend: the stream is answered, then GOAWAY (NO_ERROR) and the connection closes', async () => {
    const port = await freePort();
    const conf = join(pki.dir, `drain-${rt.name}.conf`);
    writeFileSync(conf, config(port, ''));
    const proc = await startTsbal(rt, conf, [port], 'drain');
    try {
      const script = `const http2 = require('node:http2');
const session = http2.connect('https://127.0.0.1:${port}', { rejectUnauthorized: false, servername: 'h2.test' });
session.on('error', () => {});
const got = { status: 0, body: '', goaway: null, events: [] };
session.on('goaway', (code) => { got.goaway = code; got.events.push('goaway'); });
const req = session.request({ ':path': '/slow/drain', ':authority': 'h2.test' });
req.on('error', (e) => got.events.push('error ' + e.code));
req.on('response', (h) => { got.status = h[':status']; });
req.setEncoding('utf8');
req.on('data', (d) => { got.body += d; });
req.on('end', () => got.events.push('end'));
session.on('close', () => { got.events.push('close'); console.log(JSON.stringify(got)); process.exit(0); });
setTimeout(() => { console.log('ready'); }, 300);
setTimeout(() => { console.log(JSON.stringify(got)); process.exit(0); }, 10000);`;
      const client = execProc(['node', '-e', script], { timeoutMs: 20_000 });
      // Once the request is at the backend (which answers after 1.5 s), the stop begins.
      const before = slowSeen;
      const until = Date.now() + 10_000;
      while (slowSeen === before && Date.now() < until) await Bun.sleep(20);
      proc.kill('SIGTERM');
      const r = await client;
      const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as { status: number; body: string; goaway: number | null; events: string[] };
      expect({ status: got.status, body: got.body, events: got.events, log: proc.stdout() + proc.stderr() }).toEqual({ status: 200, body: 'slow /slow/drain\n', events: got.events, log: proc.stdout() + proc.stderr() });
      expect(got.events.filter((e) => e !== 'goaway')).toEqual(['end', 'close']);
      expect(got.goaway).toBe(0);
      expect((await proc.exited).code).toBe(0);
    } finally {
      await stopTsbal(proc);
    }
  }, 40_000);
});
