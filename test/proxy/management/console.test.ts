// The management console of a running proxy over real sockets: Perlbal's reports, live pool/SET/ENABLE changes that
// really change where requests go, the quit rules, and GET /metrics.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { parsePerlbalConfig } from '../../../src/config/perlbal.ts';
import { startProxy, type ProxyHandle } from '../../../src/proxy/index.ts';
import { canConnect, freePort } from '../../harness/ports.ts';
import { waitFor } from '../../harness/proc.ts';
import { quietLog, rawBackend, rawRequest, type RawBackend } from '../helpers.ts';

let b1: RawBackend;
let b2: RawBackend;
let proxy: ProxyHandle;
let port = 0;
let mgmt = 0;

/** Sends the lines (CRLF, as telnet does), then `quit`; the transcript until the console closes. */
async function talk(...lines: string[]): Promise<string> {
  const r = await rawRequest(mgmt, [...lines, 'quit'].map((l) => `${l}\r\n`).join(''), { timeoutMs: 3000 });
  expect(r.closed).toBe(true);
  return r.data;
}

async function get(path = '/'): Promise<string> {
  const r = await rawRequest(port, `GET ${path} HTTP/1.0\r\n\r\n`, { timeoutMs: 3000 });
  return r.data;
}

beforeAll(async () => {
  b1 = await rawBackend('b1');
  b2 = await rawBackend('b2');
  const text = `CREATE POOL backends
  POOL backends ADD 127.0.0.1:${b1.port}
CREATE SERVICE balancer
  SET role = reverse_proxy
  SET listen = 127.0.0.1:0
  SET pool = backends
  SET persist_backend = on
ENABLE balancer
CREATE SERVICE mgmt
  SET role = management
  SET listen = 127.0.0.1:0
ENABLE mgmt
`;
  proxy = await startProxy(parsePerlbalConfig(text, { file: 'mgmt.conf' }), { log: quietLog });
  port = proxy.listeners().find((l) => l.service === 'balancer')!.port;
  mgmt = proxy.listeners().find((l) => l.service === 'mgmt')!.port;
});

afterAll(async () => {
  await proxy?.close({ graceful: false });
  await b1?.close();
  await b2?.close();
});

describe('management console', () => {
  test('show service lists every service with its configured listen address and state, then a dot line', async () => {
    expect(await talk('show service')).toBe('balancer 127.0.0.1:0 ENABLED\r\nmgmt 127.0.0.1:0 ENABLED\r\n.\r\n');
  });

  test('show service <name> lays out the node use counts like Service.pm stats_info after two requests', async () => {
    expect(await get()).toContain('hello from b1');
    expect(await get()).toContain('hello from b1');
    const key = `127.0.0.1:${b1.port}`;
    expect(await talk('show service balancer', 'SHOW SERVICE mgmt')).toBe(
      [
        'SERVICE balancer',
        '     listening: 127.0.0.1:0',
        '          role: reverse_proxy',
        '  pend clients: 0',
        '  pend backend: 0',
        ' connect-ahead: 1/0',
        '          pool: backends',
        '         nodes:',
        `                ${key.padEnd(21)}       2`,
        '.',
        'SERVICE mgmt',
        '     listening: 127.0.0.1:0',
        '          role: management',
        '.',
        '',
      ].join('\r\n'),
    );
    expect(await talk('show pool', 'show pool backends', 'show pool nosuch')).toBe(
      `backends nodes 1\r\nbackends services 1\r\n.\r\n${key} 2\r\n.\r\nERROR: pool 'nosuch' does not exist\r\n`,
    );
    const nodes = (await talk(`node ${key}`)).split('\r\n');
    expect(nodes).toContain(`${key} attempts 1`);
    expect(nodes).toContain(`${key} connects 1`);
    expect(nodes).toContain(`${key} requests 2`);
    expect(nodes).toContain(`${key} responsecodes 200 2`);
    expect(nodes.find((l) => l.startsWith(`${key} lastresponse `))).toBeDefined();
    expect(await talk('states', 'states nosuch', 'queues')).toBe(
      'Perlbal::BackendHTTP bored 1\r\n.\r\nERROR: Service not found.\r\n' +
        'balancer-highpri.age 0\r\nbalancer-highpri.count 0\r\nbalancer-normal.age 0\r\nbalancer-normal.count 0\r\n' +
        'balancer-lowpri.age 0\r\nbalancer-lowpri.count 0\r\n.\r\n',
    );
  });

  test('uptime and version report the start time, the seconds since, and Perlbal 1.80', async () => {
    const now = Math.floor(Date.now() / 1000);
    const m = /^starttime (\d+)\r\nuptime (\d+)\r\nversion 1\.80\r\n\.\r\n$/.exec(await talk('version'));
    expect(m).not.toBeNull();
    expect(Math.abs(Number(m![1]) + Number(m![2]) - now)).toBeLessThanOrEqual(2);
  });

  test("errors use Perlbal's texts", async () => {
    expect(await talk('frobnicate', 'show', 'show service nosuch', 'backends now', 'disable mgmt', 'enable balancer', 'set balancer bogus = 1', 'shutdown graceful')).toBe(
      [
        'ERROR: unknown command: frobnicate',
        "ERROR: Invalid syntax to 'show' command",
        'ERROR: Unknown service',
        "ERROR: The 'backends' command takes no arguments",
        "ERROR: can't disable management service",
        'ERROR: service balancer is already enabled',
        "ERROR: Unknown service parameter 'bogus'",
        'ERROR: shutdown is not available: this proxy was not started by tsbal run',
        '',
      ].join('\r\n'),
    );
  });

  test('a line ending in exit closes the connection; nothing after it runs', async () => {
    const r = await rawRequest(mgmt, 'show service exit\r\nshow service\r\n', { timeoutMs: 3000 });
    expect(r).toMatchObject({ closed: true, data: '' });
  });

  test('POOL ADD and REMOVE change where requests go at once', async () => {
    expect(await talk(`pool backends add 127.0.0.1:${b2.port}`, `pool remove backends 127.0.0.1:${b1.port}`)).toBe('OK\r\nOK\r\n');
    expect(await get()).toContain('hello from b2');
    expect(await get()).toContain('hello from b2');
    expect(await talk('show pool backends')).toBe(`127.0.0.1:${b2.port} 2\r\n.\r\n`);
    expect(await talk(`pool backends add 127.0.0.1:${b1.port}`, `pool backends remove 127.0.0.1:${b2.port}`, 'pool backends frob 127.0.0.1', 'pool nosuch add 127.0.0.1')).toBe(
      "OK\r\nOK\r\nERROR: Invalid command:  must be 'add' or 'remove'\r\nERROR: Pool 'nosuch' not found\r\n",
    );
    expect(await get()).toContain('hello from b1');
  });

  test('SET changes a live option for the next connection; a listen that cannot be bound keeps the old one; VERBOSE off silences OK', async () => {
    const keepAlive = await rawRequest(port, 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', { timeoutMs: 300 });
    expect(keepAlive.closed).toBe(true);
    expect(await talk('set balancer persist_client = on')).toBe('OK\r\n');
    const kept = await rawRequest(port, 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', { timeoutMs: 300 });
    expect(kept.closed).toBe(false);
    const quiet = (await talk('verbose off', 'set balancer.persist_client = off', 'set balancer persist_client = maybe', `set balancer listen = 127.0.0.1:${mgmt}`)).split('\r\n');
    expect(quiet[0]).toBe("ERROR: Expecting boolean value for parameter 'persist_client'");
    expect(quiet[1]).toBe(`ERROR: Can't start service 'balancer' on 127.0.0.1:${mgmt}: Error creating listening socket: Address already in use; still listening on 127.0.0.1:0`);
    expect(quiet.length).toBe(3);
    expect(await get()).toContain('hello from b1');
  });

  test('SET listen on an enabled service binds the new address before closing the old one', async () => {
    const next = await freePort();
    expect(await talk(`set balancer listen = 127.0.0.1:${next}`)).toBe('OK\r\n');
    expect(await canConnect(port)).toBe(false);
    const old = port;
    port = next;
    expect(await get()).toContain('hello from b1');
    expect(await talk('set balancer listen = 127.0.0.1:0')).toBe('OK\r\n');
    port = proxy.listeners().find((l) => l.service === 'balancer')!.port;
    expect(port).not.toBe(old);
    expect(await canConnect(next)).toBe(false);
  });

  test('DISABLE closes the listener and ENABLE opens it again', async () => {
    expect(await talk('disable balancer', 'show service')).toBe('OK\r\nbalancer 127.0.0.1:0 DISABLED\r\nmgmt 127.0.0.1:0 ENABLED\r\n.\r\n');
    expect(await canConnect(port)).toBe(false);
    expect(await talk('disable balancer', 'enable balancer', 'enable nosuch')).toBe(
      "ERROR: service balancer is already disabled\r\nOK\r\nERROR: service 'nosuch' does not exist\r\n",
    );
    // The config says port 0, so the listener comes back on a new port.
    port = proxy.listeners().find((l) => l.service === 'balancer')!.port;
    expect(await get()).toContain('hello from b1');
  });

  test('GET /metrics answers Prometheus text with request, backend and connection figures', async () => {
    const r = await rawRequest(mgmt, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 3000 });
    expect(r.closed).toBe(true);
    const [head, body] = r.data.split('\r\n\r\n') as [string, string];
    expect(head).toStartWith('HTTP/1.0 200 OK\r\n');
    expect(head).toContain('Content-Type: text/plain; version=0.0.4');
    expect(body).toContain('# TYPE tsbal_requests_total counter\n');
    expect(body).toMatch(/^tsbal_requests_total\{service="balancer",code="2xx"\} (\d+)$/m);
    expect(Number(/^tsbal_requests_total\{service="balancer",code="2xx"\} (\d+)$/m.exec(body)![1])).toBeGreaterThanOrEqual(7);
    expect(body).toContain(`tsbal_backend_up{service="balancer",backend="127.0.0.1:${b1.port}"} 1\n`);
    expect(body).toMatch(/^tsbal_retries_total\{service="balancer"\} 0$/m);
    expect((await rawRequest(mgmt, 'GET /other HTTP/1.0\r\n\r\n')).data).toStartWith('HTTP/1.0 404 Not found\r\n');
  });
});

describe('management console across a reload', () => {
  test('after a reload the console shows the new services and pools, and the request counters carry on', async () => {
    const before = (await rawRequest(mgmt, 'GET /metrics HTTP/1.0\r\n\r\n')).data;
    const count = (text: string): number => Number(/^tsbal_requests_total\{service="balancer",code="2xx"\} (\d+)$/m.exec(text)?.[1] ?? -1);
    const next = parsePerlbalConfig(
      `CREATE POOL backends
  POOL backends ADD 127.0.0.1:${b2.port}
CREATE POOL other
CREATE SERVICE balancer
  SET role = reverse_proxy
  SET listen = 127.0.0.1:0
  SET pool = backends
ENABLE balancer
CREATE SERVICE mgmt
  SET role = management
  SET listen = 127.0.0.1:0
ENABLE mgmt
`,
      { file: 'mgmt.conf' },
    );
    const outcome = await proxy.reload(next);
    expect(outcome).toMatchObject({ ok: true });
    expect(await talk('show pool', 'show pool backends')).toBe(
      `backends nodes 1\r\nbackends services 1\r\nother nodes 0\r\nother services 0\r\n.\r\n127.0.0.1:${b2.port} 0\r\n.\r\n`,
    );
    expect(await get()).toContain('hello from b2');
    expect(count((await rawRequest(mgmt, 'GET /metrics HTTP/1.0\r\n\r\n')).data)).toBe(count(before) + 1);
  });
});

describe('management port on an address that is not local yet', () => {
  test('the proxy starts; the console waits in pendingBinds like a service on a VIP', async () => {
    if ((await Bun.file('/proc/sys/net/ipv4/ip_nonlocal_bind').text()).trim() !== '0') return;
    const b = await rawBackend('b');
    // 198.18.0.0/24 is the test range; nothing on this host has this address, and binding sends no traffic.
    const text = `CREATE POOL p
  POOL p ADD 127.0.0.1:${b.port}
CREATE SERVICE web
  SET role = reverse_proxy
  SET listen = 127.0.0.1:0
  SET pool = p
ENABLE web
CREATE SERVICE mgmt
  SET role = management
  SET listen = 198.18.0.254:0
ENABLE mgmt
`;
    const p = await startProxy(parsePerlbalConfig(text, { file: 'vip.conf' }), { log: quietLog });
    try {
      expect(p.pendingBinds()).toEqual([{ service: 'mgmt', host: '198.18.0.254', port: 0, code: 'EADDRNOTAVAIL' }]);
      expect(await p.retryBind()).toEqual([{ service: 'mgmt', host: '198.18.0.254', port: 0, code: 'EADDRNOTAVAIL' }]);
      expect(p.listeners().map((l) => l.service)).toEqual(['web']);
    } finally {
      await p.close({ graceful: false });
      await b.close();
    }
  });
});

describe('POOL REMOVE of a backend with a request in flight', () => {
  test('the request finishes, then its connection closes instead of going back to the idle pool', async () => {
    const slow = await rawBackend('slow', (socket, _i, received) => {
      if (received.endsWith('\r\n\r\n')) setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nX-Backend: slow\r\nContent-Length: 4\r\n\r\nslow'), 300);
    });
    const text = `CREATE POOL p
  POOL p ADD 127.0.0.1:${slow.port}
CREATE SERVICE web
  SET role = reverse_proxy
  SET listen = 127.0.0.1:0
  SET pool = p
  SET persist_backend = on
ENABLE web
CREATE SERVICE console
  SET role = management
  SET listen = 127.0.0.1:0
ENABLE console
`;
    const own = await startProxy(parsePerlbalConfig(text, { file: 'remove.conf' }), { log: quietLog });
    try {
      const webPort = own.listeners().find((l) => l.service === 'web')!.port;
      const consolePort = own.listeners().find((l) => l.service === 'console')!.port;
      const inFlight = rawRequest(webPort, 'GET / HTTP/1.1\r\nHost: t\r\n\r\n', { until: (d) => d.endsWith('slow'), timeoutMs: 3000 });
      await waitFor('the request to reach the slow backend', () => (slow.conns[0]?.endsWith('\r\n\r\n') ? true : undefined), { timeoutMs: 2000, intervalMs: 5 });
      const removed = await rawRequest(consolePort, `pool p remove 127.0.0.1:${slow.port}\r\nquit\r\n`, { timeoutMs: 3000 });
      expect(removed.data).toBe('OK\r\n');
      const r = await inFlight;
      expect(r.data).toStartWith('HTTP/1.1 200 OK');
      expect(r.data).toEndWith('slow');
      // persist_backend would keep it idle for backend_idle_timeout (30 s) if the node were not retired.
      await waitFor('the removed backend connection to close', () => (slow.sockets.size === 0 ? true : undefined), {
        timeoutMs: 2000,
        intervalMs: 10,
        describe: () => `${slow.sockets.size} connection(s) still open to the removed backend`,
      });
    } finally {
      await own.close({ graceful: false });
      await slow.close();
    }
  });
});
