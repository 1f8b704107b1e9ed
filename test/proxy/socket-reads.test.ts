// The proxy's reads on Node, where client and backend sockets read into the engine's shared buffer through tsbal's
// own handle callback (src/runtime/socket-reads.ts), and with TSBAL_SOCKET_READS=stream, where client sockets take
// 'data' events and backend sockets Node's onread callback (as on Bun, or on a Node without those internals). Either
// way: kept-alive requests answered with many different lengths (the backend views of the shared buffer are reused
// by length), pipelining, a large upload, a backend's end of stream (a close-delimited body, a cut one) and a
// client's. tsbal runs as dist/tsbal.cjs under Node 22 (TSBAL_TEST_BIN=dist/tsbal-bun runs the same tests on Bun).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect as tcpConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { makePki, type Leaf, type TestPki } from '../harness/certs.ts';
import { NODE22 } from '../harness/dist.ts';
import { reverseProxyConfFor, startWithConf, type PerlbalConfProxy } from '../harness/perlbal.ts';
import { launchSingleTsbal } from '../harness/tsbal.ts';

const MODES = ['direct', 'stream', 'direct over TLS'] as const;
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

function connect(mode: Mode, port: number): Socket {
  const raw = tcpConnect(port, '127.0.0.1');
  if (!mode.endsWith('over TLS')) return raw;
  return tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
}

function startProxy(mode: Mode, backendPort: number): Promise<PerlbalConfProxy> {
  const launch = launchSingleTsbal({ kind: 'dist', node: NODE22 });
  const tls: Record<string, string> = mode.endsWith('over TLS') ? { enable_ssl: 'on', ssl_key_file: leaf!.key, ssl_cert_file: leaf!.crt } : {};
  const set = { persist_client: 'on', persist_backend: 'on', ...tls };
  return startWithConf('tsbal', 1, reverseProxyConfFor({ backends: [backendPort], set }), (conf) => {
    const l = launch(conf);
    return { ...l, env: { ...l.env, TSBAL_SOCKET_READS: mode === 'stream' ? 'stream' : '' } };
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

/** A body of `n` bytes that names its request and length, so a stale or misplaced view shows. */
function bodyFor(i: number, n: number): string {
  const tag = `#${i}/${n};`;
  return (tag.repeat(Math.ceil(n / tag.length) + 1)).slice(0, n);
}

/** The length of request `i`'s answer: 60 lengths, which fall on every slot of the view table and share some. */
const lengthFor = (i: number): number => 1 + ((i * 37) % 60) * 23;

/**
 * A backend that answers `GET /i` with bodyFor(i, lengthFor(i)) in one write, kept alive; `GET /close/i` with a
 * close-delimited body; `GET /cut` with a head promising more than it sends, then a close; POST with the upload's
 * size and a checksum.
 */
function backend(socket: Socket): void {
  let buf = Buffer.alloc(0);
  let upload: { left: number; sum: number; size: number } | null = null;
  socket.on('error', () => {});
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (upload !== null) {
        const take = Math.min(upload.left, buf.length);
        for (let k = 0; k < take; k++) upload.sum = (upload.sum * 31 + buf[k]!) >>> 0;
        upload.left -= take;
        buf = buf.subarray(take);
        if (upload.left > 0) return;
        const text = `${upload.size} ${upload.sum}`;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
        upload = null;
        continue;
      }
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.toString('latin1', 0, end);
      buf = buf.subarray(end + 4);
      const target = head.split(' ')[1]!;
      if (head.startsWith('POST')) {
        const size = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)![1]);
        upload = { left: size, sum: 0, size };
        continue;
      }
      if (target.startsWith('/close/')) {
        socket.end(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${bodyFor(0, Number(target.slice(7)))}`);
        return;
      }
      if (target === '/cut') {
        socket.end(`HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(10)}`);
        return;
      }
      const i = Number(target.slice(1));
      const body = bodyFor(i, lengthFor(i));
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    }
  });
}

/**
 * Reads answers off `client` (Content-Length or, when `untilClose`, to the close); resolves their bodies.
 * `onAnswer` is called after each (the next request goes out then).
 */
function readAnswers(client: Socket, count: number, untilClose = false, onAnswer: (n: number) => void = () => {}): Promise<{ bodies: string[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const bodies: string[] = [];
    const timer = setTimeout(() => reject(new Error(`only ${bodies.length} of ${count} answers in 10 s`)), 10_000);
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      resolve({ bodies, closed });
    };
    client.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.toString('latin1', 0, end);
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (cl === null) return; // close-delimited: taken at the close
        const length = Number(cl[1]);
        if (buf.length < end + 4 + length) return;
        bodies.push(buf.toString('latin1', end + 4, end + 4 + length));
        buf = buf.subarray(end + 4 + length);
        if (bodies.length === count && !untilClose) return finish(false);
        onAnswer(bodies.length);
      }
    });
    client.on('error', () => {});
    client.on('close', () => {
      const end = buf.indexOf('\r\n\r\n');
      if (untilClose && end !== -1) bodies.push(buf.toString('latin1', end + 4));
      finish(true);
    });
  });
}

describe.each(MODES)('socket reads (%s)', (mode) => {
  test('120 kept-alive requests with answers of 60 different lengths: each gets its own bytes', async () => {
    const proxy = await startProxy(mode, await listen(backend));
    const client = connect(mode, proxy.port);
    try {
      const request = (i: number): string => `GET /${i} HTTP/1.1\r\nHost: t\r\n\r\n`;
      // One request at a time: each answer is a read of its own on both sides.
      const answers = readAnswers(client, 120, false, (n) => client.write(request(n)));
      client.write(request(0));
      const got = (await answers).bodies;
      const wrong = got.map((b, i) => (b === bodyFor(i, lengthFor(i)) ? -1 : i)).filter((i) => i !== -1);
      expect(wrong).toEqual([]);
    } finally {
      client.destroy();
    }
  }, 20_000);

  test('three pipelined requests in one write get their answers in order', async () => {
    const proxy = await startProxy(mode, await listen(backend));
    const client = connect(mode, proxy.port);
    try {
      const answers = readAnswers(client, 3);
      client.write([3, 1, 2].map((i) => `GET /${i} HTTP/1.1\r\nHost: t\r\n\r\n`).join(''));
      expect((await answers).bodies).toEqual([3, 1, 2].map((i) => bodyFor(i, lengthFor(i))));
    } finally {
      client.destroy();
    }
  }, 20_000);

  test('a 3 MiB upload reaches the backend whole, then the connection serves a GET', async () => {
    const proxy = await startProxy(mode, await listen(backend));
    const client = connect(mode, proxy.port);
    try {
      const size = 3 * 1024 * 1024;
      const body = Buffer.alloc(size);
      let sum = 0;
      for (let k = 0; k < size; k++) {
        body[k] = (k * 7 + (k >>> 12)) & 0xff;
        sum = (sum * 31 + body[k]!) >>> 0;
      }
      const answers = readAnswers(client, 2);
      client.write(`POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: ${size}\r\n\r\n`);
      client.write(body);
      client.write('GET /7 HTTP/1.1\r\nHost: t\r\n\r\n');
      expect((await answers).bodies).toEqual([`${size} ${sum}`, bodyFor(7, lengthFor(7))]);
    } finally {
      client.destroy();
    }
  }, 20_000);

  test("a backend's close ends a close-delimited answer whole, and cuts a short one (the client's connection closes)", async () => {
    const proxy = await startProxy(mode, await listen(backend));
    const whole = connect(mode, proxy.port);
    const cut = connect(mode, proxy.port);
    try {
      const wholeAnswer = readAnswers(whole, 1, true);
      whole.write('GET /close/70000 HTTP/1.1\r\nHost: t\r\n\r\n');
      const w = await wholeAnswer;
      expect(w.closed).toBe(true);
      expect(w.bodies).toEqual([bodyFor(0, 70000)]);
      const cutAnswer = readAnswers(cut, 1);
      cut.write('GET /cut HTTP/1.1\r\nHost: t\r\n\r\n');
      const c = await cutAnswer;
      expect(c).toEqual({ bodies: [], closed: true });
    } finally {
      whole.destroy();
      cut.destroy();
    }
  }, 20_000);

  test("a client's FIN after its request: the answer still comes, then the close", async () => {
    const proxy = await startProxy(mode, await listen(backend));
    const client = connect(mode, proxy.port);
    try {
      const answers = readAnswers(client, 1, true);
      client.end('GET /5 HTTP/1.1\r\nHost: t\r\n\r\n');
      const got = await answers;
      expect(got.closed).toBe(true);
      expect(got.bodies).toEqual([bodyFor(5, lengthFor(5))]);
    } finally {
      client.destroy();
    }
  }, 20_000);
});
