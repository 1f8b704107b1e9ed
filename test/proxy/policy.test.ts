// Pure policies: backend health (circuit breaker with doubling backoff), balancing, and when a retry is safe.
import { describe, expect, test } from 'bun:test';
import { newBalancer, pick } from '../../src/proxy/upstream/select.ts';
import { isIdempotent, mayRetry } from '../../src/proxy/retry.ts';
import { admit, isAvailable, newUpstreamHealth, recordFailure, recordSuccess } from '../../src/proxy/upstream/health.ts';
import { accessLogLine } from '../../src/proxy/access-log.ts';
import { parseRequestHead, type RequestHead } from '../../src/proxy/http/request.ts';

const policy = { downBackoffMs: 1000, downBackoffMaxMs: 4000, probeWindowMs: 5000 };

describe('upstream health', () => {
  test('a failure marks it down for the backoff, which doubles up to the maximum while it keeps failing', () => {
    const h = newUpstreamHealth('b:1', policy);
    expect(recordFailure(h, 0, 'connect ECONNREFUSED', policy)).toBe('down');
    expect(isAvailable(h, 999)).toBe(false);
    expect(isAvailable(h, 1000)).toBe(true);
    const retryTimes: number[] = [];
    let now = 1000;
    for (let i = 0; i < 4; i++) {
      expect(admit(h, now, policy)).toBe(true);
      expect(recordFailure(h, now, 'again', policy)).toBe('still-down');
      retryTimes.push(h.retryAt - now);
      now = h.retryAt;
    }
    expect(retryTimes).toEqual([2000, 4000, 4000, 4000]);
    expect(h.failures).toBe(5);
  });

  test('failures of attempts already under way when it went down do not lengthen the backoff', () => {
    const h = newUpstreamHealth('b:1', policy);
    recordFailure(h, 0, 'connect ECONNREFUSED', policy);
    for (let i = 1; i < 25; i++) expect(recordFailure(h, i, 'connect ECONNREFUSED', policy)).toBe('still-down');
    expect([h.retryAt, h.backoffMs, h.failures]).toEqual([1000, 2000, 25]);
  });

  test('after the backoff only one trial request is admitted until it succeeds or its window passes', () => {
    const h = newUpstreamHealth('b:1', policy);
    recordFailure(h, 0, 'x', policy);
    expect(admit(h, 1000, policy)).toBe(true);
    expect(admit(h, 1001, policy)).toBe(false);
    expect(admit(h, 6000, policy)).toBe(true);
    expect(recordSuccess(h, policy)).toBe('up');
    expect(admit(h, 6001, policy)).toBe(true);
    expect(h.failures).toBe(0);
    // The next outage starts from the initial backoff again.
    recordFailure(h, 10_000, 'x', policy);
    expect(h.retryAt).toBe(11_000);
  });
});

describe('balancing', () => {
  const nodes = [{ active: 0, weightNow: 1, lbScore: 0 }, { active: 0, weightNow: 1, lbScore: 0 }, { active: 0, weightNow: 1, lbScore: 0 }];
  test('roundrobin cycles', () => {
    const b = newBalancer('roundrobin');
    expect(Array.from({ length: 6 }, () => pick(b, nodes))).toEqual([0, 1, 2, 0, 1, 2]);
  });
  test('leastconn takes the least busy, rotating among equals', () => {
    const b = newBalancer('leastconn');
    expect(pick(b, [{ active: 3, weightNow: 1, lbScore: 0 }, { active: 1, weightNow: 1, lbScore: 0 }, { active: 2, weightNow: 1, lbScore: 0 }])).toBe(1);
    expect(Array.from({ length: 3 }, () => pick(b, nodes)).sort()).toEqual([0, 1, 2]);
  });
  test('random spreads over all candidates', () => {
    const b = newBalancer('random');
    const seen = new Set(Array.from({ length: 200 }, () => pick(b, nodes)));
    expect([...seen].sort()).toEqual([0, 1, 2]);
    expect(pick(b, nodes, () => 0.99)).toBe(2);
  });
});

describe('retry safety', () => {
  const base = { attempts: 1, maxRetries: 2, sent: true, gotResponseBytes: false, idempotent: true, replayable: true };
  test('a request that never left is always retried, even a POST', () => {
    expect(mayRetry({ ...base, sent: false, idempotent: false, replayable: false })).toBe(true);
  });
  test('a sent idempotent request with its body held and no response byte is retried', () => {
    expect(mayRetry(base)).toBe(true);
  });
  test('never after a response byte, never a sent POST, never without the body, never beyond max_retries', () => {
    expect(mayRetry({ ...base, gotResponseBytes: true })).toBe(false);
    expect(mayRetry({ ...base, idempotent: false })).toBe(false);
    expect(mayRetry({ ...base, replayable: false })).toBe(false);
    expect(mayRetry({ ...base, attempts: 3 })).toBe(false);
  });
  test('idempotent methods are those of RFC 9110', () => {
    expect(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'].every(isIdempotent)).toBe(true);
    expect(['POST', 'PATCH', 'CONNECT', 'get'].some(isIdempotent)).toBe(false);
  });
});

describe('access log', () => {
  test('Apache combined format plus backend, backend status, time and attempts; request text escaped', () => {
    const text = 'GET /a"b HTTP/1.1\r\nHost: h\r\nReferer: http://r/\r\nUser-Agent: ua "x"';
    const req = parseRequestHead(Buffer.from(`${text}\r\n\r\n`), 0, text.length, {
      maxHeaderSize: 1000,
      maxHeaderCount: 10,
      maxUrlLength: 100,
    }) as RequestHead;
    const line = accessLogLine(
      { peerIp: '10.0.0.1', req, status: 200, bodyBytes: 17, backend: '127.0.0.1:8081', backendStatus: 200, seconds: 0.0123, attempts: 1 },
      Date.UTC(2026, 10, 26, 1, 2, 3),
    );
    expect(line).toMatch(
      /^10\.0\.0\.1 - - \[26\/Nov\/2026:\d\d:02:03 [+-]\d{4}\] "GET \/a\\"b HTTP\/1\.1" 200 17 "http:\/\/r\/" "ua \\"x\\"" backend=127\.0\.0\.1:8081 backend_status=200 time=0\.012 attempts=1\n$/,
    );
    const h2 = accessLogLine({ peerIp: '10.0.0.1', req, status: 200, bodyBytes: 17, backend: null, backendStatus: 200, seconds: 0, attempts: 1, http2: true });
    expect(h2).toContain('"GET /a\\"b HTTP/2.0" 200 17');
    const refused = accessLogLine({ peerIp: '10.0.0.1', req: null, status: 400, bodyBytes: 0, backend: null, backendStatus: null, seconds: 0, attempts: 0 });
    expect(refused).toContain('"-" 400 - "-" "-" backend=- backend_status=- time=0.000 attempts=0');
  });
});
