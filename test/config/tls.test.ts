// TLS files judged as `tsbal check`, `tsbal run` and a reload see them: each problem names the file and the config
// line that named it. Certificates are made by openssl for each case.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPerlbalConfigFile } from '../../src/config/perlbal.ts';
import { dumpConfig } from '../../src/proxy/management/dumpconfig.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';
import { makePki, type Leaf, type TestPki } from '../harness/certs.ts';
import { runTsbal } from '../harness/cli.ts';
import { runCheck } from '../../src/cli/check.ts';

let pki: TestPki;
let good: Leaf;
let other: Leaf;
const DAY = 86_400_000;

beforeAll(() => {
  pki = makePki();
  good = pki.issue('good', ['good.test']);
  other = pki.issue('other', ['other.test']);
  pki.issue('expired', ['expired.test'], { from: new Date(Date.now() - 90 * DAY), to: new Date(Date.now() - DAY) });
  pki.issue('soon', ['soon.test'], { to: new Date(Date.now() + 5 * DAY + 3_600_000) });
  copyFileSync(good.crt, join(pki.dir, 'mismatch.crt'));
  copyFileSync(other.key, join(pki.dir, 'mismatch.key'));
  chmodSync(join(pki.dir, 'mismatch.key'), 0o600);
  writeFileSync(join(pki.dir, 'notpem.crt'), Buffer.from([0x30, 0x82, 0x01, 0x00, 1, 2, 3]));
  copyFileSync(good.key, join(pki.dir, 'notpem.key'));
  chmodSync(join(pki.dir, 'notpem.key'), 0o600);
  copyFileSync(good.crt, join(pki.dir, 'open.crt'));
  copyFileSync(good.key, join(pki.dir, 'open.key'));
  chmodSync(join(pki.dir, 'open.key'), 0o644);
});
afterAll(() => pki?.cleanup());

/** Writes NAME.conf; line 6 is ssl_key_file, line 7 ssl_cert_file (relative to the PKI directory, or absolute). */
function writeConf(name: string, extra = '', dir = ''): string {
  const file = join(pki.dir, `${name}.conf`);
  writeFileSync(file, `CREATE POOL p
CREATE SERVICE s
  SET role = reverse_proxy
  SET listen = 127.0.0.1:8443
  SET pool = p
  SET ssl_key_file = ${dir}${name}.key
  SET ssl_cert_file = ${dir}${name}.crt
  SET enable_ssl = on
${extra}ENABLE s
`);
  return file;
}

/** The config's diagnostics, formatted. */
function check(name: string, extra = ''): string[] {
  const file = writeConf(name, extra);
  return readPerlbalConfigFile(file, { cwd: pki.dir }).diagnostics.filter((d) => !/no backends/.test(d.message)).map(formatDiagnostic);
}

describe('TLS files in the config check', () => {
  test('a good pair: nothing to say', () => {
    expect(check('good')).toEqual([]);
  });
  test('expired: an error on the ssl_cert_file line, naming file, names and date', () => {
    const [d, ...rest] = check('expired');
    expect(rest).toEqual([]);
    expect(d).toMatch(new RegExp(`expired\\.conf:7: service s: certificate ${pki.dir}/expired\\.crt \\(expired\\.test\\) expired on \\d{4}-\\d\\d-\\d\\d`));
  });
  test('expiring within 14 days: a warning with the days left', () => {
    expect(check('soon')).toEqual([expect.stringMatching(/soon\.conf:7: warning: service s: certificate .*soon\.crt \(soon\.test\) expires on .*, in 5 days/)]);
  });
  test('a key that does not match the certificate: an error on the ssl_key_file line', () => {
    expect(check('mismatch')).toEqual([expect.stringMatching(/mismatch\.conf:6: service s: key file .*mismatch\.key does not match the certificate in .*mismatch\.crt/)]);
  });
  test('a DER certificate: not PEM', () => {
    expect(check('notpem')).toEqual([expect.stringMatching(/notpem\.conf:7: service s: certificate file .*notpem\.crt is not PEM/)]);
  });
  test('a key readable by everyone is an error, like authkeys', () => {
    expect(check('open')).toEqual([expect.stringMatching(/open\.conf:6: service s: key file .*open\.key is readable by everyone \(mode 644\) \(run: chmod 600/)]);
  });
  test('a missing file fails its SET line, as in Perlbal, and nothing more is said about it', () => {
    expect(check('absent')).toEqual([
      expect.stringMatching(/absent\.conf:6: File 'absent\.key' not found for 'ssl_key_file'/),
      expect.stringMatching(/absent\.conf:7: File 'absent\.crt' not found for 'ssl_cert_file'/),
    ]);
  });
  test('enable_ssl with the default files absent: Perlbal\'s message on the enable_ssl line', () => {
    const file = join(pki.dir, 'defaults.conf');
    writeFileSync(file, 'CREATE POOL p\nCREATE SERVICE s\n  SET role = reverse_proxy\n  SET listen = 127.0.0.1:8443\n  SET pool = p\n  SET enable_ssl = on\nENABLE s\n');
    const got = readPerlbalConfigFile(file, { cwd: pki.dir }).diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
    expect(got).toEqual([
      expect.stringMatching(/defaults\.conf:6: SSL key file \(certs\/server-key\.pem\) doesn't exist/),
      expect.stringMatching(/defaults\.conf:6: SSL cert file \(certs\/server-cert\.pem\) doesn't exist/),
    ]);
  });
  test('a cipher list OpenSSL refuses is an error on its line', () => {
    expect(check('good', '  SET ssl_cipher_list = NOSUCHCIPHER\n')).toEqual([expect.stringMatching(/good\.conf:9: ssl_cipher_list 'NOSUCHCIPHER' is refused by OpenSSL/)]);
  });
  test('ssl_http2 on a service without enable_ssl is a warning on its line', () => {
    const file = join(pki.dir, 'plainh2.conf');
    writeFileSync(file, 'CREATE POOL p\nCREATE SERVICE s\n  SET role = reverse_proxy\n  SET listen = 127.0.0.1:8080\n  SET pool = p\n  SET ssl_http2 = on\nENABLE s\n');
    const got = readPerlbalConfigFile(file, { cwd: pki.dir }).diagnostics.filter((d) => !/no backends/.test(d.message)).map(formatDiagnostic);
    expect(got).toEqual([expect.stringMatching(/plainh2\.conf:6: warning: service s: ssl_http2 set but enable_ssl is off; it has no effect/)]);
  });
  test('http2_cleartext with enable_ssl is an error on its line (HTTP/2 over TLS comes by ALPN)', () => {
    expect(check('good', '  SET http2_cleartext = on\n')).toEqual([expect.stringMatching(/good\.conf:9: service s has both enable_ssl and http2_cleartext on/)]);
  });
  test('http2_cleartext on a plain listener is accepted; the summary says h2c', () => {
    const file = join(pki.dir, 'h2c.conf');
    writeFileSync(file, 'CREATE POOL p\nCREATE SERVICE s\n  SET role = reverse_proxy\n  SET listen = 127.0.0.1:8080\n  SET pool = p\n  SET http2_cleartext = on\nENABLE s\n');
    const r = readPerlbalConfigFile(file, { cwd: pki.dir });
    expect(r.diagnostics.filter((d) => !/no backends/.test(d.message)).map(formatDiagnostic)).toEqual([]);
  });
  test('redirect_https on the TLS service itself is an error', () => {
    expect(check('good', '  SET redirect_https = on\n')).toEqual([expect.stringMatching(/good\.conf:9: service s has both enable_ssl and redirect_https on/)]);
  });
  test('tsbal check prints the same, and fails', async () => {
    const file = writeConf('expired', '', `${pki.dir}/`);
    const r = await runTsbal(['check', '-c', file, '--ha-dir', join(pki.dir, 'no-ha')]);
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).toMatch(/expired\.conf:7: service s: certificate .*expired\.crt \(expired\.test\) expired on/);
  });
  test('check passes a good TLS config and says TLS, HTTP/2 (unless ssl_http2 = off, which dumpconfig keeps) and HTTPS in its summary', async () => {
    const file = join(pki.dir, 'summary.conf');
    writeFileSync(file, `CREATE POOL p
  POOL p ADD 127.0.0.1:8443
  SET backend_ssl = on
  SET backend_ssl_ca = ${pki.caCrt}
CREATE SERVICE s
  SET role = reverse_proxy
  SET listen = 127.0.0.1:8443
  SET pool = p
  SET enable_ssl = on
  SET ssl_key_file = ${good.key}
  SET ssl_cert_file = ${good.crt}
ENABLE s
`);
    const r = runCheck({ config: file, haDir: { path: join(pki.dir, 'no-ha'), required: false }, cwd: pki.dir });
    expect({ ok: r.ok, stderr: r.stderr }).toEqual({ ok: true, stderr: [] });
    const out = r.stdout.join('\n');
    // HTTP/2 is on by default on a TLS listener, as `tsbal run` serves it.
    expect(out).toMatch(/service s\s+reverse_proxy\s+listen 127\.0\.0\.1:8443\s+pool p; TLS; HTTP\/2\n/);
    expect(out).toMatch(/pool\s+p\s+random\s+127\.0\.0\.1:8443 over HTTPS/);
    expect(dumpConfig(readPerlbalConfigFile(file, { cwd: pki.dir }).value)).not.toContain('  SET ssl_http2 = 0');
    writeFileSync(file, readFileSync(file, 'utf8').replace('ENABLE s', '  SET ssl_http2 = off\nENABLE s'));
    const off = runCheck({ config: file, haDir: { path: join(pki.dir, 'no-ha'), required: false }, cwd: pki.dir });
    expect(off.stdout.join('\n')).toMatch(/pool p; TLS\n/);
    // The running config says so too (dumpconfig on the management port), so a replay keeps it off.
    expect(dumpConfig(readPerlbalConfigFile(file, { cwd: pki.dir }).value)).toContain('  SET ssl_http2 = 0');
  });
});

describe('backend_ssl in the config check', () => {
  function poolCheck(lines: string): string[] {
    const file = join(pki.dir, 'pool.conf');
    writeFileSync(file, `CREATE POOL p\n  POOL p ADD 127.0.0.1:8443\n${lines}CREATE SERVICE s\n  SET role = reverse_proxy\n  SET listen = 127.0.0.1:8080\n  SET pool = p\nENABLE s\n`);
    return readPerlbalConfigFile(file, { cwd: pki.dir }).diagnostics.map(formatDiagnostic);
  }
  test('verification off is a warning; backend_ssl_* without backend_ssl is a warning', () => {
    expect(poolCheck('  SET backend_ssl = on\n  SET backend_ssl_verify = off\n')).toEqual([expect.stringMatching(/pool\.conf:1: warning: pool p: backend_ssl_verify is off/)]);
    expect(poolCheck('  SET backend_ssl_sni = backend.test\n')).toEqual([expect.stringMatching(/pool\.conf:1: warning: pool p: backend_ssl_sni set but backend_ssl is off/)]);
  });
  test('a backend_ssl_ca that is not PEM is an error', () => {
    writeFileSync(join(pki.dir, 'ca.der'), Buffer.from([0x30, 0x82, 0, 0]));
    expect(poolCheck('  SET backend_ssl = on\n  SET backend_ssl_ca = ca.der\n')).toEqual([expect.stringMatching(/pool\.conf:1: pool p: backend_ssl_ca .*ca\.der holds no PEM certificate/)]);
  });
});
