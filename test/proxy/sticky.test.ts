// Session affinity end to end: real `tsbal run` processes in front of real HTTP backends that say who they are.
// cookie mode keeps a client on its backend across 1,000 requests and across two balancers with the same secret,
// and moves it exactly once when its backend dies; prefix mode hides its prefix from the application; source mode
// keeps every client of the surviving backends where it was when one of five dies. Drain and maint are driven here
// through the Upstream record of an in-process proxy; sticky-admin-console.test.ts drives them through the console's
// `pool p drain|maint|ready` on a real `tsbal run`.
import { afterEach, describe, expect, test } from 'bun:test';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ProxyHandle } from '../../src/proxy/index.ts';
import type { PerlbalConfProxy } from '../harness/perlbal.ts';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { startWithConf } from '../harness/perlbal.ts';
import { makeTempDir, removeDir, stopAll } from '../harness/procs.ts';
import { launchTsbal, startTsbalWithConf } from '../harness/tsbal.ts';
import { rawRequest, startTestProxy } from './helpers.ts';

interface Backend {
  name: string;
  port: number;
  /** The Cookie header of every request it got, in order ('' when none). */
  cookies: string[];
  kill(): Promise<void>;
}

/**
 * A backend answering its own name. `session`: it plays a PHP application with file sessions: without a PHPSESSID
 * cookie it starts a session (Set-Cookie: PHPSESSID=<name>-<n>; path=/).
 */
async function startBackend(name: string, session = false): Promise<Backend> {
  const cookies: string[] = [];
  const sockets = new Set<Socket>();
  let sessions = 0;
  const server: Server = createServer((req, res) => {
    const cookie = req.headers.cookie ?? '';
    cookies.push(cookie);
    if (session && !/(^|; *)PHPSESSID=/.test(cookie)) res.setHeader('Set-Cookie', `PHPSESSID=${name}-${++sessions}; path=/`);
    res.setHeader('X-Backend', name);
    res.end(name);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    cookies,
    kill: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Answer {
  status: number;
  backend: string;
  setCookie: string[];
}

/** A browser-ish client: one keep-alive connection per proxy port, a cookie jar of name=value. */
function client() {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const jar = new Map<string, string>();
  const get = (port: number, headers: Record<string, string> = {}): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent, headers: { ...headers, ...(cookie ? { Cookie: cookie } : {}) }, timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          const setCookie = setCookies(res.headers);
          for (const sc of setCookie) {
            const [pair] = sc.split(';');
            const eq = pair!.indexOf('=');
            jar.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1));
          }
          resolve({ status: res.statusCode ?? 0, backend: body, setCookie });
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  return { get, jar, close: () => agent.destroy() };
}

function setCookies(h: IncomingHttpHeaders): string[] {
  return h['set-cookie'] ?? [];
}

const SECRET = 'correct horse battery staple';

function conf(backends: readonly Backend[], serviceLines: string) {
  return (ports: number[]) => ({
    text: [
      'CREATE POOL web',
      ...backends.map((b) => `  POOL web ADD 127.0.0.1:${b.port}`),
      'CREATE SERVICE balancer',
      '  SET role = reverse_proxy',
      '  SET pool = web',
      `  SET listen = 127.0.0.1:${ports[0]}`,
      '  SET persist_client = on',
      '  SET persist_backend = on',
      ...serviceLines.split('\n').map((l) => `  ${l}`),
      'ENABLE balancer',
      '',
    ].join('\n'),
    ready: [ports[0]!],
  });
}

let cleanup: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  await stopAll(cleanup);
  cleanup = [];
});

async function backendsNamed(names: readonly string[], session = false): Promise<Backend[]> {
  const list = await Promise.all(names.map((n) => startBackend(n, session)));
  for (const b of list) cleanup.push({ stop: () => b.kill() });
  return list;
}

async function tsbal(backends: readonly Backend[], lines: string): Promise<PerlbalConfProxy> {
  const p = await startTsbalWithConf(1, conf(backends, lines));
  cleanup.push(p);
  return p;
}

describe('sticky = cookie, two tsbal processes with the same secret', () => {
  test('a client stays on its backend for 1,000 requests through either balancer, and moves exactly once when it dies', async () => {
    const backends = await backendsNamed(['web1', 'web2', 'web3']);
    const lines = `SET sticky = cookie\nSET sticky_secret = ${SECRET}`;
    const [lb1, lb2] = await Promise.all([tsbal(backends, lines), tsbal(backends, lines)]);
    const c = client();
    try {
      const seen: string[] = [];
      let cookiesSet = 0;
      for (let i = 0; i < 1000; i++) {
        const a = await c.get(i % 2 === 0 ? lb1!.port : lb2!.port);
        expect(a.status).toBe(200);
        seen.push(a.backend);
        cookiesSet += a.setCookie.length;
      }
      const home = seen[0]!;
      expect(new Set(seen)).toEqual(new Set([home]));
      // Pinned once, by the first answer; never re-pinned while the backend lives.
      expect(cookiesSet).toBe(1);
      const cookie = c.jar.get('TSBALID')!;
      expect(cookie).toMatch(/^[A-Za-z0-9_-]{12}$/);
      for (const b of backends) expect(cookie).not.toContain(String(b.port));

      await backends.find((b) => b.name === home)!.kill();
      const after: Answer[] = [];
      for (let i = 0; i < 200; i++) after.push(await c.get(i % 2 === 0 ? lb1!.port : lb2!.port));
      expect(after.filter((a) => a.status !== 200)).toEqual([]);
      const moved = after.map((a) => a.backend);
      expect(moved).not.toContain(home);
      // The first answer re-pins (its Set-Cookie), and every later one, through either balancer, stays there.
      expect(new Set(moved).size).toBe(1);
      expect(after[0]!.setCookie).toHaveLength(1);
      expect(after.slice(1).every((a) => a.setCookie.length === 0)).toBe(true);
    } finally {
      c.close();
    }
  }, 60_000);

  test('the cookie is HttpOnly, SameSite=Lax, Path=/ (no Secure over plain HTTP), and a new client is spread', async () => {
    const backends = await backendsNamed(['web1', 'web2']);
    const lb = await tsbal(backends, `SET sticky = cookie\nSET sticky_cookie = SRV\nSET sticky_secret = ${SECRET}`);
    const homes = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const c = client();
      const a = await c.get(lb.port);
      c.close();
      expect(a.setCookie).toHaveLength(1);
      expect(a.setCookie[0]).toMatch(/^SRV=[A-Za-z0-9_-]{12}; Path=\/; HttpOnly; SameSite=Lax$/);
      homes.add(a.backend);
    }
    expect(homes).toEqual(new Set(['web1', 'web2']));
  }, 30_000);
});

describe('sticky = cookie without sticky_secret (no HA)', () => {
  test('the key generated into --state-dir is kept: after a restart the same cookie reaches the same backend', async () => {
    const backends = await backendsNamed(['web1', 'web2', 'web3']);
    const stateDir = makeTempDir('sticky-state');
    cleanup.push({ stop: async () => removeDir(stateDir) });
    const start = () =>
      startWithConf('tsbal', 1, conf(backends, 'SET sticky = cookie'), (confPath) => {
        const l = launchTsbal({ kind: 'source' })(confPath);
        return { ...l, args: [...l.args, '--state-dir', stateDir] };
      });
    const first = await start();
    const c = client();
    try {
      const home = (await c.get(first.port)).backend;
      expect(statSync(join(stateDir, 'sticky.key')).mode & 0o777).toBe(0o600);
      await first.stop();
      const second = await start();
      cleanup.push(second);
      for (let i = 0; i < 20; i++) {
        const a = await c.get(second.port);
        expect(a.backend).toBe(home);
        expect(a.setCookie).toEqual([]);
      }
    } finally {
      c.close();
    }
  }, 30_000);
});

describe('sticky_learn_cookie (prefix mode)', () => {
  test('the application sees its own cookie unchanged; the browser sees it prefixed, and stays on the backend', async () => {
    const backends = await backendsNamed(['app1', 'app2'], true);
    const lb = await tsbal(backends, `SET sticky_learn_cookie = PHPSESSID\nSET sticky_secret = ${SECRET}`);
    const c = client();
    try {
      const first = await c.get(lb.port);
      const home = backends.find((b) => b.name === first.backend)!;
      expect(first.setCookie).toHaveLength(1);
      const m = /^PHPSESSID=([A-Za-z0-9_-]{12})~(\S+); path=\/$/.exec(first.setCookie[0]!);
      expect(m).not.toBeNull();
      expect(m![2]).toBe(`${home.name}-1`);
      for (let i = 0; i < 50; i++) {
        const a = await c.get(lb.port);
        expect(a.backend).toBe(home.name);
        expect(a.setCookie).toEqual([]);
      }
      // What the application received: its own value, never the prefix.
      expect(home.cookies.slice(1)).toEqual(Array(50).fill(`PHPSESSID=${home.name}-1`));
      expect(backends.find((b) => b !== home)!.cookies).toEqual([]);
    } finally {
      c.close();
    }
  }, 30_000);

  test('a client whose backend died is re-pinned with its own value under the new id', async () => {
    const backends = await backendsNamed(['app1', 'app2'], true);
    const lb = await tsbal(backends, `SET sticky_learn_cookie = PHPSESSID\nSET sticky_secret = ${SECRET}`);
    const c = client();
    try {
      const first = await c.get(lb.port);
      const before = c.jar.get('PHPSESSID')!;
      await backends.find((b) => b.name === first.backend)!.kill();
      const other = backends.find((b) => b.name !== first.backend)!;
      const moved = await c.get(lb.port);
      expect(moved.backend).toBe(other.name);
      const after = c.jar.get('PHPSESSID')!;
      // The application on the new backend got the value without a prefix (and, PHP-like, kept it).
      expect(other.cookies[0]).toBe(`PHPSESSID=${before.slice(13)}`);
      expect(after.slice(13)).toBe(before.slice(13));
      expect(after.slice(0, 12)).not.toBe(before.slice(0, 12));
      for (let i = 0; i < 20; i++) expect((await c.get(lb.port)).backend).toBe(other.name);
    } finally {
      c.close();
    }
  }, 30_000);
});

describe('sticky = source', () => {
  test('removing one of 5 backends moves no client of the other four (clients named by a trusted X-Forwarded-For)', async () => {
    const backends = await backendsNamed(['s1', 's2', 's3', 's4', 's5']);
    const lb = await tsbal(backends, 'SET sticky = source\nSET trusted_upstream_proxies = 127.0.0.1');
    const clients = Array.from({ length: 200 }, (_, i) => `198.51.100.${i + 1}`);
    const c = client();
    try {
      const before = new Map<string, string>();
      for (const ip of clients) before.set(ip, (await c.get(lb.port, { 'X-Forwarded-For': ip })).backend);
      // The same client again: the same backend.
      for (const ip of clients.slice(0, 50)) expect((await c.get(lb.port, { 'X-Forwarded-For': ip })).backend).toBe(before.get(ip)!);
      const counts = new Map<string, number>();
      for (const b of before.values()) counts.set(b, (counts.get(b) ?? 0) + 1);
      expect(counts.size).toBe(5);
      await backends[2]!.kill();
      let moved = 0;
      for (const ip of clients) {
        const a = await c.get(lb.port, { 'X-Forwarded-For': ip });
        expect(a.status).toBe(200);
        if (before.get(ip) === 's3') {
          expect(a.backend).not.toBe('s3');
          moved++;
        } else expect(a.backend).toBe(before.get(ip)!);
      }
      expect(moved).toBe(counts.get('s3')!);
    } finally {
      c.close();
    }
  }, 60_000);
});

describe('sticky = source without trusted proxies', () => {
  test("an untrusted client's X-Forwarded-For is ignored: its own address decides, so one client keeps one backend", async () => {
    const backends = await backendsNamed(['s1', 's2', 's3', 's4', 's5']);
    const lb = await tsbal(backends, 'SET sticky = source');
    const c = client();
    try {
      const seen = new Set<string>();
      for (let i = 1; i <= 60; i++) seen.add((await c.get(lb.port, { 'X-Forwarded-For': `198.51.100.${i}` })).backend);
      expect(seen.size).toBe(1);
    } finally {
      c.close();
    }
  }, 30_000);
});

describe('sticky = cookie and WebSocket upgrades', () => {
  let proxy: ProxyHandle | null = null;
  afterEach(async () => {
    await proxy?.close({ graceful: false });
    proxy = null;
  });

  test('a 101 to a client pinned anew carries the affinity cookie; a pinned one gets none', async () => {
    const server = createServer();
    server.on('upgrade', (_req, socket: Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (d) => socket.write(d));
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanup.push({ stop: () => new Promise<void>((r) => server.close(() => r())) });
    server.on('connection', (s) => cleanup.push({ stop: async () => void s.destroy() }));
    const started = await startTestProxy([(server.address() as AddressInfo).port], { sticky: 'cookie', sticky_secret: SECRET });
    proxy = started.proxy;
    const upgrade = async (cookie: string): Promise<string> => {
      const r = await rawRequest(
        started.port,
        `GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${cookie}\r\n`,
        { until: (d) => d.includes('\r\n\r\n'), timeoutMs: 3000 },
      );
      return r.data.slice(0, r.data.indexOf('\r\n\r\n'));
    };
    const first = await upgrade('');
    expect(first).toStartWith('HTTP/1.1 101');
    const m = /\r\nSet-Cookie: (TSBALID=[A-Za-z0-9_-]{12}); Path=\/; HttpOnly; SameSite=Lax(\r\n|$)/.exec(first);
    expect(m).not.toBeNull();
    const again = await upgrade(`Cookie: ${m![1]}\r\n`);
    expect(again).toStartWith('HTTP/1.1 101');
    expect(again).not.toContain('Set-Cookie');
  }, 20_000);
});

describe('admin states with affinity (through the Upstream record of an in-process proxy)', () => {
  let proxy: ProxyHandle | null = null;
  afterEach(async () => {
    await proxy?.close({ graceful: false });
    proxy = null;
  });

  test('drain keeps pinned clients and takes no new ones; maint moves them and rewrites their cookie', async () => {
    const backends = await backendsNamed(['web1', 'web2', 'web3']);
    const started = await startTestProxy(
      backends.map((b) => b.port),
      { sticky: 'cookie', sticky_secret: SECRET, persist_client: true, persist_backend: true },
    );
    proxy = started.proxy;
    const pinned = client();
    try {
      const home = (await pinned.get(started.port)).backend;
      const node = proxy.services[0]!.nodes.find((u) => u.port === backends.find((b) => b.name === home)!.port)!;
      node.admin = 'drain';
      for (let i = 0; i < 30; i++) expect((await pinned.get(started.port)).backend).toBe(home);
      for (let i = 0; i < 30; i++) {
        const fresh = client();
        expect((await fresh.get(started.port)).backend).not.toBe(home);
        fresh.close();
      }
      node.admin = 'maint';
      const moved = await pinned.get(started.port);
      expect(moved.backend).not.toBe(home);
      expect(moved.setCookie).toHaveLength(1);
      for (let i = 0; i < 20; i++) expect((await pinned.get(started.port)).backend).toBe(moved.backend);
    } finally {
      pinned.close();
    }
  }, 30_000);
});
