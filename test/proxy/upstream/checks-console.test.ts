// Health as an operator sees it: a perlbal.conf with checks, the management port's `show pool` / `node` lines and
// /metrics for a backend taken out by its checks, and the passive breaker's recovery through the verify probe logged
// once, like its mark-down.
import { afterEach, describe, expect, test } from 'bun:test';
import { createConsola } from 'consola';
import { parsePerlbalConfig } from '../../../src/config/perlbal.ts';
import { startProxy } from '../../../src/proxy/index.ts';
import { startControllableBackend, type ControllableBackend } from '../../harness/controllable.ts';
import { rawRequest } from '../helpers.ts';

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  cleanup = [];
});

async function backend(name: string): Promise<ControllableBackend> {
  const b = await startControllableBackend(name);
  cleanup.push(() => b.close());
  return b;
}

async function start(text: string) {
  const logs: string[] = [];
  const log = createConsola({ level: 4, reporters: [{ log: (o) => logs.push(o.args.join(' ')) }] });
  const proxy = await startProxy(parsePerlbalConfig(text, { file: 'health.conf' }), { log });
  cleanup.push(() => proxy.close({ graceful: false }));
  const portOf = (svc: string): number => proxy.listeners().find((l) => l.service === svc)!.port;
  return { proxy, logs, portOf };
}

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(5);
  }
}

async function talk(port: number, ...lines: string[]): Promise<string> {
  const r = await rawRequest(port, [...lines, 'quit'].map((l) => `${l}\r\n`).join(''), { timeoutMs: 3000 });
  return r.data;
}

describe('health on the management port', () => {
  test('show pool counts nodes per state, node shows state, admin and the last check; /metrics has state and transitions', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const { proxy, portOf } = await start(`CREATE POOL web
  POOL web ADD 127.0.0.1:${a.port}
  POOL web ADD 127.0.0.1:${b.port}
  SET health_check_path = /health
  SET health_check_interval = 200ms
  SET health_check_timeout = 150ms
  SET health_check_fall = 2
  SET health_check_rise = 2
CREATE SERVICE balancer
  SET role = reverse_proxy
  SET listen = 127.0.0.1:0
  SET pool = web
ENABLE balancer
CREATE SERVICE mgmt
  SET role = management
  SET listen = 127.0.0.1:0
ENABLE mgmt
`);
    const mgmt = portOf('mgmt');
    await b.set({ kind: 'status', status: 500 });
    await until('b down', () => proxy.engine.health.get(b.key)!.state === 'down', 3000);
    expect(await talk(mgmt, 'show pool')).toBe(
      'web nodes 2\r\nweb services 1\r\nweb up 1\r\nweb starting 0\r\nweb down 1\r\nweb drain 0\r\nweb maint 0\r\n.\r\n',
    );
    const node = await talk(mgmt, `node ${b.key}`);
    expect(node).toContain(`${b.key} state down\r\n${b.key} admin ready\r\n${b.key} lastcheck 500\r\n`);
    expect(await talk(mgmt, `node ${a.key}`)).toContain(`${a.key} state up\r\n${a.key} admin ready\r\n${a.key} lastcheck 200\r\n`);
    // Perlbal's own form is untouched.
    expect(await talk(mgmt, 'show pool web')).toBe(`${a.key} 0\r\n${b.key} 0\r\n.\r\n`);

    const metrics = (await rawRequest(mgmt, 'GET /metrics HTTP/1.0\r\n\r\n', { timeoutMs: 3000 })).data;
    expect(metrics).toContain(`tsbal_backend_state{backend="${b.key}",state="down"} 1\n`);
    expect(metrics).toContain(`tsbal_backend_state{backend="${b.key}",state="up"} 0\n`);
    expect(metrics).toContain(`tsbal_backend_transitions_total{backend="${b.key}",to="down"} 1\n`);
    expect(metrics).toMatch(new RegExp(`tsbal_backend_check_duration_seconds\\{backend="${b.key}"\\} 0\\.\\d+`));
    expect(metrics).toMatch(new RegExp(`tsbal_backend_checks_total\\{backend="${a.key}"\\} [1-9]`));
  });
});

describe('passive health without checks', () => {
  test('a backend marked down by a refused connect and brought back by the verify probe logs both, once each', async () => {
    const b = await backend('b');
    const { logs, portOf } = await start(`CREATE POOL web
  POOL web ADD 127.0.0.1:${b.port}
CREATE SERVICE balancer
  SET role = reverse_proxy
  SET listen = 127.0.0.1:0
  SET pool = web
  SET verify_backend = on
  SET down_backoff = 200ms
ENABLE balancer
`);
    const port = portOf('balancer');
    const get = async (): Promise<string> => (await rawRequest(port, 'GET / HTTP/1.0\r\n\r\n', { timeoutMs: 3000 })).data;
    expect(await get()).toMatch(/^HTTP\/1\.1 200/);
    await b.set({ kind: 'dead' });
    expect(await get()).toMatch(/^HTTP\/1\.1 50[23]/);
    expect(await get()).toMatch(/^HTTP\/1\.1 50[23]/);
    await b.set({ kind: 'healthy' });
    await Bun.sleep(450);
    expect(await get()).toMatch(/^HTTP\/1\.1 200/);
    expect(await get()).toMatch(/^HTTP\/1\.1 200/);
    const lines = logs.filter((l) => l.startsWith(`backend ${b.key} `) && !l.includes('still down'));
    expect(lines).toEqual([
      `backend ${b.key} down (connect ECONNREFUSED, 1 in a row; retry in 0.2 s)`,
      `backend ${b.key} up (verify probe passed after 1 failure)`,
    ]);
  });
});
