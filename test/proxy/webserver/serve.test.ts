// web_server over real sockets: files from a real docroot through startProxy, read with a raw client.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeConfigFs, parsePerlbalConfig } from '../../../src/config/perlbal.ts';
import { startProxy, type ProxyHandle } from '../../../src/proxy/index.ts';
import { header } from '../../harness/httpwire.ts';
import { connectRaw, describeOutcome, exchange, type RawResponse } from '../../harness/rawclient.ts';
import { quietLog } from '../helpers.ts';

const SECRET = 'TOP-SECRET-outside-the-docroot';
let base: string;
let root: string;
let proxy: ProxyHandle;
const port = (name: string): number => proxy.listeners().find((l) => l.service === name)!.port;

async function get(name: string, target: string, extra = '', method = 'GET'): Promise<RawResponse> {
  const { outcome } = await exchange(port(name), `${method} ${target} HTTP/1.0\r\n${extra}\r\n`, { method, closeWaitMs: 0 });
  if (outcome.kind !== 'response') throw new Error(`${method} ${target}: ${describeOutcome(outcome)}`);
  return outcome.response;
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'tsbal-ws-'));
  root = join(base, 'root');
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(join(root, 'noindex'));
  mkdirSync(join(root, 'parts'));
  mkdirSync(join(base, 'outside'));
  writeFileSync(join(base, 'secret.txt'), SECRET);
  writeFileSync(join(base, 'outside', 'index.html'), SECRET);
  writeFileSync(join(root, 'a.txt'), 'hello\n');
  writeFileSync(join(root, 'page.html'), '<p>page</p>');
  writeFileSync(join(root, 'sub', 'index.html'), '<p>sub index</p>');
  writeFileSync(join(root, 'noindex', 'x.css'), 'x{}');
  writeFileSync(join(root, 'big.bin'), Buffer.alloc(4 * 1024 * 1024, 7));
  // Sparse: 1 GiB that takes no disk.
  writeFileSync(join(root, 'huge.bin'), '');
  truncateSync(join(root, 'huge.bin'), 1024 ** 3);
  writeFileSync(join(root, 'shrinks.bin'), '');
  truncateSync(join(root, 'shrinks.bin'), 64 * 1024 * 1024);
  writeFileSync(join(root, 'parts', 'c1.bin'), Buffer.alloc(300 * 1024, 1));
  writeFileSync(join(root, 'parts', 'c2.bin'), Buffer.alloc(200 * 1024, 2));
  utimesSync(join(root, 'a.txt'), 1_600_000_000, 1_600_000_000);
  symlinkSync(join(base, 'secret.txt'), join(root, 'out-file.txt'));
  symlinkSync(join(base, 'outside'), join(root, 'out-dir'));
  symlinkSync(join(base, 'secret.txt'), join(root, 'sub', 'index.txt'));
  symlinkSync('a.txt', join(root, 'in-link.txt'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  const conf =
    `LOAD vhosts\nLOAD AccessControl\nCREATE SERVICE guarded\n SET role = web_server\n SET listen = 127.0.0.1:0\n SET docroot = ${root}\n` +
    ` SET plugins = accesscontrol\n ACCESS DENY ip 127.0.0.1\nENABLE guarded\n` +
    `CREATE SERVICE files\n SET role = web_server\n SET listen = 127.0.0.1:0\n SET docroot = ${root}/\n SET persist_client = on\n` +
    ` SET index_files = index.htm, index.html\nENABLE files\n` +
    `CREATE SERVICE listing\n SET role = web_server\n SET listen = 127.0.0.1:0\n SET docroot = ${root}\n SET dirindexing = on\n SET index_files = index.txt\nENABLE listing\n` +
    `CREATE SERVICE cat\n SET role = web_server\n SET listen = 127.0.0.1:0\n SET docroot = ${root}\n SET enable_concatenate_get = on\nENABLE cat\n` +
    `CREATE SERVICE hidden\n SET role = web_server\n SET docroot = ${root}/sub\n` +
    `CREATE SERVICE sel\n SET role = selector\n SET listen = 127.0.0.1:0\n SET plugins = vhosts\n SET persist_client = on\n VHOST static.example = hidden\nENABLE sel\n`;
  proxy = await startProxy(parsePerlbalConfig(conf, { file: join(base, 'p.conf'), fs: nodeConfigFs }), { log: quietLog });
});

afterAll(async () => {
  await proxy?.close({ graceful: false });
  rmSync(base, { recursive: true, force: true });
});

describe('web_server: static files', () => {
  test('GET: the bytes, Perlbal field order, Content-Type by extension, Last-Modified from mtime', async () => {
    const r = await get('files', '/a.txt');
    expect(r.status).toBe(200);
    expect(r.head.headers.map(([n]) => n)).toEqual(['Date', 'Server', 'Last-Modified', 'Accept-Ranges', 'Content-Type', 'Content-Length', 'Connection']);
    expect([header(r.head.headers, 'last-modified'), header(r.head.headers, 'content-type'), r.body.toString()]).toEqual([
      'Sun, 13 Sep 2020 12:26:40 GMT', 'text/plain', 'hello\n',
    ]);
    expect(header((await get('files', '/page.html')).head.headers, 'content-type')).toBe('text/html');
  });

  test('HEAD: the same fields, no body', async () => {
    const r = await get('files', '/a.txt', '', 'HEAD');
    expect([r.status, header(r.head.headers, 'content-length'), r.body.length]).toEqual([200, '6', 0]);
  });

  test('If-Modified-Since equal to Last-Modified: 304; Range: 206, 416', async () => {
    expect((await get('files', '/a.txt', 'If-Modified-Since: Sun, 13 Sep 2020 12:26:40 GMT\r\n')).status).toBe(304);
    expect((await get('files', '/a.txt', 'If-Modified-Since: Sun, 13 Sep 2020 12:26:41 GMT\r\n')).status).toBe(200);
    const p = await get('files', '/a.txt', 'Range: bytes=1-3\r\n');
    expect([p.status, header(p.head.headers, 'content-range'), p.body.toString()]).toEqual([206, 'bytes 1-3/6', 'ell']);
    const s = await get('files', '/a.txt', 'Range: bytes=-2\r\n');
    expect([s.status, s.body.toString()]).toEqual([206, 'o\n']);
    const u = await get('files', '/a.txt', 'Range: bytes=6-\r\n');
    expect([u.status, header(u.head.headers, 'content-range'), u.body.length]).toEqual([416, 'bytes */6', 0]);
  });

  test('directories: first index file that exists; none and no dirindexing: Perlbal\'s 200 page', async () => {
    expect((await get('files', '/sub')).body.toString()).toBe('<p>sub index</p>');
    expect((await get('files', '/sub/')).body.toString()).toBe('<p>sub index</p>');
    const r = await get('files', '/noindex/');
    expect([r.status, r.body.toString()]).toEqual([200, '<h1>200 - OK</h1>\nDirectory listing disabled']);
  });

  test('dirindexing lists the directory', async () => {
    const r = await get('listing', '/noindex');
    expect(r.body.toString()).toBe(
      "<html><body><b><a href='/noindex/./'>.</a></b><br />\n<b><a href='/noindex/../'>..</a></b><br />\n<a href='/noindex/x.css'>x.css</a><br />\n</body></html>",
    );
  });

  test("missing file 404, PUT/DELETE 403, POST 400, with Perlbal's bodies", async () => {
    const pages = await Promise.all([get('files', '/nope'), get('files', '/a.txt', '', 'PUT'), get('files', '/a.txt', '', 'DELETE'), get('files', '/a.txt', '', 'POST')]);
    expect(pages.map((r) => `${r.status} ${r.body}`)).toEqual(['404 <h1>404 - Not Found</h1>\n', '403 <h1>403 - Forbidden</h1>\n', '403 <h1>403 - Forbidden</h1>\n', '400 <h1>400 - Bad request</h1>\n']);
  });

  test('a FIFO in the docroot is refused at once instead of blocking', async () => {
    expect((await get('files', '/fifo')).status).toBe(403);
  });

  test('a 4 MiB file arrives intact and complete', async () => {
    const conn = await connectRaw(port('files'));
    try {
      conn.send('GET /big.bin HTTP/1.0\r\n\r\n');
      const o = await conn.read({ timeoutMs: 10_000 });
      if (o.kind !== 'response') throw new Error(describeOutcome(o));
      expect([o.response.body.length, o.response.body.every((b) => b === 7)]).toEqual([4 * 1024 * 1024, true]);
    } finally {
      conn.close();
    }
  });

  test('a 1 GiB file to a client that does not read: what tsbal holds for it stays bounded', async () => {
    const sock = connect(port('files'), '127.0.0.1');
    try {
      await new Promise<void>((resolve) => sock.once('connect', resolve));
      sock.pause();
      sock.write('GET /huge.bin HTTP/1.0\r\n\r\n');
      await Bun.sleep(400);
      const held = [...proxy.engine.clients].map((c) => c.socket.writableLength);
      expect(held.length).toBeGreaterThan(0);
      expect(Math.max(...held)).toBeLessThan(1024 * 1024);
    } finally {
      sock.destroy();
    }
  });

  test('?? concatenation of files larger than one read: every part whole and in order', async () => {
    const conn = await connectRaw(port('cat'));
    try {
      conn.send('GET /parts/??c1.bin,c2.bin HTTP/1.0\r\n\r\n');
      const o = await conn.read({ timeoutMs: 10_000 });
      if (o.kind !== 'response') throw new Error(describeOutcome(o));
      const body = o.response.body;
      expect([o.response.status, body.length]).toEqual([200, 500 * 1024]);
      expect([body.subarray(0, 300 * 1024).every((b) => b === 1), body.subarray(300 * 1024).every((b) => b === 2)]).toEqual([true, true]);
    } finally {
      conn.close();
    }
  });

  test('a file that shrinks while it is sent: the connection is cut short of its Content-Length, not padded or hung', async () => {
    const sock = connect(port('files'), '127.0.0.1');
    const chunks: Buffer[] = [];
    try {
      await new Promise<void>((resolve) => sock.once('connect', resolve));
      sock.on('data', (d: Buffer) => chunks.push(d));
      sock.pause();
      sock.write('GET /shrinks.bin HTTP/1.0\r\n\r\n');
      await Bun.sleep(300);
      truncateSync(join(root, 'shrinks.bin'), 0);
      const ended = new Promise<void>((resolve) => sock.once('close', () => resolve()));
      sock.resume();
      await Promise.race([ended, Bun.sleep(5000).then(() => Promise.reject(new Error('connection was not cut')))]);
      const got = Buffer.concat(chunks);
      expect(got.toString('latin1')).toContain('Content-Length: 67108864');
      expect(got.length).toBeLessThan(64 * 1024 * 1024);
    } finally {
      sock.destroy();
    }
  });

  test('a client gone mid-file leaves no file descriptor open', async () => {
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 5; i++) {
      const conn = await connectRaw(port('files'));
      conn.send('GET /big.bin HTTP/1.0\r\n\r\n');
      await conn.read({ timeoutMs: 50 });
      conn.close();
    }
    await Bun.sleep(200);
    expect(fds()).toBeLessThanOrEqual(before);
  });

  test('persist_client: keep-alive and pipelined requests are answered in order on one connection', async () => {
    const conn = await connectRaw(port('files'));
    try {
      conn.send('GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nHEAD /page.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      const a = await conn.read();
      const b = await conn.read();
      const c = await conn.read({ method: 'HEAD' });
      const got = [a, b, c].map((o) => (o.kind === 'response' ? `${o.response.status} ${header(o.response.head.headers, 'connection')}` : describeOutcome(o)));
      expect(got).toEqual(['200 keep-alive', '404 keep-alive', '200 close']);
      expect(await conn.waitClosed(1000)).toBe(true);
    } finally {
      conn.close();
    }
  });

  test('AccessControl on a web_server denies before the disk is touched', async () => {
    const r = await get('guarded', '/a.txt');
    expect([r.status, r.body.toString()]).toEqual([403, '<h1>403 - Forbidden</h1>\nAccess denied.']);
  });

  test('a selector hands a vhost to a web_server that has no listener of its own', async () => {
    const r = await get('sel', '/', 'Host: static.example\r\n');
    expect([r.status, r.body.toString()]).toEqual([200, '<p>sub index</p>']);
  });
});

describe('web_server: reload', () => {
  test('a reload that changes docroot serves the new one on the same listener', async () => {
    const other = join(base, 'other');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'a.txt'), 'other\n');
    const conf = `CREATE SERVICE solo\n SET role = web_server\n SET listen = 127.0.0.1:0\n SET docroot = DOCROOT\nENABLE solo\n`;
    const load = (dir: string) => parsePerlbalConfig(conf.replace('DOCROOT', dir), { file: join(base, 'solo.conf'), fs: nodeConfigFs });
    const solo = await startProxy(load(root), { log: quietLog });
    try {
      const at = solo.listeners()[0]!.port;
      const body = async (): Promise<string> => {
        const { outcome } = await exchange(at, 'GET /a.txt HTTP/1.0\r\n\r\n', { closeWaitMs: 0 });
        return outcome.kind === 'response' ? outcome.response.body.toString() : describeOutcome(outcome);
      };
      expect(await body()).toBe('hello\n');
      expect((await solo.reload(load(other))).ok).toBe(true);
      expect([solo.listeners()[0]!.port, await body()]).toEqual([at, 'other\n']);
    } finally {
      await solo.close({ graceful: false });
    }
  });
});

describe('web_server: nothing outside the docroot is readable', () => {
  const attempts = [
    '/../secret.txt', '/%2e%2e/secret.txt', '/%2E%2E%2Fsecret.txt', '/sub/../../secret.txt', '/sub/%2e%2e/%2e%2e/secret.txt', '/..',
    '/sub/..', '/..%2f..%2fsecret.txt', '/out-file.txt', '/out-dir/', '/out-dir/index.html', '/out-dir', '/sub/index.txt',
    'http://x/../secret.txt', '/./../secret.txt', '//../secret.txt', '/%00../secret.txt',
  ];
  for (const svc of ['files', 'listing']) {
    test(`${svc}: traversal spellings and symlinks out are refused (403), never the outside bytes`, async () => {
      for (const t of attempts) {
        const r = await get(svc, t);
        expect([t, r.status, r.body.toString().includes(SECRET), r.body.toString().includes('secret.txt')]).toEqual([t, r.status === 404 ? 404 : 403, false, false]);
      }
    });
  }

  test('a symlink that stays inside the docroot is served', async () => {
    expect((await get('files', '/in-link.txt')).body.toString()).toBe('hello\n');
  });
});
