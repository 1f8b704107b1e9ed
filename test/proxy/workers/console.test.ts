// SERVER workers = 2 for real: the console's per-connection reports (`states`, `backends`, `queues`, `show service`),
// /status's idle backend connections and /metrics' backend connections cover the connections of both workers, not the owner's own (it has none).
// Kept-alive clients are opened until both workers hold some (SO_REUSEPORT spreads them by address); `ss` says which
// worker holds which client and backend connection, and the console's figures must add up to exactly that.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY } from '../../harness/cli.ts';
import { closedPort, rawBackend, type RawBackend } from '../helpers.ts';

let dir: string;
let backends: RawBackend[];
let child: ChildProcess | undefined;
let out = '';
let port: number;
let mgmt: number;
const clients: Socket[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsbal-workers-console-'));
  backends = [await rawBackend('a'), await rawBackend('b')];
  port = await closedPort();
  mgmt = await closedPort();
  const conf = join(dir, 'tsbal.conf');
  writeFileSync(
    conf,
    `SERVER workers = 2\nCREATE POOL web\n${backends.map((b) => `  POOL web ADD 127.0.0.1:${b.port}\n`).join('')}` +
      `CREATE SERVICE proxy\n  SET listen = 127.0.0.1:${port}\n  SET role = reverse_proxy\n  SET pool = web\n  SET persist_client = on\n` +
      `  SET persist_backend = on\nENABLE proxy\nCREATE SERVICE mgmt\n  SET role = management\n  SET listen = 127.0.0.1:${mgmt}\nENABLE mgmt\n`,
  );
  child = spawn(process.execPath, [CLI_ENTRY, 'run', '-c', conf, '--state-dir', join(dir, 'state')], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const t0 = performance.now();
  while (!out.includes('2 workers serving')) {
    if (performance.now() - t0 > 20_000 || child.exitCode !== null) throw new Error(`tsbal run did not start; log:\n${out}`);
    await Bun.sleep(20);
  }
}, 30_000);

afterAll(async () => {
  for (const c of clients) c.destroy();
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child!.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  for (const b of backends) await b.close();
  rmSync(dir, { recursive: true, force: true });
}, 20_000);

/** Pids holding established TCP connections matching the ss filter, one entry per connection. */
function connectionPids(filter: string): number[] {
  const text = spawnSync('ss', ['-Htnp', 'state', 'established', filter], { encoding: 'utf8' }).stdout;
  return [...text.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
}

function consoleCommand(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(mgmt, '127.0.0.1', () => s.write(`${command}\r\nquit\r\n`));
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (buf += d));
    s.on('end', () => resolve(buf));
    s.on('error', reject);
    setTimeout(() => reject(new Error(`console: no answer to ${command}`)), 5000).unref();
  });
}

function get(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: mgmt, path }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve(b));
    })
      .on('error', reject)
      .end();
  });
}

async function statusJson(): Promise<{ services: Array<{ name: string; backends: Array<{ address: string; idle: number }> }> }> {
  return JSON.parse(await get('/status.json'));
}

/** A kept-alive client that has had one answer (it then waits for its next request: persist_wait). */
function keptAliveClient(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      if (/\r\n\r\nhello from \w\n$/.test(buf)) resolve(s);
    });
    s.on('error', reject);
    setTimeout(() => reject(new Error('no answer through the proxy')), 5000).unref();
  });
}

const stateCount = (text: string, cls: string, state: string): number => Number(new RegExp(`^Perlbal::${cls} ${state} (\\d+)\\r?$`, 'm').exec(text)?.[1] ?? 0);

describe('SERVER workers = 2: the console reports every worker’s connections', () => {
  test('states, backends, show service and /status count the kept-alive clients and idle backend connections of both workers', async () => {
    // Open clients until both workers hold some (bounded: 64).
    let workersHolding = 0;
    while (clients.length < 64 && (clients.length < 8 || workersHolding < 2)) {
      clients.push(await keptAliveClient());
      workersHolding = new Set(connectionPids(`sport = :${port}`)).size;
    }
    expect(workersHolding).toBe(2);
    const clientPids = connectionPids(`sport = :${port}`);
    expect(clientPids.length).toBe(clients.length);
    expect(clientPids).not.toContain(child!.pid);

    // Backend connections held idle by the workers (the backends' side is this test process).
    const backendPids = (): number[] => backends.flatMap((b) => connectionPids(`dport = :${b.port}`)).filter((p) => p !== process.pid);
    const idle = backendPids();
    expect(new Set(idle).size).toBe(2);

    const states = await consoleCommand('states');
    expect(stateCount(states, 'ClientProxy', 'persist_wait')).toBe(clients.length);
    expect(stateCount(states, 'BackendHTTP', 'bored')).toBe(idle.length);
    const perService = await consoleCommand('states proxy');
    expect(stateCount(perService, 'ClientProxy', 'persist_wait')).toBe(clients.length);

    const lines = (await consoleCommand('backends')).split('\r\n');
    const total = lines.map((l) => /^127\.0\.0\.1:\d+ (\d+)$/.exec(l)).reduce((a, m) => a + (m === null ? 0 : Number(m[1])), 0);
    expect(total).toBe(idle.length);

    const detail = await consoleCommand('show service proxy');
    expect(detail).toContain(` connect-ahead: ${idle.length}/0\r\n`);
    expect(detail).toContain('  pend clients: 0\r\n');

    const queues = await consoleCommand('queues');
    expect(queues).toContain('proxy-normal.count 0\r\n');

    const status = await statusJson();
    const proxy = status.services.find((s) => s.name === 'proxy')!;
    expect(proxy.backends.reduce((a, b) => a + b.idle, 0)).toBe(idle.length);
    for (const b of backends) {
      const at = proxy.backends.find((x) => x.address === `127.0.0.1:${b.port}`)!;
      expect(at.idle).toBe(connectionPids(`dport = :${b.port}`).filter((p) => p !== process.pid).length);
    }

    const metrics = await get('/metrics');
    const idleMetric = [...metrics.matchAll(/^tsbal_backend_connections\{backend="[^"]+",state="idle"\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
    expect(idleMetric).toBe(idle.length);
  }, 60_000);

  test('a worker killed mid-life: the console still answers at once, and counts the survivor’s connections', async () => {
    const pids = [...new Set(connectionPids(`sport = :${port}`))];
    expect(pids.length).toBe(2);
    const victim = pids[0]!;
    const survivorClients = connectionPids(`sport = :${port}`).filter((p) => p !== victim).length;
    process.kill(victim, 'SIGKILL');
    const t0 = performance.now();
    const states = await consoleCommand('states');
    expect(performance.now() - t0).toBeLessThan(3000);
    // The restarted worker has none of the old clients; the survivor keeps its own.
    expect(stateCount(states, 'ClientProxy', 'persist_wait')).toBe(survivorClients);
  }, 30_000);
});
