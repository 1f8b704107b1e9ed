// A web page over TLS and HTTP/2 in a real browser: Debian's headless chromium opens a page tsbal proxies from an
// HTTP/1.1 backend, under Node and under Bun. The page's script writes the protocol of the page and of the script
// itself (Resource Timing's nextHopProtocol) into the DOM, which --dump-dom prints. The test CA is not installed:
// chromium trusts the server certificate by its key (--ignore-certificate-errors-spki-list), so a wrong certificate
// still fails.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePki, type Leaf, type TestPki } from '../../harness/certs.ts';
import { execProc } from '../../harness/proc.ts';
import { freePort } from '../../harness/ports.ts';
import { namedBackend, RUNTIMES, startTsbal, stopTsbal, type NamedBackend } from './daemon.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

let pki: TestPki;
let leaf: Leaf;
let backend: NamedBackend;

beforeAll(async () => {
  pki = makePki();
  leaf = pki.issue('www', ['www.h2.test']);
  backend = await namedBackend('app');
});
afterAll(async () => {
  await backend?.close();
  pki?.cleanup();
});

// scripts/setup.sh installs Debian's chromium; without it these tests cannot run.
describe.each(RUNTIMES)('headless chromium, tsbal under %p', (rt) => {
  (CHROMIUM === undefined ? test.skip : test)('opens a page over TLS and HTTP/2: page and script came over h2, the backend saw https', async () => {
    const port = await freePort();
    const conf = join(pki.dir, `browser-${rt.name}.conf`);
    writeFileSync(conf, `CREATE POOL app
  POOL app ADD 127.0.0.1:${backend.port}
CREATE SERVICE www
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = app
  SET enable_ssl = on
  SET ssl_cert_file = ${leaf.crt}
  SET ssl_key_file = ${leaf.key}
ENABLE www
`);
    const proc = await startTsbal(rt, conf, [port], 'browser');
    try {
      const spki = createHash('sha256').update(new X509Certificate(readFileSync(leaf.crt)).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
      const netLog = join(pki.dir, `netlog-${rt.name}.json`);
      const before = backend.seen.length;
      const r = await execProc([
        CHROMIUM!, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', `--user-data-dir=${join(pki.dir, `chromium-${rt.name}`)}`,
        '--host-resolver-rules=MAP www.h2.test 127.0.0.1', `--ignore-certificate-errors-spki-list=${spki}`, `--log-net-log=${netLog}`,
        '--dump-dom', `https://www.h2.test:${port}/page.html`,
      ], { timeoutMs: 60_000 });
      expect(r.stdout).toContain('<h1 id="t">hello over h2</h1>');
      expect(r.stdout).toContain('<p id="proto">page=h2 script=h2</p>');
      expect(readFileSync(netLog, 'utf8')).toMatch(/"negotiated_protocol":"h2"/);
      const got = backend.seen.slice(before).filter((s) => s.url === '/page.html' || s.url === '/app.js');
      expect(got.map((s) => [s.url, s.headers['x-forwarded-proto'], s.headers.host])).toEqual([
        ['/page.html', 'https', `www.h2.test:${port}`],
        ['/app.js', 'https', `www.h2.test:${port}`],
      ]);
    } finally {
      await stopTsbal(proc);
    }
  }, 90_000);
});
