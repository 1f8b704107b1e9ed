// Session affinity as the proxy decides it, without sockets: the keyed backend ids, the Cookie and Set-Cookie
// rewriting of prefix mode, and chooseUpstream's pinning (drain keeps a session, maint/down/a failed attempt move it).
import { describe, expect, test } from 'bun:test';
import { parsePerlbalConfig } from '../../../src/config/perlbal.ts';
import { log } from '../../../src/log.ts';
import { compileService } from '../../../src/proxy/compile.ts';
import type { SelectRequest } from '../../../src/proxy/contracts.ts';
import { newEngine } from '../../../src/proxy/engine.ts';
import { parseRequestHead } from '../../../src/proxy/http/request.ts';
import { prefixSetCookie } from '../../../src/proxy/http/response-head.ts';
import { newServiceRuntime, type ServiceRuntime } from '../../../src/proxy/service.ts';
import {
  backendId,
  findCookie,
  hasIdPrefix,
  keyFromAuthkeys,
  keyFromSecret,
  stickyIdOf,
  stripIdPrefix,
  STICKY_ID_LENGTH,
} from '../../../src/proxy/upstream/affinity.ts';
import { recordFailure } from '../../../src/proxy/upstream/health.ts';
import { chooseUpstream } from '../../../src/proxy/upstream/upstream.ts';

function conf(sticky: string): string {
  return `CREATE POOL web
  POOL web ADD 127.0.0.1:8081
  POOL web ADD 127.0.0.1:8082
  POOL web ADD 127.0.0.1:8083
CREATE SERVICE balancer
  SET role = reverse_proxy
  SET pool = web
  SET listen = 127.0.0.1:0
${sticky}
ENABLE balancer
`;
}

function service(sticky = 'SET sticky = cookie\nSET sticky_secret = correct horse'): ServiceRuntime {
  const config = parsePerlbalConfig(conf(sticky), { file: 'p.conf' });
  return newServiceRuntime(newEngine(log.withTag('test')), compileService(config.services[0]!, config));
}

function head(raw: string) {
  const buf = Buffer.from(raw, 'latin1');
  const req = parseRequestHead(buf, 0, buf.length - 4, { maxHeaderSize: 8192, maxHeaderCount: 100, maxUrlLength: 8192 });
  if (req.kind === 'error') throw new Error(req.reason);
  return req;
}

function request(pin: string | null, pinnedAppValue: string | null = null): SelectRequest {
  return { req: head('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), peerIp: '192.0.2.1', pin, pinnedAppValue, setCookie: null };
}

describe('backend ids', () => {
  test('the same key gives the same id on every balancer; another key another id; the address is not in it', () => {
    const a = backendId(keyFromSecret('s3cret'), '10.0.0.2:80');
    expect(backendId(keyFromSecret('s3cret'), '10.0.0.2:80')).toBe(a);
    expect(backendId(keyFromSecret('other'), '10.0.0.2:80')).not.toBe(a);
    expect(backendId(keyFromSecret('s3cret'), '10.0.0.3:80')).not.toBe(a);
    expect(a).toHaveLength(STICKY_ID_LENGTH);
    expect(a).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(a).not.toContain('10.0.0');
  });

  test('the authkeys key depends on the method and the secret, and is not the secret', () => {
    const k = keyFromAuthkeys('sha1', 'SomeLongSecret');
    expect(k.equals(keyFromAuthkeys('sha1', 'SomeLongSecret'))).toBe(true);
    expect(k.equals(keyFromAuthkeys('md5', 'SomeLongSecret'))).toBe(false);
    expect(k.toString('latin1')).not.toContain('SomeLongSecret');
  });
});

describe('reading and rewriting cookies', () => {
  test('findCookie reads the named cookie among others, in any Cookie field, exactly by name', () => {
    const f = head('GET / HTTP/1.1\r\nHost: a\r\ncookie: a=1; XTSBALID=no; TSBALID=abc ;b=2\r\nCookie: TSBALID=later\r\n\r\n').fields;
    expect(findCookie(f, 'TSBALID')).toBe('abc');
    expect(findCookie(f, 'b')).toBe('2');
    expect(findCookie(f, 'tsbalid')).toBeNull();
    expect(findCookie(head('GET / HTTP/1.1\r\nHost: a\r\nCookie: TSBALID="q"\r\n\r\n').fields, 'TSBALID')).toBe('q');
    expect(findCookie(head('GET / HTTP/1.1\r\nHost: a\r\nCookie: TSBALID\r\n\r\n').fields, 'TSBALID')).toBeNull();
    expect(findCookie(head('GET / HTTP/1.1\r\nHost: a\r\nX-Cookie: TSBALID=x\r\n\r\n').fields, 'TSBALID')).toBeNull();
  });

  test('prefix mode: only `<id>~value` counts as ours, and the backend gets the value without the id', () => {
    const id = 'AbCdEf012_-9';
    expect(hasIdPrefix(`${id}~sess1`)).toBe(true);
    expect(hasIdPrefix('sess1')).toBe(false);
    expect(hasIdPrefix(`${id}sess1`)).toBe(false);
    expect(hasIdPrefix(`AbCdEf012.-9~sess1`)).toBe(false);
    const h = Buffer.from(`GET / HTTP/1.1\r\nCookie: XPHPSESSID=${id}~k; PHPSESSID=${id}~sess1; a=b\r\n\r\n`, 'latin1');
    expect(stripIdPrefix(h, 'PHPSESSID', id).toString('latin1')).toBe(`GET / HTTP/1.1\r\nCookie: XPHPSESSID=${id}~k; PHPSESSID=sess1; a=b\r\n\r\n`);
    expect(stripIdPrefix(h, 'PHPSESSID', 'zzzzzzzzzzzz')).toBe(h);
  });

  test("prefix mode: the application's Set-Cookie for its cookie gets the id, other cookies are left alone", () => {
    const p = { name: 'PHPSESSID', prefix: 'ID~' };
    expect(prefixSetCookie('PHPSESSID=abc; path=/; HttpOnly', p)).toBe('PHPSESSID=ID~abc; path=/; HttpOnly');
    expect(prefixSetCookie('lang=en; path=/', p)).toBeNull();
    expect(prefixSetCookie('PHPSESSIDX=abc', p)).toBeNull();
  });
});

describe('chooseUpstream with sticky = cookie', () => {
  test('an unpinned request is pinned: Set-Cookie names the chosen backend by its id, with the attributes', () => {
    const svc = service();
    const r = request(null);
    const u = chooseUpstream(svc, r, null)!;
    expect(r.setCookie).toBe(`TSBALID=${stickyIdOf(svc.sticky!, u.key)}; Path=/; HttpOnly; SameSite=Lax`);
  });

  test('a pinned request goes to its backend every time and sets no cookie', () => {
    const svc = service();
    const target = svc.nodes[1]!;
    for (let i = 0; i < 100; i++) {
      const r = request(stickyIdOf(svc.sticky!, target.key));
      expect(chooseUpstream(svc, r, null)).toBe(target);
      expect(r.setCookie).toBeNull();
    }
  });

  test('drain keeps a pinned client (and takes no new one); maint moves it and rewrites the cookie', () => {
    const svc = service();
    const target = svc.nodes[1]!;
    const pin = stickyIdOf(svc.sticky!, target.key);
    target.admin = 'drain';
    expect(chooseUpstream(svc, request(pin), null)).toBe(target);
    for (let i = 0; i < 50; i++) expect(chooseUpstream(svc, request(null), null)).not.toBe(target);
    target.admin = 'maint';
    const r = request(pin);
    const moved = chooseUpstream(svc, r, null)!;
    expect(moved).not.toBe(target);
    expect(r.setCookie).toStartWith(`TSBALID=${stickyIdOf(svc.sticky!, moved.key)};`);
  });

  test('a pinned backend that is down, or that failed this request (a retry), re-pins the client', () => {
    const svc = service();
    const target = svc.nodes[0]!;
    const pin = stickyIdOf(svc.sticky!, target.key);
    const retry = request(pin);
    const other = chooseUpstream(svc, retry, [target])!;
    expect(other).not.toBe(target);
    expect(retry.setCookie).toStartWith(`TSBALID=${stickyIdOf(svc.sticky!, other.key)};`);
    recordFailure(target.health, svc.engine.now, 'connect ECONNREFUSED', svc.backoff);
    const r = request(pin);
    expect(chooseUpstream(svc, r, null)).not.toBe(target);
    expect(r.setCookie).not.toBeNull();
  });

  test('a cookie from another key or a forged value is treated as no cookie', () => {
    const svc = service();
    const r = request(backendId(keyFromSecret('another'), svc.nodes[0]!.key));
    chooseUpstream(svc, r, null);
    expect(r.setCookie).not.toBeNull();
  });

  test('prefix mode: a client moved to another backend gets its own value back under the new id', () => {
    const svc = service('SET sticky_learn_cookie = PHPSESSID\nSET sticky_secret = k');
    expect(svc.sticky!.mode).toBe('prefix');
    const gone = svc.nodes[2]!;
    gone.admin = 'maint';
    const r = request(stickyIdOf(svc.sticky!, gone.key), 'sess42');
    const u = chooseUpstream(svc, r, null)!;
    expect(r.setCookie).toBe(`PHPSESSID=${stickyIdOf(svc.sticky!, u.key)}~sess42; Path=/; HttpOnly; SameSite=Lax`);
    // No cookie yet: nothing to set, the application's own Set-Cookie gets the prefix on the way out.
    const fresh = request(null);
    chooseUpstream(svc, fresh, null);
    expect(fresh.setCookie).toBeNull();
  });

  test('sticky off: no affinity state at all', () => {
    expect(service('').sticky).toBeNull();
  });
});

describe('chooseUpstream with sticky = source', () => {
  test('a backend in slow start keeps its clients deterministically (no random thinning for a hash)', () => {
    const svc = service('SET sticky = source');
    expect(svc.balancer.method).toBe('source');
    const ips = Array.from({ length: 200 }, (_, i) => `203.0.113.${i}`);
    const before = ips.map((ip) => chooseUpstream(svc, { ...request(null), peerIp: ip }, null)!.key);
    const starting = svc.nodes[1]!;
    starting.health.state = 'starting';
    starting.health.since = svc.engine.now;
    starting.health.slowStartMs = 60_000;
    for (let round = 0; round < 5; round++) {
      ips.forEach((ip, i) => expect(chooseUpstream(svc, { ...request(null), peerIp: ip }, null)!.key).toBe(before[i]!));
    }
  });
});
