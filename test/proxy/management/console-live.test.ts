// Config commands typed on a running proxy's console, over real sockets: the change reaches the next request of a
// connection already open (trust, ACCESS, web_server options), management services appear and move, and a SIGHUP
// reload afterwards puts the file's config back (the file wins).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeConfigFs, parsePerlbalConfig } from '../../../src/config/perlbal.ts';
import type { PerlbalConfig } from '../../../src/config/model.ts';
import { startProxy, type ProxyHandle } from '../../../src/proxy/index.ts';
import { canConnect, freePorts } from '../../harness/ports.ts';
import { connectRaw, type RawConnection } from '../../harness/rawclient.ts';
import { quietLog, rawBackend, rawRequest, type RawBackend } from '../helpers.ts';

let b: RawBackend;
let proxy: ProxyHandle;
let fileConfig: PerlbalConfig;
let docroot = '';
let web = 0;
let files = 0;
let mgmt = 0;

async function talk(port: number, ...lines: string[]): Promise<string> {
  const r = await rawRequest(port, [...lines, 'quit'].map((l) => `${l}\r\n`).join(''), { timeoutMs: 3000 });
  expect(r.closed).toBe(true);
  return r.data;
}

/** One request on an open connection; the head the backend got for it. */
async function through(c: RawConnection, extra = ''): Promise<{ status: number; seen: string }> {
  const before = b.conns.join('').length;
  c.send(`GET /x HTTP/1.0\r\nConnection: keep-alive\r\n${extra}\r\n`);
  const outcome = await c.read({ method: 'GET', timeoutMs: 3000 });
  if (outcome.kind !== 'response') throw new Error(`no response: ${outcome.kind}`);
  return { status: outcome.response.status, seen: b.conns.join('').slice(before) };
}

beforeAll(async () => {
  b = await rawBackend('b');
  docroot = mkdtempSync(join(tmpdir(), 'tsbal-console-'));
  mkdirSync(join(docroot, 'sub'));
  writeFileSync(join(docroot, 'sub', 'a.txt'), 'a\n');
  const text = `LOAD AccessControl
CREATE POOL p
  POOL p ADD 127.0.0.1:${b.port}
CREATE SERVICE web
  SET role = reverse_proxy
  SET listen = 127.0.0.1:0
  SET pool = p
  SET persist_client = on
ENABLE web
CREATE SERVICE files
  SET role = web_server
  SET listen = 127.0.0.1:0
  SET docroot = ${docroot}
ENABLE files
CREATE SERVICE mgmt
  SET role = management
  SET listen = 127.0.0.1:0
ENABLE mgmt
`;
  fileConfig = parsePerlbalConfig(text, { file: join(docroot, 'perlbal.conf'), fs: nodeConfigFs });
  proxy = await startProxy(fileConfig, { log: quietLog });
  const port = (name: string) => proxy.listeners().find((l) => l.service === name)!.port;
  [web, files, mgmt] = [port('web'), port('files'), port('mgmt')];
});

afterAll(async () => {
  await proxy?.close({ graceful: false });
  await b?.close();
  rmSync(docroot, { recursive: true, force: true });
});

describe('config commands on a running proxy', () => {
  test('trusted_upstream_proxies set on the console reaches the next request of a kept-alive connection', async () => {
    const c = await connectRaw(web);
    try {
      const before = await through(c, 'X-Forwarded-For: 1.2.3.4\r\n');
      expect(before.seen).toContain('X-Forwarded-For: 127.0.0.1\r\n');
      expect(await talk(mgmt, 'set web.trusted_upstream_proxies = 127.0.0.1/32')).toBe('OK\r\n');
      const after = await through(c, 'X-Forwarded-For: 1.2.3.4\r\n');
      expect(after.seen).toContain('X-Forwarded-For: 1.2.3.4, 127.0.0.1\r\n');
    } finally {
      c.close();
    }
  });

  test('SET plugins, ACCESS and <svc>.accesscontrol.use_observed_ip take effect live', async () => {
    expect(await talk(mgmt, 'set web.plugins = accesscontrol', 'use web', 'access deny ip 1.2.3.4', 'set web.accesscontrol.use_observed_ip = 1')).toBe('OK\r\nOK\r\nOK\r\nOK\r\n');
    const c = await connectRaw(web);
    try {
      expect((await through(c)).status).toBe(200);
      // Trusted peer (previous test), so the observed IP is the forwarded one: denied.
      c.send('GET /x HTTP/1.0\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n');
      const denied = await c.read({ method: 'GET', timeoutMs: 3000 });
      expect(denied.kind === 'response' && denied.response.status).toBe(403);
    } finally {
      c.close();
    }
    expect(await talk(mgmt, 'use web', 'access reset', 'set web.plugins = none')).toBe('OK\r\nOK\r\nOK\r\n');
  });

  test('dirindexing on a running web_server: the listing appears for the next request', async () => {
    const get = async () => (await rawRequest(files, 'GET /sub/ HTTP/1.0\r\n\r\n', { timeoutMs: 3000 })).data;
    expect(await get()).toContain('Directory listing disabled');
    expect(await talk(mgmt, 'set files.dirindexing = on')).toBe('OK\r\n');
    expect(await get()).toContain('a.txt');
  });

  test('buffer_* options are taken and shown by dumpconfig', async () => {
    expect(await talk(mgmt, 'set web.buffer_backend_connect = 10k', 'set web.buffer_upload_threshold_size = 1m', 'set web.buffer_upload_threshold_time = 7')).toBe('OK\r\nOK\r\nOK\r\n');
    const dump = await talk(mgmt, 'dumpconfig');
    expect(dump).toContain('  SET buffer_backend_connect = 10240\r\n');
    expect(dump).toContain('  SET buffer_upload_threshold_size = 1048576\r\n');
    expect(dump).toContain('  SET buffer_upload_threshold_time = 7\r\n');
    expect(dump).toEndWith('\r\nOK\r\n');
  });

  test('buffer_uploads turned on from the console: the next large upload is spooled before the backend sees it', async () => {
    const spool = mkdtempSync(join(tmpdir(), 'tsbal-console-spool-'));
    try {
      expect(await talk(mgmt, `set web.buffer_uploads_path = ${spool}`, 'set web.buffer_upload_threshold_size = 250k', 'set web.buffer_uploads = on')).toBe('OK\r\nOK\r\nOK\r\n');
      const size = 300 * 1024;
      const c = await connectRaw(web);
      try {
        const before = b.conns.length;
        c.send(`POST /up HTTP/1.0\r\nContent-Length: ${size}\r\n\r\n${'a'.repeat(100 * 1024)}`);
        const t0 = Date.now();
        while (readdirSync(spool).length === 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
        expect(readdirSync(spool).length).toBe(1);
        expect(b.conns.length).toBe(before);
        c.send('a'.repeat(size - 100 * 1024));
        const outcome = await c.read({ method: 'POST', timeoutMs: 3000 });
        expect(outcome.kind === 'response' && outcome.response.status).toBe(200);
        expect(readdirSync(spool)).toEqual([]);
      } finally {
        c.close();
      }
    } finally {
      await talk(mgmt, 'set web.buffer_uploads = off');
      rmSync(spool, { recursive: true, force: true });
    }
  });

  test('enable_put on a running web_server: the next PUT writes the file', async () => {
    const put = () => rawRequest(files, 'PUT /sub/new.txt HTTP/1.0\r\nContent-Length: 3\r\n\r\nhi\n', { timeoutMs: 3000 });
    expect((await put()).data).toMatch(/^HTTP\/1\.[01] 403 /);
    expect(existsSync(join(docroot, 'sub', 'new.txt'))).toBe(false);
    expect(await talk(mgmt, 'set files.enable_put = on')).toBe('OK\r\n');
    expect((await put()).data).toMatch(/^HTTP\/1\.[01] 20[01] /);
    expect(readFileSync(join(docroot, 'sub', 'new.txt'), 'utf8')).toBe('hi\n');
  });

  test('a management service created on the console gets a console; moving it binds the new port first', async () => {
    const [p1, p2] = await freePorts(2);
    expect(await talk(mgmt, 'create service mgmt2', 'set role = management', `set listen = 127.0.0.1:${p1}`, 'enable mgmt2')).toBe('OK\r\nOK\r\nOK\r\nOK\r\n');
    expect(await talk(p1!, 'show service mgmt2')).toBe(`SERVICE mgmt2\r\n     listening: 127.0.0.1:${p1}\r\n          role: management\r\n.\r\n`);
    expect(await talk(p1!, `set mgmt2.listen = 127.0.0.1:${mgmt}`)).toBe(
      `ERROR: Can't start service 'mgmt2' on 127.0.0.1:${mgmt}: Error creating listening socket: Address already in use; still listening on 127.0.0.1:${p1}\r\n`,
    );
    expect(await talk(p1!, `set mgmt2.listen = 127.0.0.1:${p2}`)).toBe('OK\r\n');
    expect(await canConnect(p1!)).toBe(false);
    expect(await talk(p2!, 'show service')).toContain(`mgmt2 127.0.0.1:${p2} ENABLED\r\n`);
  });

  test('SET role on a running service: the web_server becomes a reverse_proxy on the same listener, for the next request', async () => {
    const get = async () => (await rawRequest(files, 'GET /sub/a.txt HTTP/1.0\r\n\r\n', { timeoutMs: 3000 })).data;
    expect(await get()).toEndWith('\r\n\r\na\n');
    expect(await talk(mgmt, 'set files.role = reverse_proxy', 'set files.pool = p')).toBe('OK\r\nOK\r\n');
    expect(await get()).toContain('hello from b');
    expect(proxy.listeners().find((l) => l.service === 'files')?.port).toBe(files);
  });

  test('a SIGHUP reload after console changes: the file wins', async () => {
    const outcome = await proxy.reload(fileConfig);
    expect(outcome.ok).toBe(true);
    const dump = await talk(mgmt, 'dumpconfig');
    expect(dump).not.toContain('trusted_upstream_proxies');
    expect(dump).not.toContain('dirindexing');
    expect(dump).not.toContain('mgmt2');
    expect(dump).toContain('CREATE SERVICE files\r\n  SET role = web_server\r\n');
    expect(proxy.listeners().map((l) => l.service).sort()).toEqual(['files', 'mgmt', 'web']);
    const c = await connectRaw(web);
    try {
      expect((await through(c, 'X-Forwarded-For: 1.2.3.4\r\n')).seen).toContain('X-Forwarded-For: 127.0.0.1\r\n');
    } finally {
      c.close();
    }
  });
});
