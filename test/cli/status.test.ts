// `tsbal status` against a real `tsbal run` (proxy only, no management service configured): every backend's health
// and load from the running process, a backend going down and coming back as transitions, plain text off a
// terminal, JSON for scripts, and a clear exit 3 when nothing runs.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StatusSnapshot } from '../../src/status/snapshot.ts';
import { CLI_ENTRY, runCommand, runTsbal } from '../harness/cli.ts';
import { closedPort, rawBackend, rawRequest, type RawBackend } from '../proxy/helpers.ts';

let dir: string;
let a: RawBackend, b: RawBackend, slow: RawBackend;
let child: ChildProcess | null = null;
let out = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsbal-status-'));
  [a, b] = await Promise.all([rawBackend('a'), rawBackend('b')]);
  // Takes requests and never answers: they stay in flight until the test ends.
  slow = await rawBackend('slow', () => undefined);
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await Promise.all([a.close(), b.close(), slow.close()]);
  rmSync(dir, { recursive: true, force: true });
});

async function status(stateDir: string): Promise<StatusSnapshot> {
  const r = await runTsbal(['status', '--json', '--state-dir', stateDir]);
  if (r.code !== 0) throw new Error(`tsbal status exited ${r.code}: ${r.stderr}\nrun's output:\n${out}`);
  return JSON.parse(r.stdout) as StatusSnapshot;
}

const get = (port: number): Promise<string> => rawRequest(port, 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n').then((r) => r.data);

/** Sends requests (at most 50, 5 s) until `done` says so. */
async function requestUntil(port: number, done: () => Promise<boolean>, what: string): Promise<void> {
  const t0 = performance.now();
  for (let i = 0; i < 50 && performance.now() - t0 < 5000; i++) {
    expect(await get(port)).toContain('200 OK');
    if (await done()) return;
    await Bun.sleep(100);
  }
  throw new Error(`${what} not seen within 50 requests / 5 s; run's output:\n${out}`);
}

describe('tsbal status', () => {
  test("shows each backend's health and load from the running process, and a backend's down and up as transitions", async () => {
    const [webPort, slowPort] = [await closedPort(), await closedPort()];
    const stateDir = join(dir, 'state');
    const confPath = join(dir, 'perlbal.conf');
    writeFileSync(
      confPath,
      // One process: the exact counts below (5 and 5) pin round robin's alternation, which each worker of SERVER
      // workers keeps on its own (test/proxy/workers/ covers the workers' sums).
      `SERVER workers = 1\n` +
        `CREATE POOL webs\n  POOL webs ADD 127.0.0.1:${a.port}\n  POOL webs ADD 127.0.0.1:${b.port}\n` +
        `CREATE POOL slowpool\n  POOL slowpool ADD 127.0.0.1:${slow.port}\n` +
        `CREATE SERVICE web\n  SET listen = 127.0.0.1:${webPort}\n  SET role = reverse_proxy\n  SET pool = webs\n  SET balance_method = roundrobin\nENABLE web\n` +
        `CREATE SERVICE slowweb\n  SET listen = 127.0.0.1:${slowPort}\n  SET role = reverse_proxy\n  SET pool = slowpool\nENABLE slowweb\n`,
    );
    // --drain-timeout 1: the request held by `slow` gets its 504 at the stop instead of holding it for 30 s.
    child = spawn(process.execPath, [CLI_ENTRY, 'run', '-c', confPath, '--state-dir', stateDir, '--drain-timeout', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((r) => child!.on('exit', (code) => r(code)));
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const t0 = performance.now();
    while (!out.includes('running (')) {
      if (performance.now() - t0 > 10_000 || child.exitCode !== null) throw new Error(`tsbal run did not start:\n${out}`);
      await Bun.sleep(50);
    }

    for (let i = 0; i < 10; i++) expect(await get(webPort)).toContain('200 OK');
    const held = rawRequest(slowPort, 'GET /held HTTP/1.1\r\nHost: t\r\n\r\n').catch(() => null);
    const aKey = `127.0.0.1:${a.port}`;
    const bKey = `127.0.0.1:${b.port}`;
    const slowKey = `127.0.0.1:${slow.port}`;
    let s = await status(stateDir);
    for (let i = 0; i < 20 && s.services[1]!.backends[0]!.inFlight === 0; i++) s = await (Bun.sleep(50), status(stateDir));
    expect(s.ha).toBeNull();
    expect(s.services.map((svc) => [svc.name, svc.listen, svc.listening, svc.pool, svc.balance])).toEqual([
      ['web', `127.0.0.1:${webPort}`, 'listening', 'webs', 'roundrobin'],
      ['slowweb', `127.0.0.1:${slowPort}`, 'listening', 'slowpool', 'random'],
    ]);
    expect(s.services[0]!.backends.map((x) => [x.address, x.health, x.admin, x.requests, x.errors])).toEqual([
      [aKey, 'up', 'ready', 5, 0],
      [bKey, 'up', 'ready', 5, 0],
    ]);
    expect(s.services[1]!.backends[0]).toMatchObject({ address: slowKey, health: 'up', inFlight: 1, requests: 0 });
    expect(s.transitions).toEqual([]);

    // b goes away: the requests still succeed (retried on a), b is down with its cause, and the transition is kept.
    const bPort = b.port;
    await b.close();
    await requestUntil(webPort, async () => (await status(stateDir)).services[0]!.backends[1]!.health === 'down', `${bKey} down`);
    s = await status(stateDir);
    expect(s.services[0]!.backends[1]).toMatchObject({ address: bKey, health: 'down', lastFailure: expect.stringContaining('ECONNREFUSED') });
    expect(s.services[0]!.backends[1]!.errors).toBeGreaterThanOrEqual(1);
    expect(s.transitions.map((t) => [t.source, t.text])).toEqual([['backend', expect.stringMatching(new RegExp(`^backend ${bKey} down \\(connect ECONNREFUSED, 1 in a row; retry in [0-9.]+ s\\)$`))]]);

    // Off a terminal (a pipe here): plain lines, no escape codes.
    const plain = await runTsbal(['status', '--state-dir', stateDir]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('\x1b[');
    expect(plain.stdout).toContain('ha: not configured (no ha.cf): proxy only');
    expect(plain.stdout).toMatch(new RegExp(`  backend ${bKey}: down, ready, 0 in flight, 5 requests, \\d+ errors \\(connect ECONNREFUSED`));
    expect(plain.stdout).toContain(`  backend ${slowKey}: up, ready, 1 in flight, 0 requests, 0 errors`);
    expect(plain.stdout).toMatch(new RegExp(`transition \\d\\d:\\d\\d:\\d\\d backend: backend ${bKey} down`));

    // On a terminal (a pty from script(1)): the table, in colour; NO_COLOR keeps the table without colour.
    const cmd = `${process.execPath} ${CLI_ENTRY} status --state-dir ${stateDir}`;
    const tty = await runCommand('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, NO_COLOR: '', TERM: 'xterm' } });
    expect(tty.stdout).toContain('\x1b[1;31mdown');
    expect(tty.stdout.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/SERVICE +LISTEN +STATE +POOL +BACKEND +HEALTH +ADMIN +IN FLIGHT +REQUESTS +ERRORS +NOTE/);
    const noColour = await runCommand('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, NO_COLOR: '1', TERM: 'xterm' } });
    expect(noColour.stdout).not.toContain('\x1b[');
    expect(noColour.stdout).toMatch(/SERVICE +LISTEN +STATE/);

    // b back on its port: a request tries it once its backoff is over, and it is up again.
    b = await rawBackend('b', undefined, bPort);
    await requestUntil(webPort, async () => (await status(stateDir)).services[0]!.backends[1]!.health === 'up', `${bKey} up again`);
    s = await status(stateDir);
    expect(s.transitions.map((t) => t.text)).toEqual([expect.stringContaining(`backend ${bKey} down`), expect.stringMatching(new RegExp(`^backend ${bKey} up \\(answered 200 after \\d+ failures?\\)$`))]);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await held;
  }, 30_000);

  test('an actively checked pool: the last check of each backend, a dead one down until its checks pass', async () => {
    const [webPort, deadPort] = [await closedPort(), await closedPort()];
    const stateDir = join(dir, 'state-checks');
    const confPath = join(dir, 'checks.conf');
    writeFileSync(
      confPath,
      `CREATE POOL webs\n  SET health_check = tcp\n  SET health_check_interval = 200ms\n  SET health_check_fall = 1\n` +
        `  POOL webs ADD 127.0.0.1:${a.port}\n  POOL webs ADD 127.0.0.1:${deadPort}\n` +
        `CREATE SERVICE web\n  SET listen = 127.0.0.1:${webPort}\n  SET role = reverse_proxy\n  SET pool = webs\nENABLE web\n`,
    );
    const run = spawn(process.execPath, [CLI_ENTRY, 'run', '-c', confPath, '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    run.stdout!.on('data', (d) => (log += d));
    run.stderr!.on('data', (d) => (log += d));
    const exited = new Promise((r) => run.on('exit', (code) => r(code)));
    try {
      const t0 = performance.now();
      let s: StatusSnapshot | null = null;
      // Worker processes start before tsbal run serves its status socket: a loaded machine takes seconds for that.
      while (performance.now() - t0 < 15_000) {
        const r = await runTsbal(['status', '--json', '--state-dir', stateDir]);
        if (r.code === 0) {
          s = JSON.parse(r.stdout) as StatusSnapshot;
          if (s.services[0]!.backends[1]!.health === 'down') break;
        }
        await Bun.sleep(100);
      }
      if (s === null) throw new Error(`tsbal status never answered:\n${log}`);
      expect(s.services[0]!.backends.map((x) => [x.health, x.lastCheck, x.retryInMs])).toEqual([
        ['up', expect.any(String), null],
        ['down', expect.stringContaining('ECONNREFUSED'), null],
      ]);
      const plain = await runTsbal(['status', '--state-dir', stateDir]);
      expect(plain.stdout).toMatch(new RegExp(`backend 127\\.0\\.0\\.1:${deadPort}: down, ready, .*\\(.*ECONNREFUSED.*, back after its checks pass\\)`));
      expect(plain.stdout).toContain(`transition `);
      run.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      run.kill('SIGKILL');
    }
  }, 20_000);

  test('with nothing running on the state dir: exit 3 and where it looked', async () => {
    const empty = join(dir, 'nothing-here');
    const r = await runTsbal(['status', '--state-dir', empty]);
    expect([r.code, r.stderr]).toEqual([3, expect.stringContaining(`cannot reach tsbal run at ${empty}/status.sock: is tsbal running with this --state-dir?`)]);
  });
});
