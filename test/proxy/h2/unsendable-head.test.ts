// Backend response heads node:http2 refused to carry (a single-value field such as Content-Type repeated) and one no
// HTTP version may carry (status 999): tsbal stays up and serves the next request. Under node:http2 the exception
// from stream.respond() once went up through the relay code that wrote the head and killed tsbal; with tsbal's own
// HTTP/2 the repeated field goes out as it came, as it does to an HTTP/1.1 client.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePki, type Leaf, type TestPki } from '../../harness/certs.ts';
import { execProc, type ProcHandle } from '../../harness/proc.ts';
import { freePort } from '../../harness/ports.ts';
import { defaultReply, startRawBackend, type RawBackend } from '../../harness/rawbackend.ts';
import { DIST_BUNDLE } from '../../harness/tsbal.ts';
import { RUNTIMES, startTsbal, stopTsbal, type Runtime } from './daemon.ts';

// Debian's Node 20 too (the oldest runtime tsbal's HTTP/2 runs under).
const DEBIAN_NODE = '/usr/bin/node';
const runtimes: Runtime[] = existsSync(DEBIAN_NODE) ? [...RUNTIMES, { name: 'node', argv: [DEBIAN_NODE, DIST_BUNDLE] }] : RUNTIMES;

let pki: TestPki;
let leaf: Leaf;

beforeAll(() => {
  pki = makePki();
  leaf = pki.issue('site', ['h2.test']);
});
afterAll(() => pki?.cleanup());

describe.each(runtimes)('odd response heads over HTTP/2, tsbal under %p', (rt) => {
  let be: RawBackend;
  let port: number;
  let proc: ProcHandle | undefined;

  beforeAll(async () => {
    be = await startRawBackend({
      name: 'raw',
      reply: (req, name) => {
        if (req.target === '/two-types') {
          return { bytes: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\nhi\n' };
        }
        if (req.target === '/status-999') return { bytes: 'HTTP/1.1 999 Odd\r\nContent-Length: 3\r\n\r\nhi\n' };
        return defaultReply(name, req);
      },
    });
    port = await freePort();
    const conf = join(pki.dir, `unsendable-${rt.argv[0]!.replace(/\W/g, '_')}.conf`);
    writeFileSync(conf, `CREATE POOL p
  POOL p ADD 127.0.0.1:${be.port}
CREATE SERVICE site
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
  SET persist_backend = on
  SET enable_ssl = on
  SET ssl_cert_file = ${leaf.crt}
  SET ssl_key_file = ${leaf.key}
ENABLE site
`);
    proc = await startTsbal(rt, conf, [port], 'unsendable');
  }, 40_000);
  afterAll(async () => {
    await stopTsbal(proc);
    await be?.close();
  });

  test('a repeated Content-Type goes out as it came, a status past 599 is 502; the next request is served and tsbal is still running', async () => {
    const get = (path: string) =>
      execProc(['curl', '-sS', '--http2', '--max-time', '10', '--cacert', pki.caCrt, '--resolve', `h2.test:${port}:127.0.0.1`,
        '-D', '-', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://h2.test:${port}${path}`], { timeoutMs: 30_000 });
    const twoTypes = await get('/two-types');
    const oddStatus = await get('/status-999');
    const ok = await get('/ok');
    expect(twoTypes.stdout).toMatch(/^HTTP\/2 200 ?\r\n/);
    expect(twoTypes.stdout).toMatch(/\r\ncontent-type: text\/plain\r\ncontent-type: text\/html\r\n/);
    expect(twoTypes.stdout).toMatch(/2 200$/);
    // A status past 599 never gets this far: tsbal's response parser answers 502 as for HTTP/1.1.
    expect(oddStatus.stdout).toMatch(/2 502$/);
    expect([ok.stdout.slice(-5), ok.code]).toEqual(['2 200', 0]);
    expect(proc!.exit()).toBeNull();
    expect(be.proxied().map((q) => q.target)).toEqual(['/two-types', '/status-999', '/ok']);
  }, 40_000);
});
