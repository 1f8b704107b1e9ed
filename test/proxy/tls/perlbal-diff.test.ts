// tsbal against real Perlbal 1.80 (IO::Socket::SSL works on this machine) with the same enable_ssl config: both
// serve the certificate and proxy over TLS; they differ where docs/compat.md says: tsbal sends X-Forwarded-Proto:
// https, and refuses to start with a key that does not match its certificate (Perlbal starts, then fails every
// handshake). TLS versions: both refuse 1.0 and 1.1 on this OpenSSL (Perlbal through the security level, tsbal by
// its minimum), both speak 1.2 and 1.3, and both choose the cipher in the server's order (the lists differ).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePki, type Leaf, type TestPki } from '../../harness/certs.ts';
import { launchPerlbal, startWithConf, type PerlbalConfProxy } from '../../harness/perlbal.ts';
import { DIST_BUNDLE, launchTsbal } from '../../harness/tsbal.ts';
import { execProc } from '../../harness/proc.ts';
import { freePort } from '../../harness/ports.ts';
import { rawBackend, type RawBackend } from '../helpers.ts';

let pki: TestPki;
let leaf: Leaf;
let other: Leaf;
let backend: RawBackend;
const proxies: PerlbalConfProxy[] = [];

const conf = (port: number, key: string, cert: string): string => `CREATE POOL my_apaches
  POOL my_apaches ADD 127.0.0.1:${backend.port}
CREATE SERVICE site
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = my_apaches
  SET persist_client = on
  SET enable_ssl = on
  SET ssl_key_file = ${key}
  SET ssl_cert_file = ${cert}
ENABLE site
`;

function start(kind: 'perlbal' | 'tsbal'): Promise<PerlbalConfProxy> {
  return startWithConf(kind, 1, ([port]) => ({ text: conf(port!, leaf.key, leaf.crt), ready: [port!] }), kind === 'perlbal' ? launchPerlbal : launchTsbal({ kind: 'dist' }));
}

beforeAll(async () => {
  pki = makePki();
  leaf = pki.issue('site', ['site.test']);
  other = pki.issue('other', ['other.test']);
  backend = await rawBackend('be');
  proxies.push(await start('perlbal'), await start('tsbal'));
}, 60_000);
afterAll(async () => {
  for (const p of proxies) await p.stop();
  await backend?.close();
  pki?.cleanup();
});

async function sClient(port: number, args: string[]): Promise<string> {
  const r = await execProc(['openssl', 's_client', '-connect', `127.0.0.1:${port}`, ...args], { timeoutMs: 10_000, input: '' });
  return r.stdout + r.stderr;
}

describe('enable_ssl: tsbal beside Perlbal 1.80', () => {
  test('both serve the certificate and proxy the request; only tsbal adds X-Forwarded-Proto: https', async () => {
    const seen: Record<string, string> = {};
    for (const p of proxies) {
      const before = backend.conns.length;
      const r = await execProc(['curl', '-sS', '--max-time', '5', '--cacert', pki.caCrt, '--resolve', `site.test:${p.port}:127.0.0.1`, `https://site.test:${p.port}/diff`], { timeoutMs: 10_000 });
      expect({ kind: p.kind, out: r.stdout, err: r.stderr }).toEqual({ kind: p.kind, out: 'hello from be\n', err: '' });
      seen[p.kind] = backend.conns.slice(before).join('');
    }
    for (const kind of ['perlbal', 'tsbal']) {
      expect(seen[kind]).toMatch(/^GET \/diff HTTP\/1\.[01]\r\n/);
      expect(seen[kind]).toMatch(/\r\nX-Forwarded-For: 127\.0\.0\.1\r\n/);
    }
    expect(seen.perlbal).not.toMatch(/X-Forwarded-Proto/i);
    expect(seen.tsbal).toMatch(/\r\nX-Forwarded-Proto: https\r\n/);
  });

  test('the same protocol versions on both: 1.0 and 1.1 refused, 1.2 and 1.3 served', async () => {
    const version = async (port: number, flag: string): Promise<string> => {
      const out = await sClient(port, [flag, '-cipher', 'DEFAULT@SECLEVEL=0', '-servername', 'site.test']);
      return /^New, (TLSv1\.\d), Cipher is/m.exec(out)?.[1] ?? 'refused';
    };
    const table: Record<string, string[]> = {};
    for (const p of proxies) table[p.kind] = await Promise.all(['-tls1', '-tls1_1', '-tls1_2', '-tls1_3'].map((f) => version(p.port, f)));
    expect(table.perlbal).toEqual(['refused', 'refused', 'TLSv1.2', 'TLSv1.3']);
    expect(table.tsbal).toEqual(table.perlbal!);
  }, 20_000); // eight openssl s_client runs: past bun's 5 s default on a loaded machine

  test('cipher choice: both in their own order whatever the client prefers; Perlbal AES-256-GCM, tsbal AES-128-GCM first', async () => {
    const cipher = async (port: number, offer: string): Promise<string> => {
      const out = await sClient(port, ['-tls1_2', '-cipher', offer, '-servername', 'site.test']);
      return /^New, TLSv1\.2, Cipher is (\S+)/m.exec(out)?.[1] ?? 'refused';
    };
    const [perlbal, tsbal] = proxies;
    for (const offer of ['ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256']) {
      expect({ offer, perlbal: await cipher(perlbal!.port, offer), tsbal: await cipher(tsbal!.port, offer) })
        .toEqual({ offer, perlbal: 'ECDHE-ECDSA-AES256-GCM-SHA384', tsbal: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    }
  });

  test('a key that does not match: Perlbal starts and fails every handshake; tsbal refuses to start and says why', async () => {
    const port = await freePort();
    const perlbal = await startWithConf('perlbal', 1, ([p]) => ({ text: conf(p!, other.key, leaf.crt), ready: [p!] }), launchPerlbal);
    try {
      const r = await execProc(['curl', '-sS', '--max-time', '5', '--cacert', pki.caCrt, '--resolve', `site.test:${perlbal.port}:127.0.0.1`, `https://site.test:${perlbal.port}/`], { timeoutMs: 10_000 });
      expect(r.code).toBe(35);
    } finally {
      await perlbal.stop();
    }
    const file = join(pki.dir, 'mismatch.conf');
    writeFileSync(file, conf(port, other.key, leaf.crt));
    const t = await execProc(['node', DIST_BUNDLE, 'run', '-c', file], { timeoutMs: 20_000 });
    expect(t.code).not.toBe(0);
    expect(t.stdout + t.stderr).toMatch(/mismatch\.conf:9: service site: key file .*other\.key does not match the certificate in .*site\.crt/);
  }, 30_000);
});
