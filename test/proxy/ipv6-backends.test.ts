// tsbal's IPv6 backends and IPv6 client rules over real sockets: a reverse_proxy on 127.0.0.1 proxies to a backend
// on [::1] (health-checked), the console adds and shows one bracketed; ACCESS netmasks and trusted_upstream_proxies
// with IPv6 decide for an IPv6 client on a [::1] listener.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { readPerlbalConfig } from '../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';
import { startProxy, type ProxyHandle } from '../../src/proxy/index.ts';
import { waitFor } from '../harness/proc.ts';
import { quietLog } from './helpers.ts';

interface Backend { server: Server; port: number; seen: IncomingHttpHeaders[]; checks: IncomingHttpHeaders[] }

async function backend(name: string, host: string): Promise<Backend> {
  const b: Backend = { server: createServer(), port: 0, seen: [], checks: [] };
  b.server.on('request', (req, res) => {
    (req.url === '/health' ? b.checks : b.seen).push(req.headers);
    res.setHeader('X-Backend', name);
    res.end(`hello from ${name}\n`);
  });
  await new Promise<void>((r) => b.server.listen(0, host, r));
  b.port = (b.server.address() as AddressInfo).port;
  return b;
}

/** Writes `text` to `host`:`port` and reads until the peer closes; bounded by 5 s. */
function exchange(host: string, port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let data = '';
    s.setTimeout(5000, () => { s.destroy(); reject(new Error(`no end from ${host} port ${port} in 5 s: ${data}`)); });
    s.on('connect', () => s.write(text));
    s.on('data', (d) => { data += d.toString('latin1'); });
    s.on('close', () => resolve(data));
    s.on('error', reject);
  });
}
const get = (host: string, port: number, path: string, extra = ''): Promise<string> => exchange(host, port, `GET ${path} HTTP/1.0\r\nHost: lb\r\n${extra}\r\n`);

let v6: Backend;
let v6b: Backend;
let proxy: ProxyHandle;
const ports: Record<string, number> = {};

beforeAll(async () => {
  v6 = await backend('v6', '::1');
  v6b = await backend('v6b', '::1');
  const svc = (name: string, listen: string, extra: string): string =>
    `CREATE SERVICE ${name}\n  SET role = reverse_proxy\n  SET pool = p\n  SET listen = ${listen}\n${extra}ENABLE ${name}\n`;
  const text = `LOAD AccessControl\nCREATE POOL p\n  SET health_check_path = /health\n  SET health_check_interval = 200ms\n  SET health_check_timeout = 150ms\n` +
    `  POOL p ADD [0:0::1]:${v6.port}\nCREATE POOL empty\n` +
    svc('web', '127.0.0.1:0', '') +
    svc('allow6', '[::1]:0', '  SET plugins = accesscontrol\n  ACCESS POLICY deny\n  ACCESS ALLOW netmask ::1/128\n') +
    svc('deny6', '[::1]:0', '  SET plugins = accesscontrol\n  ACCESS POLICY allow\n  ACCESS DENY netmask ::/64\n') +
    svc('other6', '[::1]:0', '  SET plugins = accesscontrol\n  ACCESS POLICY deny\n  ACCESS ALLOW netmask 2001:db8::/32\n  ACCESS ALLOW ip 127.0.0.1\n') +
    svc('trusting6', '[::1]:0', '  SET trusted_upstream_proxies = ::1\n') +
    'CREATE SERVICE mgmt\n  SET role = management\n  SET listen = 127.0.0.1:0\nENABLE mgmt\n';
  const r = readPerlbalConfig(text, { file: 'v6pool.conf' });
  const errors = r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  if (errors.length > 0 || r.value === null) throw new Error(errors.join('\n'));
  proxy = await startProxy(r.value, { log: quietLog });
  for (const l of proxy.listeners()) ports[l.service] = l.port;
});

afterAll(async () => {
  await proxy?.close({ graceful: false });
  for (const b of [v6, v6b]) if (b !== undefined) await new Promise((r) => b.server.close(r));
});

describe('a backend on [::1]', () => {
  test('is health-checked with a bracketed Host and proxied to from a 127.0.0.1 listener; Host and X-Forwarded-For as for IPv4', async () => {
    await waitFor('a health check on the [::1] backend', () => (v6.checks.length > 0 ? true : undefined), { timeoutMs: 5_000 });
    expect(v6.checks[0]!.host).toBe(`[::1]:${v6.port}`);
    const res = await get('127.0.0.1', ports.web!, '/a', 'X-Path: a\r\n');
    expect(res).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(res).toContain('hello from v6');
    const seen = v6.seen.find((h) => h['x-path'] === 'a')!;
    expect(seen.host).toBe('lb');
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
  });

  test('the console adds one with pool add [::1]:P and shows pools and nodes bracketed', async () => {
    const out = await exchange('127.0.0.1', ports.mgmt!, `pool add empty [::1]:${v6b.port}\r\npool p drain [::1]:${v6.port}\r\nshow pool\r\nnodes\r\ndumpconfig\r\npool p ready [::1]:${v6.port}\r\nquit\r\n`);
    expect(out).not.toMatch(/ERROR/);
    expect(out).toContain(`[::1]:${v6b.port}`);
    expect(out).toMatch(new RegExp(`^\\[::1\\]:${v6.port} `, 'm'));
    expect(out).toContain(`POOL ADD p [::1]:${v6.port}`);
    expect(out).toContain(`POOL ADD empty [::1]:${v6b.port}`);
  });

  test('the console refuses a bad IPv6 backend and keeps the pool as it was', async () => {
    const out = await exchange('127.0.0.1', ports.mgmt!, 'pool add empty [::g]:80\r\npool add empty [::1]:70000\r\ndumpconfig\r\nquit\r\n');
    expect(out.split(/\r?\n/).filter((l) => l.startsWith('ERROR')).length).toBe(2);
    expect(out.split(/\r?\n/).filter((l) => l.includes('POOL ADD empty'))).toEqual([`  POOL ADD empty [::1]:${v6b.port}`]);
  });
});

describe('IPv6 client rules on a [::1] listener', () => {
  test('ACCESS ALLOW netmask ::1/128 lets ::1 in under POLICY deny', async () => {
    expect(await get('::1', ports.allow6!, '/b')).toMatch(/^HTTP\/1\.[01] 200 /);
  });
  test('ACCESS DENY netmask ::/64 keeps ::1 out under POLICY allow', async () => {
    expect(await get('::1', ports.deny6!, '/c')).toMatch(/^HTTP\/1\.[01] 403 /);
  });
  test('an IPv6 netmask that does not hold ::1 (and an IPv4 ip rule) leave it to POLICY deny', async () => {
    expect(await get('::1', ports.other6!, '/d')).toMatch(/^HTTP\/1\.[01] 403 /);
  });
  test('trusted_upstream_proxies = ::1 keeps the X-Forwarded-For the client sent and appends ::1', async () => {
    expect(await get('::1', ports.trusting6!, '/e', 'X-Path: e\r\nX-Forwarded-For: 203.0.113.9\r\n')).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(v6.seen.find((h) => h['x-path'] === 'e')!['x-forwarded-for']).toBe('203.0.113.9, ::1');
  });
});
