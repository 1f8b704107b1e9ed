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

/** HPACK integer with an n-bit prefix whose other bits are `first` (RFC 7541 5.1). */
function hpackInt(first: number, prefixBits: number, value: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const bytes = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** The body of stream `id` once it ended, or why not. */
function bodyOf(frames: { type: number; stream: number; payload: Buffer }[], id: number): string {
  return Buffer.concat(frames.filter((f) => f.type === DATA && f.stream === id).map((f) => f.payload)).toString();
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

  test('the preface and SETTINGS arriving one byte per TLS record are taken; the request is served', async () => {
    const { connect } = await import('node:tls');
    const socket = connect({ host: '127.0.0.1', port, servername: 'h2.test', ALPNProtocols: ['h2'], rejectUnauthorized: false });
    socket.on('error', () => {});
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      socket.setNoDelay(true);
      let got = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
      const bytes = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(SETTINGS, 0, 0), frame(HEADERS, END_HEADERS | END_STREAM, 1, block(request('GET', '/pieces')))]);
      for (const b of bytes) {
        socket.write(Buffer.from([b]));
        await Bun.sleep(1);
      }
      const deadline = Date.now() + 10_000;
      while (!got.includes(Buffer.from('ok /pieces')) && Date.now() < deadline) await Bun.sleep(20);
      expect(got.includes(Buffer.from('ok /pieces\n'))).toBe(true);
    } finally {
      socket.destroy();
    }
  }, 30_000);

  test('a client GOAWAY sent while its request is in flight: the response still comes, then the connection ends', async () => {
    const c = await adversary(port);
    try {
      c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block(request('GET', '/trickle'))));
      c.send(frame(7, 0, 0, Buffer.alloc(8))); // GOAWAY last-stream 0, NO_ERROR
      // A stream opened after the client's GOAWAY is not served.
      c.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, block(request('GET', '/late'))));
      await c.until((fs) => fs.some((f) => f.type === DATA && f.stream === 1 && (f.flags & END_STREAM) !== 0), 10_000);
      expect(bodyOf(c.frames, 1)).toBe('hello');
      const closed = await new Promise<boolean>((resolve) => {
        if (c.socket.destroyed) return resolve(true);
        const t = setTimeout(() => resolve(false), 5_000);
        c.socket.once('close', () => {
          clearTimeout(t);
          resolve(true);
        });
        c.socket.resume();
      });
      expect(closed).toBe(true);
      expect(c.frames.some((f) => f.stream === 3 && (f.type === HEADERS || f.type === DATA))).toBe(false);
    } finally {
      c.close();
    }
  }, 30_000);

  test('a TLS connection closed in the middle of a frame (and of a header block) leaves tsbal serving', async () => {
    for (const cut of ['frame', 'block'] as const) {
      const c = await adversary(port);
      if (cut === 'frame') c.send(frame(HEADERS, END_HEADERS, 1, block(request('POST', '/cut', ['content-length', '100000']))).subarray(0, 20));
      else c.send(frame(HEADERS, END_STREAM, 1, block(request('GET', '/cut'))));
      await Bun.sleep(100);
      c.socket.destroySoon?.();
      c.close();
    }
    await Bun.sleep(200);
    expect(proc!.exit()).toBeNull();
    expect(await get(port, '/after-cut')).toBe('ok /after-cut\n');
  }, 30_000);

  test('malformed requests (uppercase name, connection, te: gzip, pseudo-header after a field, two :path, a CR in a value) are RST_STREAM PROTOCOL_ERROR and never reach the backend', async () => {
    const bad: string[][] = [
      request('GET', '/m1', ['X-Upper', 'a']),
      request('GET', '/m2', ['connection', 'keep-alive']),
      request('GET', '/m3', ['te', 'gzip']),
      ['x-first', 'a', ...request('GET', '/m4')],
      request('GET', '/m5', [':path', '/m5b']),
      request('GET', '/m6', ['x-split', 'a\r\nx-injected: 1']),
      request('GET', '/m7', ['transfer-encoding', 'chunked']),
    ];
    const c = await adversary(port);
    try {
      bad.forEach((fields, i) => c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, block(fields))));
      c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * bad.length, block(request('GET', '/fine'))));
      const last = 1 + 2 * bad.length;
      await c.until((fs) => fs.some((f) => f.type === DATA && f.stream === last && (f.flags & END_STREAM) !== 0), 10_000);
      expect(bad.map((_, i) => rstCode(c.frames, 1 + 2 * i))).toEqual(bad.map(() => PROTOCOL_ERROR));
      expect(bodyOf(c.frames, last)).toBe('ok /fine\n');
      expect(goawayCode(c.frames)).toBeNull();
    } finally {
      c.close();
    }
  }, 30_000);

  test('an HPACK bomb (one 4 KB table entry referenced 60 000 times) is refused (431) without building the list; tsbal serves on', async () => {
    const c = await adversary(port);
    try {
      const value = Buffer.alloc(4000, 0x61);
      const entry = Buffer.concat([Buffer.from([0x40, 6]), Buffer.from('x-bomb'), hpackInt(0, 7, value.length), value]); // literal, incremental indexing
      const refs = Buffer.alloc(60_000, 0xbe); // indexed field 62: the entry just added
      const whole = Buffer.concat([block(request('GET', '/bomb')), entry, refs]);
      const parts: Buffer[] = [];
      for (let at = 0; at < whole.length; at += 16_000) {
        const last = at + 16_000 >= whole.length;
        parts.push(frame(at === 0 ? HEADERS : 9, (at === 0 ? END_STREAM : 0) | (last ? END_HEADERS : 0), 1, whole.subarray(at, at + 16_000)));
      }
      c.send(Buffer.concat(parts));
      // 240 MB of header list if it were built: answered 431, or the block refused as too big (GOAWAY ENHANCE_YOUR_CALM).
      await c.until((fs) => goawayCode(fs) !== null || fs.some((f) => f.type === DATA && f.stream === 1 && (f.flags & END_STREAM) !== 0), 10_000);
      const g = goawayCode(c.frames);
      expect(g === ENHANCE_YOUR_CALM || c.frames.some((f) => f.type === HEADERS && f.stream === 1)).toBe(true);
    } finally {
      c.close();
    }
    expect(await get(port, '/after-bomb')).toBe('ok /after-bomb\n');
  }, 30_000);

  test('a client that never acknowledges our SETTINGS is cut off with GOAWAY SETTINGS_TIMEOUT after 10 s (its streams were never held to our limit)', async () => {
    const c = await adversary(port, [], { ackSettings: false });
    const t0 = performance.now();
    try {
      await c.until((fs) => goawayCode(fs) !== null, 20_000);
      expect(goawayCode(c.frames)).toBe(4); // SETTINGS_TIMEOUT
      expect(performance.now() - t0).toBeGreaterThan(8_000);
    } finally {
      c.close();
    }
  }, 30_000);
});
