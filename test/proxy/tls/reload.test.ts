// Certificate renewal under a running proxy, as certbot leaves it (live/NAME/*.pem symlinks into archive/NAME/):
// a reload serves the new certificate to new connections while a download on the old one finishes; a bad new
// certificate fails the reload, names the file, and the old certificate stays.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPerlbalConfigFile } from '../../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../../src/config/errors.ts';
import type { PerlbalConfig } from '../../../src/config/model.ts';
import { startProxy, type ProxyHandle } from '../../../src/proxy/index.ts';
import { makePki, type Leaf, type TestPki } from '../../harness/certs.ts';
import { execProc } from '../../harness/proc.ts';
import { freePort } from '../../harness/ports.ts';
import { quietLog, rawBackend, type RawBackend } from '../helpers.ts';

const DAY = 86_400_000;
const DOWNLOAD_BYTES = 2_000_000;
let pki: TestPki;
let backend: RawBackend;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  pki = makePki();
  // /download answers DOWNLOAD_BYTES in 20 slices over ~2 s; anything else a short 200.
  backend = await rawBackend('be', (socket, _conn, received) => {
    if (!received.endsWith('\r\n\r\n')) return;
    if (!received.includes('GET /download')) {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n');
      return;
    }
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${DOWNLOAD_BYTES}\r\n\r\n`);
    let sent = 0;
    const slice = Buffer.alloc(DOWNLOAD_BYTES / 20, 0x61);
    const timer = setInterval(() => {
      if (socket.destroyed || sent >= DOWNLOAD_BYTES) return clearInterval(timer);
      socket.write(slice);
      sent += slice.length;
    }, 100);
  });
});
afterAll(async () => {
  await backend?.close();
  pki?.cleanup();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** certbot's layout: archive/site/{fullchainN,privkeyN}.pem, live/site/{fullchain,privkey}.pem symlinks to them. */
function certbotDeploy(leaf: Leaf, n: number): void {
  const archive = join(pki.dir, 'archive', 'site');
  const live = join(pki.dir, 'live', 'site');
  mkdirSync(archive, { recursive: true });
  mkdirSync(live, { recursive: true });
  writeFileSync(join(archive, `fullchain${n}.pem`), readFileSync(leaf.crt, 'latin1') + readFileSync(pki.caCrt, 'latin1'));
  writeFileSync(join(archive, `privkey${n}.pem`), readFileSync(leaf.key), { mode: 0o600 });
  for (const f of ['fullchain', 'privkey']) {
    const tmp = join(live, `.${f}.tmp`);
    symlinkSync(`../../archive/site/${f}${n}.pem`, tmp);
    renameSync(tmp, join(live, `${f}.pem`));
  }
}

function load(file: string): { config: PerlbalConfig; errors: string[] } {
  const parsed = readPerlbalConfigFile(file, { cwd: pki.dir });
  return { config: parsed.value, errors: parsed.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic) };
}

/** The PEM of the certificate a new connection is served. */
async function servedCert(port: number): Promise<string> {
  const r = await execProc(['openssl', 's_client', '-connect', `127.0.0.1:${port}`, '-servername', 'site.test'], { timeoutMs: 10_000, input: '' });
  return /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0] ?? `no certificate in: ${r.stdout.slice(0, 200)}`;
}

const pemOf = (leaf: Leaf): string => /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(readFileSync(leaf.crt, 'latin1'))![0];

describe('certificate reload', () => {
  test('a renewed certificate is served after reload while a download on the old one finishes; a bad one keeps the old', async () => {
    const first = pki.issue('site1', ['site.test']);
    certbotDeploy(first, 1);
    const port = await freePort();
    const file = join(pki.dir, 'reload.conf');
    writeFileSync(file, `CREATE POOL p
  POOL p ADD 127.0.0.1:${backend.port}
CREATE SERVICE site
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
  SET enable_ssl = on
  SET ssl_cert_file = live/site/fullchain.pem
  SET ssl_key_file = live/site/privkey.pem
ENABLE site
`);
    const start = load(file);
    expect(start.errors).toEqual([]);
    const proxy: ProxyHandle = await startProxy(start.config, { log: quietLog });
    cleanups.push(() => proxy.close({ graceful: false }));
    expect(await servedCert(port)).toBe(pemOf(first));

    // A download on the first certificate, under way during the reload.
    const download = execProc(['curl', '-sS', '--max-time', '20', '--cacert', pki.caCrt, '--resolve', `site.test:${port}:127.0.0.1`,
      '-o', '/dev/null', '-w', '%{size_download} %{http_code}', `https://site.test:${port}/download`], { timeoutMs: 30_000 });
    await Bun.sleep(400);

    const renewed = pki.issue('site2', ['site.test'], { to: new Date(Date.now() + 90 * DAY) });
    certbotDeploy(renewed, 2);
    const next = load(file);
    expect(next.errors).toEqual([]);
    const outcome = await proxy.reload(next.config);
    expect(outcome.ok).toBe(true);
    expect(await servedCert(port)).toBe(pemOf(renewed));

    const done = await download;
    expect({ out: done.stdout, err: done.stderr, code: done.code }).toEqual({ out: `${DOWNLOAD_BYTES} 200`, err: '', code: 0 });

    // A renewal gone wrong (an expired certificate): check says why, the proxy refuses it too, the old one stays.
    const expired = pki.issue('site3', ['site.test'], { from: new Date(Date.now() - 90 * DAY), to: new Date(Date.now() - DAY) });
    certbotDeploy(expired, 3);
    const bad = load(file);
    expect(bad.errors).toEqual([expect.stringMatching(/reload\.conf:8: service site: certificate .*live\/site\/fullchain\.pem \(site\.test\) expired on/)]);
    const refused = await proxy.reload(bad.config);
    expect(refused).toEqual({ ok: false, errors: [expect.stringMatching(/reload\.conf:8: service site: certificate .*fullchain\.pem \(site\.test\) expired on/)] });
    expect(await servedCert(port)).toBe(pemOf(renewed));
  }, 30_000);

  test('enable_ssl turned on by a reload: the same socket answers TLS from then on', async () => {
    const leaf = pki.issue('toggle', ['site.test']);
    const port = await freePort();
    const file = join(pki.dir, 'toggle.conf');
    const conf = (tls: boolean): string => `CREATE POOL p
  POOL p ADD 127.0.0.1:${backend.port}
CREATE SERVICE site
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
${tls ? `  SET enable_ssl = on\n  SET ssl_cert_file = ${leaf.crt}\n  SET ssl_key_file = ${leaf.key}\n` : ''}ENABLE site
`;
    writeFileSync(file, conf(false));
    const proxy = await startProxy(load(file).config, { log: quietLog });
    cleanups.push(() => proxy.close({ graceful: false }));
    const plain = await execProc(['curl', '-sS', '--max-time', '5', `http://127.0.0.1:${port}/`], { timeoutMs: 10_000 });
    expect(plain.stdout).toBe('ok\n');
    writeFileSync(file, conf(true));
    expect((await proxy.reload(load(file).config)).ok).toBe(true);
    const tls = await execProc(['curl', '-sS', '--max-time', '5', '--cacert', pki.caCrt, '--resolve', `site.test:${port}:127.0.0.1`, `https://site.test:${port}/`], { timeoutMs: 10_000 });
    expect({ out: tls.stdout, err: tls.stderr }).toEqual({ out: 'ok\n', err: '' });
  });
});
