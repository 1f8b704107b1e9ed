// TLS on a listener, end to end with real clients: certificates made by openssl, curl and `openssl s_client` in front
// of tsbal (in process), raw backends behind it that record exactly what they receive.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPerlbalConfigFile } from '../../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../../src/config/errors.ts';
import { startProxy, type ProxyHandle } from '../../../src/proxy/index.ts';
import { makePki, type Leaf, type TestPki } from '../../harness/certs.ts';
import { execProc } from '../../harness/proc.ts';
import { freePort } from '../../harness/ports.ts';
import { quietLog, rawBackend, rawRequest, type RawBackend } from '../helpers.ts';
import { TICKET_KEY_LIFETIME_MS, ticketKeysDue } from '../../../src/proxy/tls/tickets.ts';

let pki: TestPki;
let a: Leaf;
let b: Leaf;
let backend: RawBackend;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  pki = makePki();
  a = pki.issue('a', ['a.test', 'www.a.test']);
  b = pki.issue('b', ['b.test', '*.b.test'], { dir: join(pki.dir, 'sni') });
  pki.issue('c', ['c.test'], { dir: join(pki.dir, 'sni'), key: 'rsa' });
  backend = await rawBackend('be');
});
afterAll(async () => {
  await backend?.close();
  pki?.cleanup();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Starts tsbal in process on `perlbal.conf` text (in the PKI directory); `$PORT` and `$BACKEND` are filled in. */
async function start(conf: string, name = 'perlbal.conf'): Promise<{ proxy: ProxyHandle; port: number }> {
  const port = await freePort();
  const file = join(pki.dir, name);
  writeFileSync(file, conf.replaceAll('$PORT', String(port)).replaceAll('$BACKEND', String(backend.port)));
  const parsed = readPerlbalConfigFile(file, { cwd: pki.dir });
  const errors = parsed.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(errors.map(formatDiagnostic).join('\n'));
  const proxy = await startProxy(parsed.value, { log: quietLog });
  cleanups.push(() => proxy.close({ graceful: false }));
  return { proxy, port };
}

const site = (tls: string): string => `CREATE POOL p
  POOL p ADD 127.0.0.1:$BACKEND
CREATE SERVICE site
  SET listen = 127.0.0.1:$PORT
  SET role = reverse_proxy
  SET pool = p
  SET persist_client = on
  SET enable_ssl = on
${tls}
ENABLE site
`;

async function curl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await execProc(['curl', '-sS', '--max-time', '5', ...args], { timeoutMs: 10_000 });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

async function sClient(port: number, args: string[]): Promise<string> {
  const r = await execProc(['openssl', 's_client', '-connect', `127.0.0.1:${port}`, ...args], { timeoutMs: 10_000, input: '' });
  return r.stdout + r.stderr;
}

describe('TLS listener', () => {
  test('Perlbal ssl_cert_file/ssl_key_file: curl verifies the chain and the backend sees X-Forwarded-Proto: https', async () => {
    const { port } = await start(site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt`));
    const before = backend.conns.length;
    const r = await curl(['--cacert', pki.caCrt, '--resolve', `a.test:${port}:127.0.0.1`, `https://a.test:${port}/hello`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('be');
    const got = backend.conns.slice(before).join('');
    expect(got).toContain('GET /hello HTTP/1.1');
    expect(got).toMatch(/X-Forwarded-Proto: https\r\n/);
  });

  test('a ticket key rotation is survived where the runtime cannot set ticket keys (Bun, which runs this test): still serving after it', async () => {
    const { port } = await start(site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt\n  SET ssl_ticket_rotation = 1s`));
    const get = () => curl(['--cacert', pki.caCrt, '--resolve', `a.test:${port}:127.0.0.1`, `https://a.test:${port}/`]);
    expect((await get()).code).toBe(0);
    // Past the 1 s key lifetime, and past the sweep (every 100 ms) that rotates it.
    await Bun.sleep(1_600);
    const after = await get();
    expect(after.stderr).toBe('');
    expect(after.code).toBe(0);
  });

  test('a client that claims X-Forwarded-Proto: http over TLS is overwritten with https (HTTP/1.1 and HTTP/2)', async () => {
    const { port } = await start(site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt`));
    for (const version of ['--http1.1', '--http2']) {
      const before = backend.conns.length;
      const r = await curl(['--cacert', pki.caCrt, version, '-H', 'X-Forwarded-Proto: http', '--resolve', `a.test:${port}:127.0.0.1`, `https://a.test:${port}/`]);
      expect(r.code).toBe(0);
      const got = backend.conns.slice(before).join('');
      // HTTP/2 header names arrive lowercase (RFC 9113), and a field tsbal rewrites keeps the client's spelling.
      expect({ version, fields: got.match(/\r\nX-Forwarded-Proto: [^\r]*/gi) }).toEqual({ version, fields: ['\r\n' + (version === '--http2' ? 'x-forwarded-proto' : 'X-Forwarded-Proto') + ': https'] });
    }
  });

  test('SNI picks the certificate by server name (exact and wildcard); no or unknown name gets the default', async () => {
    const { port } = await start(site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt\n  SET ssl_cert_dir = sni`));
    for (const [name, ok] of [['a.test', true], ['b.test', true], ['x.b.test', true], ['c.test', true], ['www.a.test', true]] as const) {
      const r = await curl(['--cacert', pki.caCrt, '--resolve', `${name}:${port}:127.0.0.1`, `https://${name}:${port}/`]);
      expect({ name, stderr: r.stderr, code: r.code }).toEqual({ name, stderr: '', code: ok ? 0 : 60 });
    }
    // An unknown name is answered with the default (a.test), which curl then refuses for that name.
    const unknown = await curl(['--cacert', pki.caCrt, '--resolve', `zzz.test:${port}:127.0.0.1`, `https://zzz.test:${port}/`]);
    expect(unknown.code).toBe(60);
    const noName = await sClient(port, ['-noservername']);
    expect(noName).toContain('CN = a.test');
    const rsa = await sClient(port, ['-servername', 'c.test']);
    expect(rsa).toMatch(/Server public key is 2048 bit/);
  });

  test('ssl_cert_dir alone: the first pair in name order is the default', async () => {
    const { port } = await start(site(`  SET ssl_cert_dir = sni`));
    expect(await sClient(port, ['-noservername'])).toContain('CN = b.test');
    expect(await sClient(port, ['-servername', 'c.test'])).toContain('CN = c.test');
  });

  test('TLS 1.0 and 1.1 are refused; 1.2 (forward-secret AEAD only, server order) and 1.3 are served', async () => {
    const { port } = await start(site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt`));
    for (const old of ['-tls1', '-tls1_1']) {
      const out = await sClient(port, [old, '-cipher', 'DEFAULT@SECLEVEL=0']);
      expect(out).toMatch(/alert protocol version|no protocols available|unsupported protocol/);
    }
    const t12 = await sClient(port, ['-tls1_2']);
    expect(t12).toMatch(/New, TLSv1\.2,/);
    expect(t12).toMatch(/Cipher\s*: ECDHE-ECDSA-AES128-GCM-SHA256/);
    // The server's order: a client preferring AES-256 still gets AES-128-GCM, the first of tsbal's list.
    const order = await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256']);
    expect(order).toMatch(/Cipher\s*: ECDHE-ECDSA-AES128-GCM-SHA256/);
    expect(order).toMatch(/Compression: NONE/);
    // CBC ciphers are not offered at all.
    expect(await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384'])).toMatch(/Cipher is \(NONE\)/);
    expect(await sClient(port, ['-tls1_3'])).toMatch(/New, TLSv1\.3, Cipher is TLS_AES_256_GCM_SHA384/);
  });

  test('ssl_cipher_list as written is honoured for TLS 1.2', async () => {
    const { port } = await start(site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt\n  SET ssl_cipher_list = ECDHE-ECDSA-CHACHA20-POLY1305`));
    expect(await sClient(port, ['-tls1_2'])).toMatch(/Cipher\s*: ECDHE-ECDSA-CHACHA20-POLY1305/);
    expect(await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-GCM-SHA384'])).toMatch(/handshake failure|no shared cipher|Cipher is \(NONE\)/);
  });

  test('session tickets resume a TLS 1.2 session, also on an SNI certificate', async () => {
    const { port } = await start(site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt\n  SET ssl_cert_dir = sni`));
    for (const name of ['a.test', 'b.test']) {
      const sess = join(pki.dir, `sess-${name}`);
      expect(await sClient(port, ['-tls1_2', '-servername', name, '-sess_out', sess])).toMatch(/TLS session ticket:/);
      expect(await sClient(port, ['-tls1_2', '-servername', name, '-sess_in', sess])).toMatch(/^Reused, TLSv1\.2/m);
    }
  });

  test('ticketKeysDue: after the lifetime, not before', () => {
    expect(ticketKeysDue({ key: Buffer.alloc(48), since: 1000 }, 1000 + TICKET_KEY_LIFETIME_MS - 1)).toBe(false);
    expect(ticketKeysDue({ key: Buffer.alloc(48), since: 1000 }, 1000 + TICKET_KEY_LIFETIME_MS)).toBe(true);
  });

  test('ssl_verify_mode 3 with ssl_ca_path: a client without a certificate is refused, one with a CA-signed one served', async () => {
    const client = pki.issue('client', ['client.test'], { dir: join(pki.dir, 'clients'), usage: 'clientAuth' });
    // The CA is what verifies: the directory holds the CA (c_rehash style, under any name).
    writeFileSync(join(pki.dir, 'clients', 'ca.pem'), await Bun.file(pki.caCrt).text());
    const { port: port2 } = await start(site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt\n  SET ssl_ca_path = ${pki.dir}/clients\n  SET ssl_verify_mode = 3`), 'verify.conf');
    const none = await curl(['--cacert', pki.caCrt, '--resolve', `a.test:${port2}:127.0.0.1`, `https://a.test:${port2}/`]);
    expect(none.code).not.toBe(0);
    const ok = await curl(['--cacert', pki.caCrt, '--cert', client.crt, '--key', client.key, '--resolve', `a.test:${port2}:127.0.0.1`, `https://a.test:${port2}/`]);
    expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
  });

  test('a vhosts selector over TLS: SNI picks the certificate, Host picks the service, the target sees https', async () => {
    const { port } = await start(`LOAD vhosts
CREATE POOL p
  POOL p ADD 127.0.0.1:$BACKEND
CREATE SERVICE app
  SET role = reverse_proxy
  SET pool = p
CREATE SERVICE sel
  SET listen = 127.0.0.1:$PORT
  SET role = selector
  SET plugins = vhosts
  SET enable_ssl = on
  SET ssl_key_file = a.key
  SET ssl_cert_file = a.crt
  SET ssl_cert_dir = sni
  VHOST *.b.test = app
ENABLE sel
`, 'selector.conf');
    const before = backend.conns.length;
    const r = await curl(['--cacert', pki.caCrt, '--resolve', `x.b.test:${port}:127.0.0.1`, `https://x.b.test:${port}/via-selector`]);
    expect({ code: r.code, stderr: r.stderr, out: r.stdout }).toEqual({ code: 0, stderr: '', out: 'hello from be\n' });
    const got = backend.conns.slice(before).join('');
    expect(got).toContain('GET /via-selector HTTP/1.1');
    expect(got).toMatch(/X-Forwarded-Proto: https\r\n/);
  });

  test('sticky = cookie: the affinity cookie is Secure for a TLS client, not for a plain one', async () => {
    const plainPort = await freePort();
    const secret = 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0';
    const conf = site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt\n  SET sticky = cookie\n  SET sticky_secret = ${secret}`) + `CREATE SERVICE plain
  SET listen = 127.0.0.1:${plainPort}
  SET role = reverse_proxy
  SET pool = p
  SET sticky = cookie
  SET sticky_secret = ${secret}
ENABLE plain
`;
    const { port } = await start(conf, 'sticky.conf');
    const tls = await curl(['-D', '-', '-o', '/dev/null', '--cacert', pki.caCrt, '--resolve', `a.test:${port}:127.0.0.1`, `https://a.test:${port}/`]);
    expect(tls.stdout).toMatch(/\r\nSet-Cookie: TSBALID=[^;\r]+; Path=\/; HttpOnly; SameSite=Lax; Secure\r\n/i);
    const plain = await curl(['-D', '-', '-o', '/dev/null', `http://127.0.0.1:${plainPort}/`]);
    expect(plain.stdout).toMatch(/\r\nSet-Cookie: TSBALID=[^;\r]+; Path=\/; HttpOnly; SameSite=Lax\r\n/i);
  });

  test('XFFExtras over TLS: X-Forwarded-Port is the TLS port and X-Forwarded-Proto https, once', async () => {
    const { port } = await start('LOAD XFFExtras\n' + site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt\n  SET plugins = xffextras\n  SET send_backend_port = on\n  SET send_backend_proto = on`), 'xff.conf');
    const before = backend.conns.length;
    const r = await curl(['--cacert', pki.caCrt, '--resolve', `a.test:${port}:127.0.0.1`, `https://a.test:${port}/xff`]);
    expect(r.code).toBe(0);
    const got = backend.conns.slice(before).join('');
    expect(got).toMatch(new RegExp(`\\r\\nX-Forwarded-Port: ${port}\\r\\n`));
    expect(got.match(/X-Forwarded-Proto: [a-z]+/gi)).toEqual(['X-Forwarded-Proto: https']);
  });

  test('a web_server service serves files over TLS', async () => {
    writeFileSync(join(pki.dir, 'index.html'), 'hello over tls\n');
    const { port } = await start(`CREATE SERVICE files
  SET listen = 127.0.0.1:$PORT
  SET role = web_server
  SET docroot = ${pki.dir}
  SET enable_ssl = on
  SET ssl_key_file = a.key
  SET ssl_cert_file = a.crt
ENABLE files
`);
    const r = await curl(['--cacert', pki.caCrt, '--resolve', `a.test:${port}:127.0.0.1`, `https://a.test:${port}/index.html`]);
    expect(r.stdout).toBe('hello over tls\n');
  });

  test('plain HTTP to a TLS port gets no HTTP answer (the handshake fails) and the listener keeps serving', async () => {
    const { port } = await start(site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt`));
    const plain = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a.test\r\n\r\n', { timeoutMs: 3000 });
    expect(plain.data).not.toContain('HTTP/1.1 200');
    const r = await curl(['--cacert', pki.caCrt, '--resolve', `a.test:${port}:127.0.0.1`, `https://a.test:${port}/`]);
    expect(r.code).toBe(0);
  });
});

describe('redirect_https', () => {
  test('a plain service redirects GET with 301 and POST with 308 to the HTTPS port, refuses a Host-less request (400); curl -L lands on the TLS service', async () => {
    const plainPort = await freePort();
    const conf = site(`  SET ssl_key_file = a.key\n  SET ssl_cert_file = a.crt`) + `CREATE SERVICE plain
  SET listen = 127.0.0.1:${plainPort}
  SET role = reverse_proxy
  SET pool = p
  SET redirect_https = on
  SET redirect_https_port = $PORT
ENABLE plain
`;
    const { port } = await start(conf, 'redirect.conf');
    const get = await rawRequest(plainPort, 'GET /x?y=1 HTTP/1.1\r\nHost: a.test:80\r\nConnection: close\r\n\r\n', { timeoutMs: 3000 });
    expect(get.data).toMatch(/^HTTP\/1\.[01] 301 /);
    expect(get.data).toContain(`Location: https://a.test:${port}/x?y=1\r\n`);
    const post = await rawRequest(plainPort, 'POST /form HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', { timeoutMs: 3000 });
    expect(post.data).toMatch(/^HTTP\/1\.[01] 308 /);
    // HTTP/1.0 without Host: nowhere to redirect to, and nothing is served over plain HTTP.
    const before0 = backend.conns.length;
    const hostless = await rawRequest(plainPort, 'GET /secret HTTP/1.0\r\n\r\n', { timeoutMs: 3000 });
    expect(hostless.data).toMatch(/^HTTP\/1\.[01] 400 /);
    expect(backend.conns.slice(before0).join('')).not.toContain('/secret');
    const before = backend.conns.length;
    const r = await curl(['-L', '--cacert', pki.caCrt, '--resolve', `a.test:${port}:127.0.0.1`, '--resolve', `a.test:${plainPort}:127.0.0.1`, `http://a.test:${plainPort}/followed`]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const got = backend.conns.slice(before).join('');
    expect(got).toContain('GET /followed HTTP/1.1');
    expect(got).toMatch(/X-Forwarded-Proto: https\r\n/);
  });
});
