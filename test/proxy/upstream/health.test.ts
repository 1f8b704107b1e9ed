// The health state machine of one backend address, pure: passive signals and active check answers in, transitions
// out. Times are plain numbers (ms); nothing here touches a socket or a clock.
import { describe, expect, test } from 'bun:test';
import { parsePerlbalConfig } from '../../../src/config/perlbal.ts';
import { log } from '../../../src/log.ts';
import { compileService } from '../../../src/proxy/compile.ts';
import { newEngine } from '../../../src/proxy/engine.ts';
import { newServiceRuntime } from '../../../src/proxy/service.ts';
import { describeCheck, expectedStatus, poolHealthOptions } from '../../../src/proxy/upstream/check-spec.ts';
import {
  admit,
  checkFailed,
  checkPassed,
  isAvailable,
  newUpstreamHealth,
  noteStatus,
  recordFailure,
  recordSuccess,
  settleSlowStart,
  slowStartFactor,
  type BackoffPolicy,
} from '../../../src/proxy/upstream/health.ts';
import { available, chooseUpstream, effectiveWeight } from '../../../src/proxy/upstream/upstream.ts';
import type { SelectRequest } from '../../../src/proxy/contracts.ts';
import { parseRequestHead } from '../../../src/proxy/http/request.ts';

function request(): SelectRequest {
  const buf = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'latin1');
  const req = parseRequestHead(buf, 0, buf.length - 4, { maxHeaderSize: 8192, maxHeaderCount: 100, maxUrlLength: 8192 });
  if (req.kind === 'error') throw new Error(req.reason);
  return { req, peerIp: '127.0.0.1', pin: null, pinnedAppValue: null, setCookie: null };
}

const policy: BackoffPolicy = { downBackoffMs: 1000, downBackoffMaxMs: 8000, probeWindowMs: 500 };

function checked(slowStartMs = 0) {
  const h = newUpstreamHealth('10.0.0.2:80', policy);
  h.checkers = 1;
  h.slowStartMs = slowStartMs;
  return h;
}

describe('active checks', () => {
  test('fall failures in a row mark it down, once; a pass in between starts the count again', () => {
    const h = checked();
    expect(checkFailed(h, 100, 3, '500', policy)).toBe('none');
    expect(checkFailed(h, 200, 3, '500', policy)).toBe('none');
    expect(checkPassed(h, 300, 2, '200')).toBe('none');
    expect(checkFailed(h, 400, 3, '500', policy)).toBe('none');
    expect(checkFailed(h, 500, 3, '500', policy)).toBe('none');
    expect(h.state).toBe('up');
    expect(checkFailed(h, 600, 3, '500', policy)).toBe('down');
    expect([h.state, h.lastCheck, h.downs]).toEqual(['down', '500', 1]);
    expect(checkFailed(h, 700, 3, '500', policy)).toBe('still-down');
    expect(h.downs).toBe(1);
  });

  test('rise passes in a row bring it back, once; a failure in between starts the count again', () => {
    const h = checked();
    for (let i = 0; i < 3; i++) checkFailed(h, i, 3, 'connect ECONNREFUSED', policy);
    expect(checkPassed(h, 10, 3, '200')).toBe('still-down');
    expect(checkFailed(h, 20, 3, '500', policy)).toBe('still-down');
    expect(checkPassed(h, 30, 3, '200')).toBe('still-down');
    expect(checkPassed(h, 40, 3, '200')).toBe('still-down');
    expect(checkPassed(h, 50, 3, '200')).toBe('up');
    expect([h.state, h.ups, h.since]).toEqual(['up', 1, 50]);
    expect(checkPassed(h, 60, 3, '200')).toBe('none');
    expect(h.ups).toBe(1);
  });

  test('while checks watch it, a down backend gets no half-open trial, and a stray answer does not bring it back', () => {
    const h = checked();
    expect(recordFailure(h, 0, 'connect ECONNREFUSED', policy)).toBe('down');
    expect(isAvailable(h, 60_000)).toBe(false);
    expect(admit(h, 60_000, policy)).toBe(false);
    expect(recordSuccess(h, policy, 70_000)).toBe('still-down');
    expect(h.state).toBe('down');
    // The passive mark-down needs rise passes like a check's.
    expect(checkPassed(h, 80_000, 2, '200')).toBe('still-down');
    expect(checkPassed(h, 81_000, 2, '200')).toBe('up');
    expect(isAvailable(h, 81_000)).toBe(true);
  });

  test('without checks the passive breaker is unchanged: a trial after the backoff, and an answer brings it back', () => {
    const h = newUpstreamHealth('10.0.0.2:80', policy);
    expect(recordFailure(h, 0, 'connect ECONNREFUSED', policy)).toBe('down');
    expect(isAvailable(h, 999)).toBe(false);
    expect(isAvailable(h, 1000)).toBe(true);
    expect(recordSuccess(h, policy, 1200)).toBe('up');
    expect([h.state, h.failures]).toEqual(['up', 0]);
  });

  test('checks stopping (reload) leave a down backend to the passive breaker, due for a trial after its backoff', () => {
    const h = checked();
    for (let i = 0; i < 3; i++) checkFailed(h, 1000, 3, '500', policy);
    h.checkers = 0;
    expect(isAvailable(h, 1500)).toBe(false);
    expect(isAvailable(h, 2000)).toBe(true);
  });
});

describe('slow start', () => {
  test('back up, it is starting and its share ramps linearly from 1/20 to full over slow_start, then it is up', () => {
    const h = checked(10_000);
    for (let i = 0; i < 3; i++) checkFailed(h, 0, 3, '500', policy);
    expect(slowStartFactor(h, 5)).toBe(0);
    checkPassed(h, 1000, 2, '200');
    expect(checkPassed(h, 2000, 2, '200')).toBe('up');
    expect(h.state).toBe('starting');
    expect(slowStartFactor(h, 2000)).toBe(0.05);
    expect(slowStartFactor(h, 4500)).toBe(0.25);
    expect(slowStartFactor(h, 7000)).toBe(0.5);
    expect(settleSlowStart(h, 11_999)).toBe(false);
    expect(settleSlowStart(h, 12_000)).toBe(true);
    expect([h.state, slowStartFactor(h, 12_000)]).toEqual(['up', 1]);
  });

  test('effectiveWeight is the weight times the ramp', () => {
    const conf = `CREATE POOL web
  POOL web ADD 127.0.0.1:8081
  SET slow_start = 10s
CREATE SERVICE b
  SET role = reverse_proxy
  SET pool = web
  SET listen = 127.0.0.1:0
ENABLE b
`;
    const config = parsePerlbalConfig(conf, { file: 'p.conf' });
    const svc = newServiceRuntime(newEngine(log.withTag('test')), compileService(config.services[0]!, config));
    const u = svc.nodes[0]!;
    u.weight = 4;
    u.health.slowStartMs = 10_000;
    u.health.state = 'starting';
    u.health.since = 0;
    expect(effectiveWeight(u, 5000)).toBe(2);
    u.health.state = 'up';
    expect(effectiveWeight(u, 5000)).toBe(4);
  });
});

describe('passive 5xx streak', () => {
  test('off at 0; otherwise the threshold-th 5xx in a row says down, any other status resets the streak', () => {
    const h = newUpstreamHealth('10.0.0.2:80', policy);
    for (let i = 0; i < 50; i++) expect(noteStatus(h, 500, 0)).toBe(false);
    expect(noteStatus(h, 502, 3)).toBe(false);
    expect(noteStatus(h, 503, 3)).toBe(false);
    expect(noteStatus(h, 404, 3)).toBe(false);
    expect(noteStatus(h, 500, 3)).toBe(false);
    expect(noteStatus(h, 500, 3)).toBe(false);
    expect(noteStatus(h, 500, 3)).toBe(true);
    recordFailure(h, 0, '5xx', policy);
    // Its half-open trial answering 5xx again is a failure at once.
    expect(noteStatus(h, 500, 3)).toBe(true);
  });
});

describe('check spec', () => {
  test('checks are on with a path or health_check = http|tcp, off otherwise; defaults as documented', () => {
    expect(poolHealthOptions({}).check).toBeNull();
    expect(poolHealthOptions({ health_check: 'off', health_check_path: '/x' }).check).toBeNull();
    const http = poolHealthOptions({ health_check_path: '/health' }).check!;
    expect([http.kind, http.method, http.path, http.intervalMs, http.timeoutMs, http.rise, http.fall]).toEqual(['http', 'GET', '/health', 2000, 1000, 2, 3]);
    expect(describeCheck(http)).toBe('GET /health');
    const tcp = poolHealthOptions({ health_check: 'tcp' }).check!;
    expect(describeCheck(tcp)).toBe('TCP connect');
    expect(poolHealthOptions({ all_down: '503' }).allDown).toBe('503');
    expect(poolHealthOptions({}).allDown).toBe('keep_trying');
  });

  test('expected statuses are ranges; the default takes 2xx and 3xx', () => {
    const d = poolHealthOptions({ health_check_path: '/' }).check!;
    expect([199, 200, 302, 399, 400, 500].map((s) => expectedStatus(d, s))).toEqual([false, true, true, true, false, false]);
    const s = poolHealthOptions({ health_check_path: '/', health_check_expect: [200, 200, 301, 302] }).check!;
    expect([200, 204, 301, 302, 303].map((x) => expectedStatus(s, x))).toEqual([true, false, true, true, false]);
  });

  test('two pools with the same settings share a spec id; any difference makes another', () => {
    const a = poolHealthOptions({ health_check_path: '/h' }).check!;
    expect(poolHealthOptions({ health_check_path: '/h' }).check!.id).toBe(a.id);
    expect(poolHealthOptions({ health_check_path: '/h', health_check_rise: 5 }).check!.id).not.toBe(a.id);
  });
});

describe('all_down', () => {
  const conf = (extra: string): string => `CREATE POOL web
  POOL web ADD 127.0.0.1:8081
  POOL web ADD 127.0.0.1:8082
  SET health_check_path = /
  ${extra}
CREATE SERVICE b
  SET role = reverse_proxy
  SET pool = web
  SET listen = 127.0.0.1:0
ENABLE b
`;
  const svcOf = (extra: string) => {
    const config = parsePerlbalConfig(conf(extra), { file: 'p.conf' });
    return newServiceRuntime(newEngine(log.withTag('test')), compileService(config.services[0]!, config));
  };

  test('by default the backend whose last failure is the oldest takes the request; all_down = 503 refuses', () => {
    for (const [extra, want] of [['', '127.0.0.1:8082'], ['SET all_down = 503', null]] as const) {
      const svc = svcOf(extra);
      const [a, b] = svc.nodes as [typeof svc.nodes[0], typeof svc.nodes[0]];
      for (const u of [a, b]) u.health.checkers = 1;
      for (let i = 0; i < 3; i++) checkFailed(b.health, 100, 3, '500', policy);
      for (let i = 0; i < 3; i++) checkFailed(a.health, 200, 3, '500', policy);
      expect([available(a, 300), available(b, 300)]).toEqual([false, false]);
      expect(chooseUpstream(svc, request(), null)?.key ?? null).toBe(want);
      // Backends that already failed this request are not tried again.
      if (want !== null) expect(chooseUpstream(svc, request(), [b])?.key).toBe('127.0.0.1:8081');
      // A connect_ahead spare is never opened to a pool that is all down.
      expect(chooseUpstream(svc, null, null)).toBeNull();
    }
  });
});
