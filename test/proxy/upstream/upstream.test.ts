// Which backends a request may go to (available), and that the service's policy sees the request when it picks:
// the seams the health-check, affinity and weight work builds on. Pure: no sockets (nothing connects here).
import { describe, expect, test } from 'bun:test';
import { parsePerlbalConfig } from '../../../src/config/perlbal.ts';
import { BALANCE_METHODS as CONFIG_BALANCE_METHODS } from '../../../src/config/perlbal/options.ts';
import { log } from '../../../src/log.ts';
import { compileService } from '../../../src/proxy/compile.ts';
import type { SelectRequest, Selector } from '../../../src/proxy/contracts.ts';
import { newEngine } from '../../../src/proxy/engine.ts';
import { parseRequestHead } from '../../../src/proxy/http/request.ts';
import { newServiceRuntime, type ServiceRuntime } from '../../../src/proxy/service.ts';
import { recordFailure } from '../../../src/proxy/upstream/health.ts';
import { BALANCE_METHODS, isBalanceMethod, newSelector } from '../../../src/proxy/upstream/select.ts';
import { available, chooseUpstream, type Upstream } from '../../../src/proxy/upstream/upstream.ts';

const CONF = `CREATE POOL web
  POOL web ADD 127.0.0.1:8081
  POOL web ADD 127.0.0.1:8082
  POOL web ADD 127.0.0.1:8083
CREATE SERVICE balancer
  SET role = reverse_proxy
  SET pool = web
  SET listen = 127.0.0.1:0
ENABLE balancer
`;

function service(): ServiceRuntime {
  const config = parsePerlbalConfig(CONF, { file: 'p.conf' });
  return newServiceRuntime(newEngine(log.withTag('test')), compileService(config.services[0]!, config));
}

function request(raw: string, peerIp: string): SelectRequest {
  const buf = Buffer.from(raw, 'latin1');
  const req = parseRequestHead(buf, 0, buf.length - 4, { maxHeaderSize: 8192, maxHeaderCount: 100, maxUrlLength: 8192 });
  if (req.kind === 'error') throw new Error(req.reason);
  return { req, peerIp, pin: null, pinnedAppValue: null, setCookie: null };
}

/** A policy that records what it was shown and takes the last candidate. */
function recordingPolicy(): Selector<Upstream> & { seen: { keys: string[]; request: SelectRequest | null }[] } {
  const seen: { keys: string[]; request: SelectRequest | null }[] = [];
  return {
    method: 'recording',
    seen,
    select(candidates, request) {
      seen.push({ keys: candidates.map((u) => u.key), request });
      return candidates[candidates.length - 1];
    },
  };
}

describe('available', () => {
  test('a ready, healthy backend is available; drain and maint are not, whatever the health', () => {
    const svc = service();
    const [a] = svc.nodes;
    expect(available(a!, svc.engine.now)).toBe(true);
    a!.admin = 'drain';
    expect(available(a!, svc.engine.now)).toBe(false);
    a!.admin = 'maint';
    expect(available(a!, svc.engine.now)).toBe(false);
  });

  test('a backend marked down is unavailable for its backoff, then offered again for the half-open trial', () => {
    const svc = service();
    const a = svc.nodes[0]!;
    recordFailure(a.health, 1000, 'connect ECONNREFUSED', svc.backoff);
    expect(available(a, 1000 + svc.backoff.downBackoffMs - 1)).toBe(false);
    expect(available(a, 1000 + svc.backoff.downBackoffMs)).toBe(true);
  });
});

describe('chooseUpstream', () => {
  test('the policy sees the request and only the available backends, and its choice is taken', () => {
    const svc = service();
    const policy = recordingPolicy();
    svc.balancer = policy;
    const [a, b, c] = svc.nodes as [Upstream, Upstream, Upstream];
    b.admin = 'drain';
    const r = request('GET /cart HTTP/1.1\r\nHost: shop\r\nCookie: TSBALID=x\r\n\r\n', '198.18.0.7');
    expect(chooseUpstream(svc, r, null)).toBe(c);
    expect(policy.seen).toEqual([{ keys: [a.key, c.key], request: r }]);
    expect(policy.seen[0]!.request!.peerIp).toBe('198.18.0.7');
    expect(c.used).toBe(1);
  });

  test('backends that already failed this request are left out; with one candidate left the policy is not asked', () => {
    const svc = service();
    const policy = recordingPolicy();
    svc.balancer = policy;
    const [a, b, c] = svc.nodes as [Upstream, Upstream, Upstream];
    expect(chooseUpstream(svc, null, [c])).toBe(b);
    expect(policy.seen).toEqual([{ keys: [a.key, b.key], request: null }]);
    expect(chooseUpstream(svc, null, [b, c])).toBe(a);
    expect(policy.seen.length).toBe(1);
    expect(chooseUpstream(svc, null, [a, b, c])).toBe(null);
  });
});

describe('the registry of balance methods', () => {
  test('config takes its list from it, and every name makes a policy of that name', () => {
    expect(CONFIG_BALANCE_METHODS).toBe(BALANCE_METHODS);
    expect([...BALANCE_METHODS]).toEqual(['random', 'roundrobin', 'leastconn', 'source']);
    for (const m of BALANCE_METHODS) expect(newSelector(m).method).toBe(m);
    expect(isBalanceMethod('leastconn')).toBe(true);
    expect(isBalanceMethod('toString')).toBe(false);
  });
});
