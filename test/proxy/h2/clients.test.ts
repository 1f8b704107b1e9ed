// HTTP/2 clients against `tsbal run` as shipped, under Node and under Bun (each runtime has its own node:http2, and
// they differ where RFC 9113 leaves a choice), with Debian's nghttp2-client and curl, a raw frame client for what
// nghttp will not do, and a raw rapid-reset loop. Backends are node:http servers that record what they receive.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePki, type Leaf, type TestPki } from '../../harness/certs.ts';
import { execProc, type ProcHandle } from '../../harness/proc.ts';
import { freePort } from '../../harness/ports.ts';
import { closedPort } from '../helpers.ts';
import { namedBackend, RUNTIMES, startTsbal, stopTsbal, type NamedBackend } from './daemon.ts';
import { errorCode, FRAME, getHeaders, NGHTTP2_CANCEL, rawH2, rstStream } from './frames.ts';

const NGHTTP2_REFUSED_STREAM = 0x7;
const NGHTTP2_ENHANCE_YOUR_CALM = 0xb;

let pki: TestPki;
let leaf: Leaf;

beforeAll(() => {
  pki = makePki();
  leaf = pki.issue('site', ['h2.test']);
});
afterAll(() => pki?.cleanup());

/** nghttp connects to the URL's host: 127.0.0.1, with :authority h2.test. It prints bodies, or frames with -v. */
const nghttp = (port: number, args: string[], paths: string[]) =>
  execProc(['nghttp', '--timeout=10', '-H', ':authority: h2.test', ...args, ...paths.map((p) => `https://127.0.0.1:${port}${p}`)], { timeoutMs: 20_000 });

const curl = (port: number, args: string[]) =>
  execProc(['curl', '-sS', '--max-time', '10', '--cacert', pki.caCrt, '--resolve', `h2.test:${port}:127.0.0.1`, ...args], { timeoutMs: 70_000 });

describe.each(RUNTIMES)('HTTP/2 clients, tsbal under %p', (rt) => {
  let be1: NamedBackend;
  let be2: NamedBackend;
  let refusing: number;
  let port: number;
  let proc: ProcHandle | undefined;
  let accessLog: string;

  beforeAll(async () => {
    [be1, be2] = await Promise.all([namedBackend('be1'), namedBackend('be2')]);
    refusing = await closedPort();
    port = await freePort();
    accessLog = join(pki.dir, `access-${rt.name}.log`);
    const conf = join(pki.dir, `clients-${rt.name}.conf`);
    // No ssl_http2: HTTP/2 is on by default on a TLS listener. Round robin over a refusing backend and two live ones.
    writeFileSync(conf, `CREATE POOL p
  POOL p ADD 127.0.0.1:${refusing}
  POOL p ADD 127.0.0.1:${be1.port}
  POOL p ADD 127.0.0.1:${be2.port}
  SET balance_method = roundrobin
CREATE SERVICE site
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
  SET persist_backend = on
  SET enable_ssl = on
  SET ssl_cert_file = ${leaf.crt}
  SET ssl_key_file = ${leaf.key}
  SET sticky = cookie
  SET sticky_secret = h2 test secret
  SET http2_max_concurrent_streams = 2
  SET max_header_size = 4k
  SET idle_timeout = 2
  SET access_log = ${accessLog}
ENABLE site
`);
    proc = await startTsbal(rt, conf, [port], 'clients');
  }, 40_000);
  afterAll(async () => {
    await stopTsbal(proc);
    await Promise.all([be1?.close(), be2?.close()]);
  });

  const seen = () => [...be1.seen, ...be2.seen];

  test('retries: a GET that meets the refusing backend is retried on a live one; every nghttp client gets 200', async () => {
    // First in this service's life: round robin over three, so one of the first three requests meets the refusing
    // backend before anything marked it down (each nghttp is its own connection, one request each).
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) answers.push((await nghttp(port, [], [`/retry/${i}`])).stdout);
    expect(answers.map((a) => a.replace(/\n$/, ''))).toEqual(answers.map((_, i) => expect.stringMatching(new RegExp(`^be[12] /retry/${i}$`)) as unknown as string));
    await Bun.sleep(300); // the access log is written in batches
    const lines = readFileSync(accessLog, 'utf8').split('\n').filter((l) => l.includes('/retry/'));
    expect(lines).toHaveLength(6);
    // Logged as what the client sent (Apache's HTTP/2.0), not as the HTTP/1.1 request it became.
    expect(lines.filter((l) => !/"GET \/retry\/\d HTTP\/2\.0" 200 /.test(l))).toEqual([]);
    expect(lines.some((l) => / attempts=2$/.test(l))).toBe(true);
    expect(proc!.stdout() + proc!.stderr()).toMatch(new RegExp(`backend 127\\.0\\.0\\.1:${refusing} down \\(connect ECONNREFUSED`));
  }, 60_000);

  test('nghttp: ALPN h2, SETTINGS with the limits; the backend gets HTTP/1.1 with Host from :authority and X-Forwarded-For/Proto', async () => {
    const r = await nghttp(port, ['-v', '-H', 'x-forwarded-proto: http'], ['/hello?q=1']);
    expect(r.stdout).toContain('The negotiated protocol: h2');
    expect(r.stdout).toMatch(/recv SETTINGS frame[^\n]*\n[^\n]*\n\s*\[SETTINGS_ENABLE_PUSH\(0x02\):0\]\n\s*\[SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):2\]\n\s*\[SETTINGS_MAX_HEADER_LIST_SIZE\(0x06\):4096\]/);
    expect(r.stdout).toMatch(/recv \(stream_id=\d+\) :status: 200\n/);
    // Set-Cookie goes as a never-indexed literal (hpack-encoder.ts), which nghttp prints as `sensitive`.
    expect(r.stdout).toMatch(/recv \(stream_id=\d+(, sensitive)?\) set-cookie: TSBALID=[\w-]{12}; Path=\/; HttpOnly; SameSite=Lax; Secure\n/);
    const got = seen().find((s) => s.url === '/hello?q=1');
    expect(got?.method).toBe('GET');
    expect(got?.headers.host).toBe('h2.test');
    expect(got?.headers['x-forwarded-for']).toBe('127.0.0.1');
    // The client's own claim is replaced, not added to.
    expect(got?.headers['x-forwarded-proto']).toBe('https');
    expect(got?.headers['user-agent']).toMatch(/^nghttp2\//);
  });

  test('curl --http2 with the test CA: HTTP/2, the backend answer and its headers', async () => {
    const r = await curl(port, ['--http2', '-D', '-', `https://h2.test:${port}/curl`]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^HTTP\/2 200 ?\r\n/);
    expect(r.stdout).toMatch(/\r\nx-backend: be[12]\r\n/);
    expect(r.stdout).toMatch(/be[12] \/curl\n$/);
  });

  test('a 16 MiB download over HTTP/2 arrives whole (flow control and backpressure through the stream)', async () => {
    const file = join(pki.dir, `download-${rt.name}.bin`);
    const r = await curl(port, ['--http2', '--max-time', '60', '-o', file, '-w', '%{http_version} %{size_download}', `https://h2.test:${port}/bytes/16777216`]);
    expect(r.stdout).toBe('2 16777216');
    const piece = Buffer.alloc(65_536, 'abcdefghijklmnopqrstuvwxyz0123456789\n');
    const want = createHash('sha256');
    for (let i = 0; i < 256; i++) want.update(piece);
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(want.digest('hex'));
  }, 80_000);

  test('affinity: an nghttp client with its TSBALID cookie lands on the backend that set it, connection after connection', async () => {
    const first = await nghttp(port, ['-v'], ['/pin']);
    const cookie = /set-cookie: (TSBALID=[\w-]{12});/.exec(first.stdout)?.[1];
    const home = /x-backend: (be[12])/.exec(first.stdout)?.[1];
    expect({ cookie, home }).toEqual({ cookie: expect.any(String), home: expect.any(String) });
    const again: string[] = [];
    for (let i = 0; i < 6; i++) again.push((await nghttp(port, ['-H', `cookie: ${cookie}`], [`/pin/${i}`])).stdout.split(' ')[0]!);
    expect(again).toEqual(Array(6).fill(home));
  }, 60_000);

  test('concurrent streams: streams opened past the limit of 2 are refused (REFUSED_STREAM) and never reach a backend; the first two are answered', async () => {
    const h2 = await rawH2(port, 'h2.test');
    try {
      // Both sides' SETTINGS are acknowledged, so the limit is in force: 4 HEADERS in one write break it.
      h2.send(Buffer.concat([1, 3, 5, 7].map((id) => getHeaders(id, 'h2.test', `/slow/c${id}`))));
      const ended = (id: number) => h2.frames.some((f) => f.stream === id && (f.type === FRAME.RST_STREAM || (f.type === FRAME.DATA && (f.flags & 1) !== 0)));
      await h2.until(() => [1, 3, 5, 7].every(ended), 10_000, { orClosed: true });
      const outcome = (id: number) => {
        const rst = h2.frames.find((f) => f.stream === id && f.type === FRAME.RST_STREAM);
        return rst !== undefined ? `reset ${errorCode(rst)}` : ended(id) ? 'answered' : 'connection gone';
      };
      const got = [1, 3, 5, 7].map(outcome);
      // RFC 9113 5.1.2: the excess streams are refused (the client may retry them), the connection stays. (Node's
      // http2, used before tsbal had its own, cut the whole connection instead.)
      expect({ got, open: !h2.socket.destroyed }).toEqual({ got: ['answered', 'answered', `reset ${NGHTTP2_REFUSED_STREAM}`, `reset ${NGHTTP2_REFUSED_STREAM}`], open: true });
    } finally {
      h2.close();
    }
    expect(seen().filter((s) => /^\/slow\/c(5|7)$/.test(s.url))).toEqual([]);
  }, 30_000);

  test('header list size: a request over max_header_size is refused and never forwarded; the next one is served', async () => {
    const big = await nghttp(port, ['-v', '-H', `x-big: ${'a'.repeat(5000)}`], ['/big']);
    // Refused either way: http2 resets the stream once the SETTINGS_MAX_HEADER_LIST_SIZE it sent is in force (Bun's
    // at once, Node's once the client acknowledged it: nghttp sends its request before that), else the HTTP/1.1 path
    // answers 431, as it does an HTTP/1.1 client.
    const refused = /recv RST_STREAM frame[^\n]*\n\s*\(error_code=ENHANCE_YOUR_CALM\(0x0b\)\)/.test(big.stdout) || /:status: 431\n/.test(big.stdout);
    expect(refused ? 'refused' : big.stdout).toBe('refused');
    expect(seen().filter((s) => s.url === '/big')).toEqual([]);
    const ok = await nghttp(port, ['-H', `x-small: ${'a'.repeat(1000)}`], ['/small']);
    expect(ok.stdout).toMatch(/^be[12] \/small\n$/);
  }, 30_000);

  test('idle timeout: a connection with nothing to do is closed after idle_timeout (2 s), not before', async () => {
    const script = `const http2 = require('node:http2');
const session = http2.connect('https://127.0.0.1:${port}', { rejectUnauthorized: false, servername: 'h2.test' });
session.on('error', () => {});
let goaway = null; let answeredAt = 0;
session.on('goaway', (code) => { goaway = code; });
const req = session.request({ ':path': '/idle', ':authority': 'h2.test' });
req.on('error', () => {});
req.resume();
req.on('end', () => { answeredAt = Date.now(); });
session.on('close', () => { console.log(JSON.stringify({ goaway, idleMs: Date.now() - answeredAt })); process.exit(0); });
setTimeout(() => { console.log(JSON.stringify({ stillOpen: true })); process.exit(0); }, 12000);`;
    const r = await execProc(['node', '-e', script], { timeoutMs: 20_000 });
    const got = JSON.parse(r.stdout.trim()) as { goaway: number | null; idleMs: number };
    expect(got.goaway).toBe(0);
    expect(got.idleMs).toBeGreaterThanOrEqual(1_900);
    // Timers of an idle session are checked coarsely (Bun's by its own sweep): well under the 12 s the client waits.
    expect(got.idleMs).toBeLessThan(8_000);
  }, 30_000);

  test('rapid reset (CVE-2023-44487): a client sending HEADERS then RST_STREAM in a loop is cut off with GOAWAY ENHANCE_YOUR_CALM; a client beside it is served throughout', async () => {
    const attacker = await rawH2(port, 'h2.test');
    let streams = 0;
    let attackOver = false;
    const attack = async (): Promise<void> => {
      // Ten streams per write, each cancelled at once, against a path the backend answers in 300 ms. Bounded: 3000
      // streams or 15 s, and it stops at GOAWAY or when the connection goes.
      const until = Date.now() + 15_000;
      while (streams < 3000 && Date.now() < until && !attacker.socket.destroyed && !attacker.frames.some((f) => f.type === FRAME.GOAWAY)) {
        const batch: Buffer[] = [];
        for (let i = 0; i < 10; i++, streams++) batch.push(getHeaders(2 * streams + 1, 'h2.test', `/slow/rr${streams}`), rstStream(2 * streams + 1, NGHTTP2_CANCEL));
        attacker.send(Buffer.concat(batch));
        await Bun.sleep(5);
      }
      await attacker.until((fs) => fs.some((f) => f.type === FRAME.GOAWAY), 5_000, { orClosed: true }).catch(() => {});
      attackOver = true;
    };
    // Meanwhile an ordinary client, on its own connections, one request after another.
    const bystander: string[] = [];
    const serve = async (): Promise<void> => {
      for (let i = 0; i < 40 && (!attackOver || i < 3); i++) bystander.push((await curl(port, ['--http2', '-w', ' %{http_version}', `https://h2.test:${port}/ok/${i}`])).stdout);
    };
    try {
      await Promise.all([attack(), serve()]);
    } finally {
      attacker.close();
    }
    const goaway = attacker.frames.find((f) => f.type === FRAME.GOAWAY);
    expect(goaway === undefined ? 'no GOAWAY' : errorCode(goaway)).toBe(NGHTTP2_ENHANCE_YOUR_CALM);
    expect(streams).toBeGreaterThan(100);
    expect(streams).toBeLessThan(3000);
    expect(bystander.length).toBeGreaterThanOrEqual(3);
    expect(bystander.filter((b) => !/^be[12] \/ok\/\d+\n 2$/.test(b))).toEqual([]);
    expect(proc!.stdout() + proc!.stderr()).toMatch(/HTTP\/2 client 127\.0\.0\.1 cut off: more than 100 streams cancelled within 10 s \(rapid reset\)/);
  }, 40_000);
});
