// `tsbal run` as shipped (the dist bundle under the system Node, whose OpenSSL binding staples OCSP; Bun's does not):
// an OCSP staple is served to `openssl s_client -status`, and SIGHUP brings a renewed certificate and staple.
// Also what only Node does on the read side: a TLS client socket reads into the shared buffer (runtime/socket-reads.ts).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { makePki, type TestPki } from '../../harness/certs.ts';
import { execProc, spawnProc, type ProcHandle } from '../../harness/proc.ts';
import { freePort, waitForPorts } from '../../harness/ports.ts';
import { DIST_BUNDLE } from '../../harness/tsbal.ts';
import { rawBackend, type RawBackend } from '../helpers.ts';

let pki: TestPki;
let backend: RawBackend;
let tsbal: ProcHandle | null = null;

beforeAll(async () => {
  pki = makePki();
  backend = await rawBackend('be');
});
afterAll(async () => {
  if (tsbal !== null && tsbal.exit() === null) {
    tsbal.kill('SIGKILL');
    await tsbal.exited;
  }
  await backend?.close();
  pki?.cleanup();
});

async function status(port: number): Promise<string> {
  const r = await execProc(['openssl', 's_client', '-connect', `127.0.0.1:${port}`, '-servername', 'site.test', '-status'], { timeoutMs: 10_000, input: '' });
  return r.stdout;
}

/** The server's certificate in s_client's output (the OCSP section before it prints the responder's). */
const servedCert = (out: string): string | undefined => /Server certificate\n(-----BEGIN CERTIFICATE-----[\s\S]+?-----END)/.exec(out)?.[1];

/** `tsbal run` (the bundle under Node) of one TLS site with a fresh certificate for site.test; `extra` adds SET lines. */
async function startSite(name: string, extra = ''): Promise<{ proc: ProcHandle; port: number }> {
  const leaf = pki.issue(name, ['site.test']);
  const port = await freePort();
  const conf = join(pki.dir, `${name}.conf`);
  writeFileSync(conf, `CREATE POOL p
  POOL p ADD 127.0.0.1:${backend.port}
CREATE SERVICE site
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
${extra}  SET enable_ssl = on
  SET ssl_cert_file = ${leaf.crt}
  SET ssl_key_file = ${leaf.key}
ENABLE site
`);
  const proc = spawnProc(['node', DIST_BUNDLE, 'run', '-c', conf], { label: `tsbal-${name}` });
  try {
    await waitForPorts([port], 15_000, () => (proc.exit() === null ? null : `tsbal exited: ${proc.stderr()}${proc.stdout()}`));
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  return { proc, port };
}

describe('tsbal run with TLS (dist bundle, Node)', () => {
  test('OCSP staple served; SIGHUP swaps in a renewed certificate and staple; a reload with an expired one keeps them', async () => {
    const certs = join(pki.dir, 'certs');
    mkdirSync(certs);
    const deploy = (name: string, opts: Parameters<TestPki['issue']>[2] = {}): void => {
      const leaf = pki.issue(name, ['site.test'], opts);
      copyFileSync(leaf.crt, join(certs, 'site.crt'));
      copyFileSync(leaf.key, join(certs, 'site.key'));
      pki.ocsp(leaf, join(certs, 'site.ocsp'));
    };
    deploy('one');
    const port = await freePort();
    const conf = join(pki.dir, 'perlbal.conf');
    writeFileSync(conf, `CREATE POOL p
  POOL p ADD 127.0.0.1:${backend.port}
CREATE SERVICE site
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
  SET enable_ssl = on
  SET ssl_cert_dir = ${certs}
ENABLE site
`);
    tsbal = spawnProc(['node', DIST_BUNDLE, 'run', '-c', conf], { label: 'tsbal' });
    await waitForPorts([port], 15_000, () => (tsbal!.exit() === null ? null : `tsbal exited: ${tsbal!.stderr()}${tsbal!.stdout()}`));
    const first = await status(port);
    expect(first).toMatch(/OCSP Response Status: successful/);
    expect(first).toMatch(/Cert Status: good/);
    const firstCert = servedCert(first);
    expect(firstCert).toBeDefined();

    deploy('two');
    tsbal.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    while (!/reload OK/.test(tsbal.stdout() + tsbal.stderr()) && Date.now() < deadline) await Bun.sleep(50);
    expect(tsbal.stdout() + tsbal.stderr()).toMatch(/new certificate .*site\.crt for site\.test, valid until/);
    const second = await status(port);
    expect(second).toMatch(/Cert Status: good/);
    const secondCert = servedCert(second);
    expect(secondCert).toBeDefined();
    expect(secondCert).not.toBe(firstCert);

    deploy('three', { from: new Date(Date.now() - 90 * 86_400_000), to: new Date(Date.now() - 86_400_000) });
    tsbal.kill('SIGHUP');
    const deadline2 = Date.now() + 10_000;
    while (!/reload FAILED/.test(tsbal.stdout() + tsbal.stderr()) && Date.now() < deadline2) await Bun.sleep(50);
    expect(tsbal.stdout() + tsbal.stderr()).toMatch(/perlbal\.conf:8: service site: certificate .*site\.crt \(site\.test\) expired on/);
    const third = await status(port);
    expect(servedCert(third)).toBe(secondCert!);
    expect(tsbal.exit()).toBeNull();
  }, 60_000);

  test('session tickets (Node): a resumed TLS 1.3 session brings a new ticket, so a one-ticket client keeps resuming', async () => {
    const { proc, port } = await startSite('renew');
    try {
      // Each connection resumes with the ticket the previous one brought (s_client keeps one, as wrk and curl do),
      // and reads the answer, so post-handshake tickets arrive before it saves the session.
      const results: string[] = [];
      for (let i = 0; i < 4; i++) {
        const args = ['-tls1_3', '-ign_eof', '-sess_out', join(pki.dir, `renew-${i}.sess`), ...(i === 0 ? [] : ['-sess_in', join(pki.dir, `renew-${i - 1}.sess`)])];
        const r = await execProc(['openssl', 's_client', '-connect', `127.0.0.1:${port}`, ...args], { timeoutMs: 10_000, input: 'GET / HTTP/1.0\r\n\r\n' });
        results.push(/^(New|Reused), TLSv1\.3/m.exec(r.stdout)?.[1] ?? `failed: ${r.stdout.slice(0, 200)}`);
      }
      expect(results).toEqual(['New', 'Reused', 'Reused', 'Reused']);
    } finally {
      proc.kill('SIGKILL');
      await proc.exited;
    }
  }, 60_000);

  test('session tickets (Node): a session resumes across SIGHUP (the key carries over) and not after ssl_ticket_rotation', async () => {
    const leaf = pki.issue('tickets', ['site.test']);
    const port = await freePort();
    const conf = join(pki.dir, 'tickets.conf');
    writeFileSync(conf, `CREATE POOL p
  POOL p ADD 127.0.0.1:${backend.port}
CREATE SERVICE site
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
  SET enable_ssl = on
  SET ssl_cert_file = ${leaf.crt}
  SET ssl_key_file = ${leaf.key}
  SET ssl_ticket_rotation = 6s
ENABLE site
`);
    const proc = spawnProc(['node', DIST_BUNDLE, 'run', '-c', conf], { label: 'tsbal-tickets' });
    try {
      await waitForPorts([port], 15_000, () => (proc.exit() === null ? null : `tsbal exited: ${proc.stderr()}${proc.stdout()}`));
      const t0 = Date.now();
      const sess = join(pki.dir, 'tickets.sess');
      const handshake = async (args: string[]): Promise<string> =>
        /^(New|Reused), TLSv1\.2/m.exec((await execProc(['openssl', 's_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', ...args], { timeoutMs: 10_000, input: '' })).stdout)?.[1] ?? 'failed';
      expect(await handshake(['-sess_out', sess])).toBe('New');
      expect(await handshake(['-sess_in', sess])).toBe('Reused');
      proc.kill('SIGHUP');
      const deadline = Date.now() + 10_000;
      while (!/reload OK/.test(proc.stdout() + proc.stderr()) && Date.now() < deadline) await Bun.sleep(50);
      expect(await handshake(['-sess_in', sess])).toBe('Reused');
      // The checks above must have run well inside the key's 6 s, or this test proves nothing.
      expect(Date.now() - t0).toBeLessThan(5_000);
      await Bun.sleep(Math.max(0, t0 + 6_500 - Date.now()));
      expect(await handshake(['-sess_in', sess])).toBe('New');
    } finally {
      proc.kill('SIGKILL');
      await proc.exited;
    }
  }, 60_000);

  test('a request whose head comes in three TLS records and whose 100 kB body spans several, then a second one on the same connection: the backend gets every byte, the client both answers', async () => {
    const { proc, port } = await startSite('split', '  SET persist_client = on\n');
    const before = backend.conns.length;
    try {
      const body = Buffer.alloc(100_000);
      for (let i = 0; i < body.length; i++) body[i] = 97 + (i % 26);
      const answers = await new Promise<string>((resolve, reject) => {
        let got = '';
        const c = tlsConnect({ port, host: '127.0.0.1', servername: 'site.test', ca: readFileSync(pki.caCrt) }, async () => {
          // Each write is its own TLS record, 40 ms apart: tsbal reads the head in three pieces.
          for (const part of ['POST /up', 'load HTTP/1.1\r\nHost: site.test\r\n', 'Content-Length: 100000\r\n\r\n']) {
            c.write(part);
            await Bun.sleep(40);
          }
          c.write(body);
        });
        c.on('data', (d: Buffer) => {
          got += d.toString('latin1');
          if ((got.match(/hello from be/g) ?? []).length === 1 && !got.includes('GET /second')) {
            got += 'GET /second\n';
            c.write('GET /second HTTP/1.1\r\nHost: site.test\r\n\r\n');
          }
          if ((got.match(/hello from be/g) ?? []).length === 2) {
            c.destroy();
            resolve(got);
          }
        });
        c.on('error', reject);
        setTimeout(() => reject(new Error(`no two answers in 10 s: ${JSON.stringify(got)}`)), 10_000).unref();
      });
      expect(answers.match(/^HTTP\/1\.1 200 OK/gm)?.length).toBe(2);
      const seen = backend.conns.slice(before).join('');
      const head = seen.indexOf('POST /upload HTTP/1.1\r\n');
      expect(head).toBeGreaterThanOrEqual(0);
      const start = seen.indexOf('\r\n\r\n', head) + 4;
      expect(seen.slice(start, start + 100_000)).toBe(body.toString('latin1'));
      expect(seen.slice(start + 100_000)).toMatch(/^GET \/second HTTP\/1\.1\r\n/);
    } finally {
      proc.kill('SIGKILL');
      await proc.exited;
    }
  }, 60_000);

  test('a TLS 1.2 client asking to renegotiate is refused (no_renegotiation alert), as HAProxy and nginx refuse it', async () => {
    const { proc, port } = await startSite('reneg');
    try {
      // s_client's `R` command starts a renegotiation; Node's OpenSSL would go through a second handshake.
      const sh = `(printf 'R\\n'; sleep 1) | openssl s_client -connect 127.0.0.1:${port} -tls1_2 -servername site.test -CAfile ${pki.caCrt}`;
      const r = await execProc(['sh', '-c', sh], { timeoutMs: 10_000 });
      const out = r.stdout + r.stderr;
      expect(out).toContain('RENEGOTIATING');
      expect(out).toMatch(/no renegotiation/);
      // One handshake only: the chain was verified once.
      expect(out.match(/^depth=0 /gm)?.length).toBe(1);
    } finally {
      proc.kill('SIGKILL');
      await proc.exited;
    }
  }, 30_000);
});
