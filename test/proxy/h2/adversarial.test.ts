// `tsbal run` as shipped (Node and Bun) against hostile HTTP/2 clients over real TLS sockets: each test pins what
// RFC 9113 asks (or the bound that keeps the server finite) and that the service still serves a well-behaved
// client afterwards. The pure side of the same findings: adversarial-connection.test.ts.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePki, type Leaf, type TestPki } from '../../harness/certs.ts';
import type { ProcHandle } from '../../harness/proc.ts';
import { freePort } from '../../harness/ports.ts';
import { RUNTIMES, startTsbal, stopTsbal } from './daemon.ts';
import { adversary, block, frame, goawayCode, request, rstCode, settingsPayload } from './adversary.ts';

const HEADERS = 1;
const DATA = 0;
const SETTINGS = 4;
const PING = 6;
const END_STREAM = 1;
const END_HEADERS = 4;
const INITIAL_WINDOW_SIZE = 4;
const PROTOCOL_ERROR = 1;
const ENHANCE_YOUR_CALM = 0xb;

let pki: TestPki;
let leaf: Leaf;
let backend: Server;
let backendPort: number;

beforeAll(async () => {
  pki = makePki();
  leaf = pki.issue('site', ['h2.test']);
  backend = createServer((req, res) => {
    req.resume();
    if (req.url === '/trickle') {
      // A chunked body whose end comes later than its first bytes.
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('hello');
      setTimeout(() => res.end(), 700);
      return;
    }
    req.on('end', () => res.end(`ok ${req.url}\n`));
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  backendPort = (backend.address() as AddressInfo).port;
});
afterAll(async () => {
  backend?.closeAllConnections();
  await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
  pki?.cleanup();
});

/** A well-behaved GET on a new connection: the body. */
async function get(port: number, path: string): Promise<string> {
  const c = await adversary(port);
  try {
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block(request('GET', path))));
    await c.until((fs) => fs.some((f) => f.type === DATA && f.stream === 1 && (f.flags & END_STREAM) !== 0), 10_000);
    return Buffer.concat(c.frames.filter((f) => f.type === DATA && f.stream === 1).map((f) => f.payload)).toString();
  } finally {
    c.close();
  }
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m === null ? 0 : Number(m[1]);
}

describe.each(RUNTIMES)('hostile HTTP/2 clients, tsbal under %p', (rt) => {
  let port: number;
  let proc: ProcHandle | undefined;

  beforeAll(async () => {
    port = await freePort();
    const conf = join(pki.dir, `adversarial-${rt.name}.conf`);
    writeFileSync(conf, `SERVER workers = 1
CREATE POOL p
  POOL p ADD 127.0.0.1:${backendPort}
CREATE SERVICE site
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
  SET enable_ssl = on
  SET ssl_cert_file = ${leaf.crt}
  SET ssl_key_file = ${leaf.key}
  SET idle_timeout = 30
ENABLE site
`);
    proc = await startTsbal(rt, conf, [port], 'adversarial');
  }, 40_000);
  afterAll(async () => {
    await stopTsbal(proc);
  });

  test('a client that drives a stream window negative with SETTINGS before the response ends gets its END_STREAM; tsbal lives on', async () => {
    const c = await adversary(port, [INITIAL_WINDOW_SIZE, 100]);
    try {
      c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block(request('GET', '/trickle'))));
      await c.until((fs) => fs.some((f) => f.type === DATA && f.stream === 1 && f.payload.length > 0), 10_000);
      // 5 of 100 bytes went out; the window becomes 95 - 100 = -5 while the backend has not ended the body yet.
      c.send(frame(SETTINGS, 0, 0, settingsPayload([INITIAL_WINDOW_SIZE, 0])));
      await c.until((fs) => fs.some((f) => f.type === DATA && f.stream === 1 && (f.flags & END_STREAM) !== 0), 10_000);
      const body = Buffer.concat(c.frames.filter((f) => f.type === DATA && f.stream === 1).map((f) => f.payload)).toString();
      expect(body).toBe('hello');
    } finally {
      c.close();
    }
    expect(proc!.exit()).toBeNull();
    expect(await get(port, '/after')).toBe('ok /after\n');
  }, 30_000);

  test('a client that sends PINGs and never reads the ACKs is no longer read once its unread output passes the mark (bounded memory); reading again, it gets every ACK', async () => {
    const c = await adversary(port);
    const rssBefore = rssKb(proc!.pid);
    try {
      c.socket.pause(); // never reads
      const ping = frame(PING, 0, 0, Buffer.alloc(8, 0x70));
      const chunk = Buffer.concat(Array.from({ length: 65_536 }, () => ping)); // 1.1 MB: 65 536 PINGs
      const rounds = 40; // 45 MB of PINGs, 45 MB of ACKs owed
      for (let i = 0; i < rounds; i++) c.send(chunk);
      // Let the server read what it will.
      let last = -1;
      for (let i = 0; i < 40 && c.socket.writableLength !== last; i++) {
        last = c.socket.writableLength;
        await Bun.sleep(500);
      }
      const unsent = c.socket.writableLength;
      const rssGrowthMb = (rssKb(proc!.pid) - rssBefore) / 1024;
      console.log(`ping flood (${rt.name}): ${(unsent / 2 ** 20).toFixed(1)} MB left unsent by the client, tsbal RSS +${rssGrowthMb.toFixed(1)} MB`);
      // Loopback socket buffers take ~20 MB both ways; past those tsbal must stop reading, not queue ACKs. Before
      // the fix, tsbal under Bun read all 45 MB (0 MB left unsent, RSS +113 MB); under Node, RSS +50 MB.
      expect(unsent).toBeGreaterThan(10 * 2 ** 20);
      expect(rssGrowthMb).toBeLessThan(40);
      // Meanwhile the service serves others.
      expect(await get(port, '/meanwhile')).toBe('ok /meanwhile\n');
      // The client reads again: every PING is answered.
      c.socket.resume();
      const want = rounds * 65_536;
      await c.until((fs) => fs.filter((f) => f.type === PING).length >= want, 60_000);
      expect(c.frames.filter((f) => f.type === PING).length).toBe(want);
    } finally {
      c.close();
    }
  }, 120_000);

  test('MadeYouReset: requests the client makes the server reset (content-length that DATA breaks) count as early resets: GOAWAY ENHANCE_YOUR_CALM', async () => {
    const c = await adversary(port);
    try {
      const parts: Buffer[] = [];
      for (let i = 0; i < 150; i++) {
        const id = 1 + 2 * i;
        parts.push(frame(HEADERS, END_HEADERS, id, block(request('POST', `/mur/${i}`, ['content-length', '1']))));
        parts.push(frame(DATA, END_STREAM, id, Buffer.from('xx'))); // 2 bytes against content-length 1: malformed
      }
      c.send(Buffer.concat(parts));
      await c.until((fs) => goawayCode(fs) !== null || rstCode(fs, 299) !== null, 15_000);
      expect(rstCode(c.frames, 1)).toBe(PROTOCOL_ERROR);
      expect(goawayCode(c.frames)).toBe(ENHANCE_YOUR_CALM);
    } finally {
      c.close();
    }
    expect(await get(port, '/after-reset')).toBe('ok /after-reset\n');
  }, 30_000);
});
