// HTTP/2 for clients (on every TLS listener unless ssl_http2 = off), against `tsbal run` from the dist bundle under
// Node (test/proxy/h2/clients.test.ts runs nghttp against the Bun build too). Real clients: curl --http2, openssl s_client -alpn, and node:http2 scripts under
// Node for what curl cannot do (SETTINGS, a rapid-reset loop). Each stream takes the HTTP/1.1 path to a raw backend
// that records exactly what it receives.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePki, type Leaf, type TestPki } from '../../harness/certs.ts';
import { execProc, spawnProc, type ProcHandle } from '../../harness/proc.ts';
import { freePort, waitForPorts } from '../../harness/ports.ts';
import { DIST_BUNDLE } from '../../harness/tsbal.ts';
import { rawBackend, type RawBackend } from '../helpers.ts';

let pki: TestPki;
let leaf: Leaf;
let backend: RawBackend;
const procs: ProcHandle[] = [];

beforeAll(async () => {
  pki = makePki();
  leaf = pki.issue('h2', ['h2.test']);
  // Answers each request (its Content-Length or chunked body read whole) with the body size it got.
  const handled = new Map<number, number>();
  backend = await rawBackend('be', (socket, conn, received) => {
    for (;;) {
      const at = handled.get(conn) ?? 0;
      const headEnd = received.indexOf('\r\n\r\n', at);
      if (headEnd === -1) return;
      const head = received.slice(at, headEnd);
      const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
      let size = 0;
      let next = headEnd + 4;
      if (cl) {
        size = Number(cl[1]);
        if (received.length < next + size) return;
        next += size;
      } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
        let i = next;
        for (;;) {
          const lineEnd = received.indexOf('\r\n', i);
          if (lineEnd === -1) return;
          const n = parseInt(received.slice(i, lineEnd), 16);
          if (n === 0) {
            if (received.length < lineEnd + 4) return;
            next = lineEnd + 4;
            break;
          }
          if (received.length < lineEnd + 2 + n + 2) return;
          size += n;
          i = lineEnd + 2 + n + 2;
        }
      }
      handled.set(conn, next);
      const text = `body ${size}\n`;
      const answer = `HTTP/1.1 200 OK\r\nX-Backend: be\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: ${text.length}\r\n\r\n${text}`;
      // /slow/...: an application that takes 200 ms, so a cancelled request is cancelled while in flight.
      if (head.startsWith('GET /slow/')) setTimeout(() => socket.destroyed || socket.write(answer), 200);
      else if (head.startsWith('GET /chunked')) {
        // A chunked response in three writes (the last chunk and its end in one).
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
        setTimeout(() => socket.write('6\r\n, wide\r\n'), 20);
        setTimeout(() => socket.write('7\r\n world\n\r\n0\r\n\r\n'), 40);
      } else if (head.startsWith('GET /until-close')) {
        // No length, no chunking: the body ends when the backend closes (HTTP/1.0 style), in two writes.
        socket.write('HTTP/1.0 200 OK\r\nX-Backend: be\r\n\r\nuntil ');
        setTimeout(() => socket.end('the end\n'), 20);
      }
      else socket.write(answer);
    }
  });
});
afterAll(async () => {
  for (const p of procs) {
    if (p.exit() === null) p.kill('SIGKILL');
    await p.exited;
  }
  await backend?.close();
  pki?.cleanup();
});

async function run(extra: string, name: string): Promise<{ port: number; proc: ProcHandle }> {
  const port = await freePort();
  const conf = join(pki.dir, `${name}.conf`);
  writeFileSync(conf, `CREATE POOL p
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
`);
  const proc = spawnProc(['node', DIST_BUNDLE, 'run', '-c', conf], { label: `tsbal-${name}` });
  procs.push(proc);
  await waitForPorts([port], 15_000, () => (proc.exit() === null ? null : `tsbal exited: ${proc.stderr()}${proc.stdout()}`));
  return { port, proc };
}

const curl = (port: number, args: string[]) =>
  execProc(['curl', '-sS', '--max-time', '10', '--cacert', pki.caCrt, '--resolve', `h2.test:${port}:127.0.0.1`, ...args], { timeoutMs: 15_000 });

/** Runs a node:http2 client script under Node; it prints one JSON line. */
async function nodeClient(port: number, body: string): Promise<unknown> {
  const script = `const http2 = require('node:http2'); const fs = require('node:fs');
const session = http2.connect('https://h2.test:${port}', { ca: fs.readFileSync(${JSON.stringify(pki.caCrt)}), lookup: (h, o, cb) => cb(null, o && o.all ? [{ address: '127.0.0.1', family: 4 }] : '127.0.0.1', 4) });
const done = (v) => { console.log(JSON.stringify(v)); process.exit(0); };
setTimeout(() => done({ timeout: true }), 8000);
${body}`;
  const r = await execProc(['node', '-e', script], { timeoutMs: 15_000 });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    return { stdout: r.stdout, stderr: r.stderr };
  }
}

describe('HTTP/2 (on by default)', () => {
  let port: number;
  let proc: ProcHandle;
  beforeAll(async () => {
    ({ port, proc } = await run('  SET http2_max_concurrent_streams = 7\n  SET max_url_length = 64\n', 'h2'));
  }, 30_000);

  test('ALPN offers h2; curl --http2 gets HTTP/2, the backend an HTTP/1.1 request with Host, joined cookies and X-Forwarded-Proto: https', async () => {
    const alpn = await execProc(['openssl', 's_client', '-connect', `127.0.0.1:${port}`, '-alpn', 'h2,http/1.1'], { timeoutMs: 10_000, input: '' });
    expect(alpn.stdout).toMatch(/ALPN protocol: h2/);
    const before = backend.conns.length;
    const r = await curl(port, ['--http2', '-b', 'x=1; y=2', '-D', '-', 'https://h2.test:' + port + '/hello?q=1']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^HTTP\/2 200/);
    expect(r.stdout).toMatch(/\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n/);
    expect(r.stdout).not.toMatch(/\r\n(connection|keep-alive|transfer-encoding):/i);
    expect(r.stdout).toMatch(/body 0\n$/);
    const got = backend.conns.slice(before).join('');
    expect(got).toMatch(/^GET \/hello\?q=1 HTTP\/1\.1\r\n/);
    expect(got).toMatch(new RegExp(`\\r\\nHost: h2\\.test:${port}\\r\\n`, 'i'));
    expect(got).toMatch(/\r\ncookie: x=1; y=2\r\n/i);
    expect(got).toMatch(/\r\nX-Forwarded-Proto: https\r\n/);
    expect(got).toMatch(/\r\nX-Forwarded-For: 127\.0\.0\.1\r\n/);
  });

  test('request bodies: with content-length and without (sent chunked to the backend)', async () => {
    const withLength = await curl(port, ['--http2', '--data-binary', 'hello world', `https://h2.test:${port}/post`]);
    expect(withLength.stdout).toBe('body 11\n');
    const big = 'x'.repeat(200_000);
    writeFileSync(join(pki.dir, 'big.txt'), big);
    const chunked = await curl(port, ['--http2', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${join(pki.dir, 'big.txt')}`, `https://h2.test:${port}/upload`]);
    expect({ out: chunked.stdout, log: proc.exit() === null ? 'running' : proc.stdout() + proc.stderr() }).toEqual({ out: 'body 200000\n', log: 'running' });
  }, 20_000);

  test('several requests share one connection; HTTP/1.1 clients are still served on the same listener', async () => {
    const r = await curl(port, ['--http2', '-w', '%{http_version} %{num_connects}\n', `https://h2.test:${port}/a`, `https://h2.test:${port}/b`, `https://h2.test:${port}/c`]);
    expect(r.stdout).toBe('body 0\n2 1\nbody 0\n2 0\nbody 0\n2 0\n');
    const h1 = await curl(port, ['--http1.1', '-w', '%{http_version}\n', `https://h2.test:${port}/h1`]);
    expect(h1.stdout).toBe('body 0\n1.1\n');
  });

  test('a chunked backend response arrives as DATA frames, de-chunked, with no transfer-encoding', async () => {
    const r = await curl(port, ['--http2', '-D', '-', `https://h2.test:${port}/chunked`]);
    expect(r.stdout).toMatch(/^HTTP\/2 200 ?\r\n/);
    expect(r.stdout).not.toMatch(/transfer-encoding/i);
    expect(r.stdout.slice(r.stdout.indexOf('\r\n\r\n') + 4)).toBe('hello, wide world\n');
  });

  test('a close-delimited backend response arrives whole and ends with END_STREAM, not a reset; the connection serves the next request', async () => {
    const r = await curl(port, ['--http2', '-w', '%{http_version} %{http_code} %{num_connects}\n', `https://h2.test:${port}/until-close`, `https://h2.test:${port}/after`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('until the end\n2 200 1\nbody 0\n2 200 0\n');
  });

  test('the HTTP/1.1 limits apply: a target over max_url_length is 414', async () => {
    const r = await curl(port, ['--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://h2.test:${port}/${'a'.repeat(100)}`]);
    expect(r.stdout).toBe('2 414');
  });

  test('SETTINGS: the concurrent stream limit is http2_max_concurrent_streams', async () => {
    const got = await nodeClient(port, `session.on('remoteSettings', (s) => done({ maxConcurrentStreams: s.maxConcurrentStreams, enablePush: s.enablePush }));`);
    expect(got).toEqual({ maxConcurrentStreams: 7, enablePush: false });
  });

});

describe('rapid reset (CVE-2023-44487)', () => {
  test('a client opening and cancelling streams in bursts is cut off with GOAWAY ENHANCE_YOUR_CALM; others are still served', async () => {
    const { port, proc } = await run('', 'rapid');
    const got = await nodeClient(port, `let opened = 0; let goaway = null;
session.on('goaway', (code) => { goaway = code; });
session.on('close', () => done({ goaway, opened }));
session.on('error', () => {});
session.on('connect', () => {
  // Bursts of 20 streams, each HEADERS then RST_STREAM(CANCEL) at once, against a backend path that takes 200 ms:
  // every stream is cancelled while its request is in flight. Stops at 1000 streams or on GOAWAY.
  const burst = () => {
    for (let i = 0; i < 20; i++) {
      if (session.destroyed || session.closed || goaway !== null || opened >= 1000) return done({ goaway, opened });
      opened++;
      const req = session.request({ ':path': '/slow/' + opened });
      req.on('error', () => {});
      req.close(http2.constants.NGHTTP2_CANCEL);
    }
    setTimeout(burst, 5);
  };
  burst();
});`);
    expect(got).toMatchObject({ goaway: 11 });
    expect((got as { opened: number }).opened).toBeLessThan(1000);
    expect(proc.stdout() + proc.stderr()).toMatch(/cut off: more than 100 streams cancelled within 10 s \(rapid reset\)/);
    const after = await curl(port, ['--http2', `https://h2.test:${port}/after`]);
    expect(after.stdout).toBe('body 0\n');
  }, 30_000);
});

describe('ssl_http2 = off', () => {
  test('no ALPN h2: curl --http2 falls back to HTTP/1.1', async () => {
    const { port } = await run('  SET ssl_http2 = off\n', 'h1');
    const alpn = await execProc(['openssl', 's_client', '-connect', `127.0.0.1:${port}`, '-alpn', 'h2,http/1.1'], { timeoutMs: 10_000, input: '' });
    expect(alpn.stdout).toMatch(/No ALPN negotiated/);
    const r = await curl(port, ['--http2', '-w', '%{http_version}', '-o', '/dev/null', `https://h2.test:${port}/`]);
    expect(r.stdout).toBe('1.1');
  }, 30_000);
});

/** tsbal with one plain (no TLS) reverse_proxy service in front of the backend, `extra` SET lines added; its port. */
async function runPlain(name: string, extra: string): Promise<number> {
  const port = await freePort();
  const conf = join(pki.dir, `${name}.conf`);
  writeFileSync(conf, `CREATE POOL p
  POOL p ADD 127.0.0.1:${backend.port}
CREATE SERVICE plain
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
${extra}ENABLE plain
`);
  const proc = spawnProc(['node', DIST_BUNDLE, 'run', '-c', conf], { label: `tsbal-${name}` });
  procs.push(proc);
  await waitForPorts([port], 15_000, () => (proc.exit() === null ? null : `tsbal exited: ${proc.stderr()}${proc.stdout()}`));
  return port;
}

describe('h2c (cleartext HTTP/2)', () => {
  test('is not offered on a plain listener: prior knowledge gets no HTTP/2 answer, an Upgrade: h2c is answered over HTTP/1.1', async () => {
    const port = await runPlain('plain', '');
    const prior = await execProc(['curl', '-sS', '--max-time', '10', '--http2-prior-knowledge', '-w', '%{http_version}', `http://127.0.0.1:${port}/prior`], { timeoutMs: 15_000 });
    expect({ code: prior.code, version: prior.stdout }).toEqual({ code: 52, version: '0' });
    const upgrade = await execProc(['curl', '-sS', '--max-time', '10', '--http2', '-w', ' %{http_version}', `http://127.0.0.1:${port}/upgrade`], { timeoutMs: 15_000 });
    expect(upgrade.stdout).toBe('body 0\n 1.1');
  }, 30_000);
});

describe('h2c with http2_cleartext = on (a tsbal extension)', () => {
  test('prior knowledge gets HTTP/2 (curl, h2load); an HTTP/1.1 client on the same listener is served HTTP/1.1; the backend sees X-Forwarded-Proto: http', async () => {
    const port = await runPlain('h2c', '  SET persist_backend = on\n  SET http2_cleartext = on\n');
    const before = backend.conns.length;
    const prior = await execProc(['curl', '-sS', '--max-time', '10', '--http2-prior-knowledge', '--data-binary', 'hello', '-w', ' %{http_version}', `http://127.0.0.1:${port}/prior`], { timeoutMs: 15_000 });
    expect(prior.stdout).toBe('body 5\n 2');
    const got = backend.conns.slice(before).join('');
    expect(got).toMatch(/^POST \/prior HTTP\/1\.1\r\n/);
    expect(got).toMatch(/\r\nX-Forwarded-Proto: http\r\n/);
    const h1 = await execProc(['curl', '-sS', '--max-time', '10', '--http1.1', '-w', ' %{http_version}', `http://127.0.0.1:${port}/h1`], { timeoutMs: 15_000 });
    expect(h1.stdout).toBe('body 0\n 1.1');
    const load = await execProc(['h2load', '-n', '500', '-c', '2', '-m', '10', '-t', '1', `http://127.0.0.1:${port}/load`], { timeoutMs: 30_000 });
    expect(load.stdout).toMatch(/Application protocol: h2c/);
    expect(load.stdout).toMatch(/requests: 500 total, 500 started, 500 done, 500 succeeded, 0 failed/);
  }, 40_000);
});
