// Session affinity through the console's admin states, end to end: a real `tsbal run` with `sticky = cookie` in front
// of two backends, driven by `pool p drain|maint|ready <ip:port>` on the management port as an admin's script would.
// drain keeps the pinned client on its backend and sends no new client there; maint moves the pinned client to the
// other backend with a rewritten cookie; ready lets new clients reach the backend again.
import { afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test';
import http from 'node:http';
import { consoleLine, labBackend, labProxy, type LabBackend, type LabProxy } from './upstream/live-lab.ts';

setDefaultTimeout(40_000);
let proxy: LabProxy | null = null;
let backends: LabBackend[] = [];

afterEach(async () => {
  await proxy?.stop();
  proxy = null;
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

interface Answer {
  status: number;
  backend: string;
  /** The TSBALID Set-Cookie, if the answer carried one. */
  setCookie: string | null;
}

/** A client with a one-cookie jar (TSBALID), one request per fresh connection. */
function cookieClient(port: number) {
  let cookie: string | null = null;
  return {
    get cookie(): string | null {
      return cookie;
    },
    get: (): Promise<Answer> =>
      new Promise((resolve, reject) => {
        const headers: Record<string, string> = cookie === null ? {} : { cookie };
        const req = http.get({ host: '127.0.0.1', port, path: '/', headers, agent: false }, (res) => {
          let body = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => {
            const set = (res.headers['set-cookie'] ?? []).find((c) => c.startsWith('TSBALID='));
            if (set !== undefined) cookie = set.split(';')[0]!;
            resolve({ status: res.statusCode!, backend: body, setCookie: set ?? null });
          });
        });
        req.setTimeout(5000, () => req.destroy(new Error('client timeout')));
        req.on('error', reject);
      }),
  };
}

/** Where `n` new clients (no cookie) land. */
async function newClients(port: number, n: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const a = await cookieClient(port).get();
    expect(a.status).toBe(200);
    expect(a.setCookie).not.toBeNull();
    seen.set(a.backend, (seen.get(a.backend) ?? 0) + 1);
  }
  return seen;
}

describe('sticky = cookie through pool drain / maint / ready on the management port', () => {
  test('drain keeps the pinned client and takes no new one; maint moves it with a new cookie; ready takes new clients again', async () => {
    backends = [await labBackend('A'), await labBackend('B')];
    proxy = await labProxy(
      backends.map((b) => `POOL p ADD ${b.key}`).join('\n'),
      '  SET sticky = cookie\n  SET sticky_secret = correct horse battery staple\n',
    );
    const port = proxy.port;
    const byName = (n: string): LabBackend => backends.find((b) => b.name === n)!;

    // Pin a client; call its backend "home" (A in the brief) and the other one "other".
    const pinned = cookieClient(port);
    const first = await pinned.get();
    expect(first.status).toBe(200);
    expect(first.setCookie).toMatch(/^TSBALID=[^;]+; /);
    const home = byName(first.backend);
    const other = backends.find((b) => b !== home)!;
    const homeCookie = pinned.cookie;
    for (let i = 0; i < 10; i++) expect(await pinned.get()).toEqual({ status: 200, backend: home.name, setCookie: null });

    // drain: the pinned client stays, with its cookie untouched; no new client goes there.
    expect(await consoleLine(proxy.mgmt, `pool p drain ${home.key}`)).toEqual(['OK']);
    for (let i = 0; i < 20; i++) expect(await pinned.get()).toEqual({ status: 200, backend: home.name, setCookie: null });
    expect(pinned.cookie).toBe(homeCookie);
    expect(await newClients(port, 30)).toEqual(new Map([[other.name, 30]]));

    // maint: the pinned client moves to the other backend, re-pinned by a rewritten cookie, and stays there.
    expect(await consoleLine(proxy.mgmt, `pool p maint ${home.key}`)).toEqual(['OK']);
    const homeRequests = home.requests;
    const moved = await pinned.get();
    expect(moved.backend).toBe(other.name);
    expect(moved.setCookie).toMatch(/^TSBALID=[^;]+; /);
    expect(pinned.cookie).not.toBe(homeCookie);
    for (let i = 0; i < 10; i++) expect(await pinned.get()).toEqual({ status: 200, backend: other.name, setCookie: null });
    expect(await newClients(port, 10)).toEqual(new Map([[other.name, 10]]));
    expect(home.requests).toBe(homeRequests);

    // ready: new clients reach it again; the re-pinned client keeps its new backend.
    expect(await consoleLine(proxy.mgmt, `pool p ready ${home.key}`)).toEqual(['OK']);
    const spread = await newClients(port, 30);
    expect(spread.get(home.name) ?? 0).toBeGreaterThan(0);
    expect(spread.get(other.name) ?? 0).toBeGreaterThan(0);
    for (let i = 0; i < 10; i++) expect(await pinned.get()).toEqual({ status: 200, backend: other.name, setCookie: null });

    // An old cookie for the backend that is back in service reaches it again (the id is stable, keyed by the secret).
    const returning = await new Promise<string>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { cookie: homeCookie! }, agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('latin1')));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
    });
    expect(returning).toBe(home.name);
  });
});
