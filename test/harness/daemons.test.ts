// The comparison harness itself: each real daemon starts on a free port, serves, and leaves nothing behind.
import { afterAll, describe, expect, test } from 'bun:test';
import fs from 'node:fs';
import {
  type Daemon,
  TUTORIAL_OPTIONS,
  canConnect,
  groupUsage,
  parseWrk,
  readProc,
  runWrk,
  startApache,
  startHaproxy,
  startNginxBackend,
  startNginxProxy,
  startPerlbal,
  stopAll,
} from './daemons.ts';
import { startRawBackend } from './rawbackend.ts';
import { describeOutcome, exchange } from './rawclient.ts';

const started: Daemon[] = [];
afterAll(() => stopAll(started));

async function body(port: number, path: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return `${response.status} ${await response.text()}`;
}

describe('daemons', () => {
  test('Apache serves static, slow and echo routes, logs hits, and stop leaves no process or temp dir', async () => {
    const apache = await startApache({ name: 'h1' });
    started.push(apache);
    expect(await body(apache.port, '/')).toBe('200 apache h1\n');
    const t0 = Date.now();
    expect(await body(apache.port, '/slow?ms=200')).toBe('200 slept 200\n');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    const echo = await fetch(`http://127.0.0.1:${apache.port}/echo`, { headers: { 'X-Probe': 'p1' } });
    expect(await echo.text()).toContain('X-Probe: p1');
    expect(await apache.waitForHits(3)).toEqual(['GET / HTTP/1.1', 'GET /slow?ms=200 HTTP/1.1', 'GET /echo HTTP/1.1']);
    expect(apache.usage().processes).toBeGreaterThanOrEqual(2); // parent + event child
    await apache.stop();
    expect(groupUsage(apache.pid).processes).toBe(0);
    expect(fs.existsSync(apache.dir)).toBe(false);
    expect(await canConnect(apache.port)).toBe(false);
  });

  test('SIGKILL of a daemon process group kills its forked children too', async () => {
    const apache = await startApache({ name: 'k1' });
    started.push(apache);
    apache.signalGroup('SIGKILL');
    expect(await apache.waitGone(3000)).toBe(true);
    expect(apache.exitStatus()?.signal).toBe('SIGKILL');
    await apache.stop();
  });

  test('HAProxy and nginx proxy to two nginx backends with X-Forwarded-For', async () => {
    const backends = await Promise.all([startNginxBackend({ name: 'n1' }), startNginxBackend({ name: 'n2' })]);
    started.push(...backends);
    const ports = backends.map((b) => b.port);
    const [haproxy, nginx] = await Promise.all([startHaproxy(ports), startNginxProxy(ports)]);
    started.push(haproxy, nginx);
    for (const proxy of [haproxy, nginx]) {
      const answers = new Set([await body(proxy.port, '/'), await body(proxy.port, '/')]);
      expect(answers).toEqual(new Set(['200 nginx n1\n', '200 nginx n2\n'])); // round robin
      expect(await body(proxy.port, '/echo')).toContain('x-forwarded-for: 127.0.0.1\n');
    }
  });

  test('Perlbal prints its startup lines and forwards with the verify probe first (reference 8.1)', async () => {
    const backend = await startRawBackend({ name: 'b1' });
    try {
      const perlbal = await startPerlbal({ backends: [backend.port], set: TUTORIAL_OPTIONS });
      started.push(perlbal);
      expect(perlbal.output()).toContain('Running.\nbeginning run\n');
      const { outcome } = await exchange(perlbal.port, 'GET /x HTTP/1.1\r\nHost: h\r\n\r\n');
      expect(outcome.kind === 'response' && outcome.response.status, describeOutcome(outcome)).toBe(200);
      expect(backend.requests().map((r) => `${r.conn}:${r.head.startLine}`)).toEqual([
        '1:OPTIONS * HTTP/1.0',
        '1:GET /x HTTP/1.0',
      ]);
    } finally {
      await backend.close();
    }
  });

  test('wrk runs bounded and reports req/s, percentiles and no errors; /proc accounting sees the CPU', async () => {
    const nginx = await startNginxBackend({ name: 'w' });
    started.push(nginx);
    const before = nginx.usage();
    const result = await runWrk({ url: `http://127.0.0.1:${nginx.port}/`, threads: 1, connections: 4, durationSeconds: 1 });
    const after = nginx.usage();
    expect(result.requests).toBeGreaterThan(100);
    expect(result.latencyMs.p99).toBeGreaterThan(0);
    expect(result.errors).toEqual({ connect: 0, read: 0, write: 0, timeout: 0, non2xx3xx: 0 });
    expect(after.cpuSeconds).toBeGreaterThan(before.cpuSeconds);
    expect(after.rssBytes).toBeGreaterThan(1_000_000);
  });
});

describe('parsers', () => {
  test('parseWrk reads a wrk 4.1 report with errors and mixed latency units', () => {
    const report = `Running 10s test @ http://127.0.0.1:1/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  300.00us  20.00ms   90.00%
    Req/Sec    20.00k     1.00k   25.00k    70.00%
  Latency Distribution
     50%  850.00us
     75%    1.20ms
     90%    2.50ms
     99%    1.02s
  400000 requests in 10.00s, 50.00MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:  39999.50
Transfer/sec:      5.00MB
`;
    const parsed = parseWrk(report);
    expect({ ...parsed, raw: '' }).toEqual({
      requests: 400000,
      seconds: 10,
      requestsPerSecond: 39999.5,
      latencyMs: { p50: 0.85, p75: 1.2, p90: 2.5, p99: 1020 },
      errors: { connect: 1, read: 2, write: 3, timeout: 4, non2xx3xx: 5 },
      raw: '',
    });
  });

  test('readProc reads our own process and null for a PID that does not exist', () => {
    const self = readProc(process.pid);
    expect(self?.pid).toBe(process.pid);
    expect(self?.rssBytes).toBeGreaterThan(1_000_000);
    expect(readProc(2 ** 22 + 1)).toBeNull();
  });
});
