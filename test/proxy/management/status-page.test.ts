// The management port's status page and /status.json over real sockets, and the page as a real browser (Debian's
// headless chromium) renders it: services, pools, each backend's state, requests, errors, latency, a meta refresh,
// and nothing that needs JavaScript.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePerlbalConfig } from '../../../src/config/perlbal.ts';
import { startProxy, type ProxyHandle } from '../../../src/proxy/index.ts';
import { statusHtml, type StatusReport } from '../../../src/proxy/management/status.ts';
import { closedPort, quietLog, rawBackend, rawRequest, type RawBackend } from '../helpers.ts';

let b1: RawBackend;
let dead = 0;
let proxy: ProxyHandle;
let port = 0;
let mgmt = 0;
let front = 0;

beforeAll(async () => {
  b1 = await rawBackend('b1');
  dead = await closedPort();
  const text = `CREATE POOL web_pool
  POOL web_pool ADD 127.0.0.1:${b1.port}
  POOL web_pool ADD 127.0.0.1:${dead}
  SET balance_method = roundrobin
CREATE SERVICE balancer
  SET role = reverse_proxy
  SET listen = 127.0.0.1:0
  SET pool = web_pool
ENABLE balancer
CREATE SERVICE spare
  SET role = reverse_proxy
  SET pool = web_pool
CREATE SERVICE mgmt
  SET role = management
  SET listen = 127.0.0.1:0
ENABLE mgmt
LOAD vhosts
CREATE SERVICE front
  SET role = selector
  SET listen = 127.0.0.1:0
  SET plugins = vhosts
  VHOST status.example = mgmt
  VHOST * = balancer
ENABLE front
`;
  proxy = await startProxy(parsePerlbalConfig(text, { file: 'status.conf' }), { log: quietLog });
  port = proxy.listeners().find((l) => l.service === 'balancer')!.port;
  mgmt = proxy.listeners().find((l) => l.service === 'mgmt')!.port;
  front = proxy.listeners().find((l) => l.service === 'front')!.port;
  // Round-robin: the second request tries the dead backend (marked down, retried on b1); b1 answers all six.
  for (let i = 0; i < 6; i++) await rawRequest(port, `GET /${i} HTTP/1.0\r\n\r\n`, { timeoutMs: 3000 });
});

afterAll(async () => {
  await proxy?.close({ graceful: false });
  await b1?.close();
});

async function get(path: string): Promise<{ head: string; body: string }> {
  const r = await rawRequest(mgmt, `GET ${path} HTTP/1.0\r\n\r\n`, { timeoutMs: 3000 });
  expect(r.closed).toBe(true);
  const at = r.data.indexOf('\r\n\r\n');
  return { head: r.data.slice(0, at), body: r.data.slice(at + 4) };
}

describe('status on the management port', () => {
  test('/status.json reports each service with requests, errors, latency and each backend’s health', async () => {
    const { head, body } = await get('/status.json');
    expect(head).toStartWith('HTTP/1.0 200 OK\r\n');
    expect(head).toContain('Content-Type: application/json');
    const report = JSON.parse(body) as StatusReport;
    expect(report.services.map((s) => [s.name, s.role, s.enabled])).toEqual([
      ['balancer', 'reverse_proxy', true], ['spare', 'reverse_proxy', false], ['mgmt', 'management', true], ['front', 'selector', true],
    ]);
    const bal = report.services[0]!;
    expect(bal.responses['2xx']).toBe(6);
    expect(bal.requests).toBe(6);
    expect(bal.connectFailures).toBeGreaterThanOrEqual(1);
    expect(bal.errors).toBe(bal.connectFailures);
    expect(bal.latencyMs).toBeGreaterThan(0);
    expect(bal.pool).toBe('web_pool');
    const byAddr = new Map(bal.backends.map((b) => [b.address, b]));
    expect(byAddr.get(`127.0.0.1:${b1.port}`)).toMatchObject({ health: 'up', admin: 'ready', requests: 6 });
    expect(byAddr.get(`127.0.0.1:${b1.port}`)!.latencyMs).toBeGreaterThan(0);
    expect(byAddr.get(`127.0.0.1:${dead}`)).toMatchObject({ health: 'down', requests: 1, failures: 1, latencyMs: null });
  });

  test('/status is an HTML page that refreshes itself without JavaScript', async () => {
    const { head, body } = await get('/status');
    expect(head).toStartWith('HTTP/1.0 200 OK\r\n');
    expect(head).toContain('Content-Type: text/html; charset=utf-8');
    expect(body).toContain('<meta http-equiv="refresh" content="5">');
    expect(body).not.toContain('<script');
    expect(body).toContain(`<td>127.0.0.1:${dead}</td><td class="down">down</td>`);
  });

  test('a management service that is a VHOST target answers its pages through the selector, one answer per connection', async () => {
    const json = await rawRequest(front, 'GET /status.json HTTP/1.1\r\nHost: status.example\r\n\r\n', { timeoutMs: 3000 });
    expect(json.closed).toBe(true);
    expect(json.data).toStartWith('HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n');
    expect(JSON.parse(json.data.slice(json.data.indexOf('\r\n\r\n') + 4)).services[0].name).toBe('balancer');
    const perlbalPage = await rawRequest(front, 'GET / HTTP/1.0\r\nHost: status.example\r\n\r\n', { timeoutMs: 3000 });
    expect(perlbalPage.data).toContain('<title>perlbal management interface</title>');
    // Other hosts still reach the balancer.
    expect((await rawRequest(front, 'GET /x HTTP/1.0\r\nHost: www.example\r\n\r\n', { timeoutMs: 3000 })).data).toContain('hello from b1');
  });

  test('statusHtml escapes what it prints', () => {
    const report: StatusReport = { version: '<v>', pid: 1, startedEpochSec: 0, uptimeSec: 3700, services: [] };
    const html = statusHtml(report);
    expect(html).toContain('tsbal &lt;v&gt;');
    expect(html).toContain('up 1h 1m');
  });

  const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
  // scripts/setup.sh installs Debian's chromium; without it this test cannot run.
  (chromium === undefined ? test.skip : test)('headless chromium renders the page: the services, the backends and their states are in its DOM', async () => {
    const profile = mkdtempSync(join(tmpdir(), 'tsbal-chromium-'));
    try {
      // Asynchronous: the proxy answering the browser runs in this process.
      const child = spawn(
        chromium!,
        [
          '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
          '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, '--dump-dom', `http://127.0.0.1:${mgmt}/status`,
        ],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      );
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      clearTimeout(timer);
      const r = { status, stdout };
      expect(r.status).toBe(0);
      const dom = r.stdout;
      expect(dom).toContain('<h1>tsbal status</h1>');
      expect(dom).toMatch(/<td><a href="#svc-balancer">balancer<\/a><\/td><td>reverse_proxy<\/td><td>127\.0\.0\.1:\d+<\/td><td><span class="listening">enabled<\/span><\/td>/);
      expect(dom).toContain('<td><a href="#svc-spare">spare</a></td><td>reverse_proxy</td><td>-</td><td><span class="off">disabled</span></td>');
      expect(dom).toContain(`<td>127.0.0.1:${b1.port}</td><td class="up">up</td><td class="ready">ready</td>`);
      expect(dom).toContain(`<td>127.0.0.1:${dead}</td><td class="down">down</td>`);
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  }, 90_000);
});
