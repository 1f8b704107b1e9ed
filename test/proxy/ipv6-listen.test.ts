// A service on an IPv6 address (`SET listen = [::1]:PORT`, tsbal only), over real sockets: what the backend is told
// about an IPv6 client, and that the IPv4-only client rules (trusted proxies, ACCESS netmask, source affinity) take
// one without failing.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../harness/proc.ts';
import type { AddressInfo } from 'node:net';
import { readPerlbalConfig } from '../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';
import { startProxy, type ProxyHandle } from '../../src/proxy/index.ts';
import { quietLog } from './helpers.ts';

interface Backend { server: Server; port: number; seen: IncomingHttpHeaders[] }

async function backend(name: string): Promise<Backend> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    if (req.method !== 'OPTIONS') seen.push(req.headers);
    res.setHeader('X-Backend', name);
    res.end(`hello from ${name}\n`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

/** One HTTP/1.0 request to `[host]:port`; the whole response. Bounded by a 5 s timeout. */
function get(host: string, port: number, path: string, extra = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let data = '';
    s.setTimeout(5000, () => { s.destroy(); reject(new Error(`no answer from [${host}]:${port} in 5 s`)); });
    s.on('connect', () => s.write(`GET ${path} HTTP/1.0\r\nHost: lb\r\n${extra}\r\n`));
    s.on('data', (d) => { data += d.toString('latin1'); });
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

const ports: Record<string, number> = {};
const logDir = mkdtempSync(join(tmpdir(), 'tsbal-ipv6-log-'));
const ACCESS_LOG = join(logDir, 'access.log');
let proxy: ProxyHandle;
const backends: Backend[] = [];

function config(b: Backend[]): string {
  const svc = (name: string, extra: string): string =>
    `CREATE SERVICE ${name}\n  SET role = reverse_proxy\n  SET pool = p\n  SET listen = [::1]:0\n${extra}ENABLE ${name}\n`;
  return `LOAD AccessControl\nCREATE POOL p\n${b.map((x) => `  POOL p ADD 127.0.0.1:${x.port}\n`).join('')}` +
    svc('plain', '') +
    svc('trusting', '  SET trusted_upstream_proxies = 10.0.0.0/8, 127.0.0.1\n') +
    svc('acl', '  SET plugins = accesscontrol\n  ACCESS POLICY deny\n  ACCESS ALLOW netmask 127.0.0.0/8\n') +
    svc('acl4', '  SET plugins = accesscontrol\n  ACCESS POLICY allow\n  ACCESS DENY netmask 0.0.0.0/0\n') +
    svc('sticky', '  SET sticky = source\n') +
    svc('always', '  SET always_trusted = on\n') +
    svc('logged', `  SET access_log = ${ACCESS_LOG}\n`);
}

beforeAll(async () => {
  backends.push(await backend('b1'), await backend('b2'));
  const r = readPerlbalConfig(config(backends), { file: 'ipv6.conf' });
  const errors = r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  if (errors.length > 0 || r.value === null) throw new Error(errors.join('\n'));
  proxy = await startProxy(r.value, { log: quietLog });
  for (const l of proxy.listeners()) ports[l.service] = l.port;
});

afterAll(async () => {
  await proxy?.close({ graceful: false });
  for (const b of backends) await new Promise((r) => b.server.close(r));
  rmSync(logDir, { recursive: true, force: true });
});

const allSeen = (): IncomingHttpHeaders[] => backends.flatMap((b) => b.seen);
const lastSeen = (path: string): IncomingHttpHeaders => {
  const h = allSeen().find((x) => x['x-path'] === path);
  if (h === undefined) throw new Error(`no backend saw ${path}`);
  return h;
};

describe('a reverse_proxy listening on [::1]', () => {
  test('listens on ::1 and nowhere else', () => {
    expect(proxy.listeners().map((l) => l.host)).toEqual(['::1', '::1', '::1', '::1', '::1', '::1', '::1']);
  });

  test('proxies to the backend, which sees X-Forwarded-For and X-Real-IP ::1', async () => {
    const res = await get('::1', ports.plain!, '/a', 'X-Path: a\r\n');
    expect(res).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(lastSeen('a')['x-forwarded-for']).toBe('::1');
    expect(lastSeen('a')['x-real-ip']).toBe('::1');
  });

  test('an IPv6 client is not matched by IPv4 trusted_upstream_proxies: its X-Forwarded-For is replaced, not appended', async () => {
    const res = await get('::1', ports.trusting!, '/b', 'X-Path: b\r\nX-Forwarded-For: 10.1.1.1\r\n');
    expect(res).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(lastSeen('b')['x-forwarded-for']).toBe('::1');
  });

  test('the access log starts the line with the IPv6 client address', async () => {
    expect(await get('::1', ports.logged!, '/logged', 'X-Path: l\r\n')).toMatch(/^HTTP\/1\.[01] 200 /);
    const line = await waitFor('the access log line', () => (existsSync(ACCESS_LOG) ? readFileSync(ACCESS_LOG, 'utf8').split('\n').find((l) => l.includes('/logged')) : undefined), { timeoutMs: 5_000 });
    expect(line).toMatch(/^::1 - - \[[^\]]+\] "GET \/logged HTTP\/1\.0" 200 /);
  });

  test('a trusted IPv6 client: its address is appended to the X-Forwarded-For it sent', async () => {
    expect(await get('::1', ports.always!, '/t', 'X-Path: t\r\nX-Forwarded-For: 203.0.113.9\r\n')).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(lastSeen('t')['x-forwarded-for']).toBe('203.0.113.9, ::1');
  });

  test('ACCESS: an IPv6 client matches no IPv4 netmask (0.0.0.0/0 included), so the policy decides', async () => {
    expect(await get('::1', ports.acl!, '/c', 'X-Path: c\r\n')).toMatch(/^HTTP\/1\.[01] 403 /);
    expect(await get('::1', ports.acl4!, '/d', 'X-Path: d\r\n')).toMatch(/^HTTP\/1\.[01] 200 /);
  });

  test('sticky = source hashes the IPv6 client to one backend, every time', async () => {
    for (let i = 0; i < 6; i++) expect(await get('::1', ports.sticky!, `/s${i}`, `X-Path: s${i}\r\n`)).toMatch(/^HTTP\/1\.[01] 200 /);
    const names = new Set(backends.filter((b) => b.seen.some((h) => String(h['x-path']).startsWith('s'))).map((b) => b.port));
    expect(names.size).toBe(1);
  });
});

describe('[::] is the IPv6 wildcard only', () => {
  test('a service on [::]:P and another on 0.0.0.0:P (SET listen = P) both bind, each answering its own family', async () => {
    const wild = readPerlbalConfig(`CREATE POOL p\n  POOL p ADD 127.0.0.1:${backends[0]!.port}\nCREATE SERVICE v6\n  SET role = reverse_proxy\n  SET pool = p\n  SET listen = [::]:0\nENABLE v6\n`, { file: 'v6.conf' });
    const v6 = await startProxy(wild.value!, { log: quietLog });
    try {
      const port = v6.listeners()[0]!.port;
      await expect(get('127.0.0.1', port, '/x')).rejects.toThrow(/ECONNREFUSED/);
      // What the HA engine asks before it holds a VIP: [::] takes every IPv6 address, no IPv4 one.
      expect([v6.isListening('2001:db8::1', port), v6.isListening('::1', port), v6.isListening('198.18.0.99', port)]).toEqual([true, true, false]);
      const both = readPerlbalConfig(`CREATE POOL p\n  POOL p ADD 127.0.0.1:${backends[1]!.port}\nCREATE SERVICE v4\n  SET role = reverse_proxy\n  SET pool = p\n  SET listen = ${port}\nENABLE v4\n`, { file: 'v4.conf' });
      const v4 = await startProxy(both.value!, { log: quietLog });
      try {
        expect(await get('127.0.0.1', port, '/x')).toContain('hello from b2');
        expect(await get('::1', port, '/x')).toContain('hello from b1');
      } finally {
        await v4.close({ graceful: false });
      }
    } finally {
      await v6.close({ graceful: false });
    }
  });
});

describe('the management port on [::1]', () => {
  test('answers the console there, and show service / dumpconfig print the IPv6 listens bracketed', async () => {
    const text = `CREATE POOL p\n  POOL p ADD 127.0.0.1:${backends[0]!.port}\nCREATE SERVICE web\n  SET role = reverse_proxy\n  SET pool = p\n  SET listen = [::1]:0\nENABLE web\n` +
      'CREATE SERVICE mgmt\n  SET role = management\n  SET listen = [::1]:0\nENABLE mgmt\n';
    const r = readPerlbalConfig(text, { file: 'mgmt.conf' });
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([]);
    const p = await startProxy(r.value!, { log: quietLog });
    try {
      const mgmt = p.listeners().find((l) => l.service === 'mgmt')!;
      expect(mgmt.host).toBe('::1');
      const out = await new Promise<string>((resolve, reject) => {
        const s = connect({ host: '::1', port: mgmt.port });
        let data = '';
        s.setTimeout(5000, () => { s.destroy(); reject(new Error(`console [::1]:${mgmt.port} silent for 5 s: ${data}`)); });
        s.on('connect', () => s.write('show service\r\ndumpconfig\r\nquit\r\n'));
        s.on('data', (d) => { data += d.toString('latin1'); });
        s.on('close', () => resolve(data));
        s.on('error', reject);
      });
      expect(out).toMatch(/^web +\[::1\]:0 /m);
      expect(out).toContain('  SET listen = [::1]:0');
    } finally {
      await p.close({ graceful: false });
    }
  });
});
