// `tsbal run` as a real process: serves a perlbal.conf, writes and removes its pidfile, stops gracefully on
// SIGTERM (a request in flight still completes), and refuses bad configs with file:line.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY, runTsbal } from '../harness/cli.ts';
import { runCheck } from '../../src/cli/check.ts';
import { enforcedPlugins } from '../../src/proxy/roles.ts';
import { closedPort, rawBackend, rawRequest, statusCodes, type RawBackend } from '../proxy/helpers.ts';

let dir: string;
let slow: RawBackend;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsbal-run-'));
  // Answers after 300 ms, so a request can be in flight when SIGTERM arrives.
  slow = await rawBackend('slow', (socket, _i, received) => {
    if (received.endsWith('\r\n\r\n')) setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow'), 300);
  });
});
afterAll(async () => {
  await slow.close();
  rmSync(dir, { recursive: true, force: true });
});

function conf(listenPort: number, backendPort: number): string {
  const path = join(dir, `perlbal-${listenPort}.conf`);
  writeFileSync(
    path,
    `CREATE POOL web\n  POOL web ADD 127.0.0.1:${backendPort}\n\nCREATE SERVICE balancer\n  SET listen = 127.0.0.1:${listenPort}\n` +
      '  SET role = reverse_proxy\n  SET pool = web\n  SET persist_client = on\n  SET persist_backend = on\n  SET verify_backend = on\nENABLE balancer\n',
  );
  return path;
}

function start(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

async function waitListening(port: number, ms = 10_000): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    const r = await rawRequest(port, 'GET /ping HTTP/1.1\r\nHost: a\r\n\r\n', { until: (d) => d.endsWith('slow'), timeoutMs: 1000 });
    if (r.data.length > 0) return;
    await Bun.sleep(50);
  }
  throw new Error(`nothing listening on ${port} after ${ms} ms`);
}

describe('tsbal run', () => {
  test('serves the config, writes its pidfile, and on SIGTERM finishes the request in flight, removes the pidfile and exits 0', async () => {
    const port = await closedPort();
    const pidfile = join(dir, 'tsbal.pid');
    const run = start(['run', '-c', conf(port, slow.port), '--pidfile', pidfile]);
    try {
      await waitListening(port);
      expect(readFileSync(pidfile, 'utf8').trim()).toBe(String(run.child.pid));
      const inFlight = rawRequest(port, 'GET /late HTTP/1.1\r\nHost: a\r\n\r\n', { until: (d) => d.endsWith('slow'), timeoutMs: 3000 });
      await Bun.sleep(100);
      run.child.kill('SIGTERM');
      const r = await inFlight;
      expect(statusCodes(r.data)).toEqual([200]);
      expect(r.data).toContain('Connection: close');
      expect(await run.exited).toBe(0);
      expect(existsSync(pidfile)).toBe(false);
      // Nothing listens any more.
      const after = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { timeoutMs: 500 });
      expect(after.data).toBe('');
    } finally {
      run.child.kill('SIGKILL');
    }
  }, 20_000);

  test('a config error is reported as file:line and the exit code is 1', async () => {
    const path = join(dir, 'bad.conf');
    writeFileSync(path, 'CREATE SERVICE x\n  SET role = reverse_proxy\n  SET persist_client = maybe\n');
    const r = await runTsbal(['run', '-c', path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path}:3:`);
  });

  test('an error in the ha.cf dir stops tsbal run before any listener is bound or logged as listening', async () => {
    const haDir = mkdtempSync(join(dir, 'ha-'));
    writeFileSync(join(haDir, 'ha.cf'), 'logfacility local0\nkeepalive 2\ndeadtime 10\nbcast lo\nauto_failback on\nnode lb1\nnode lb2\n');
    writeFileSync(join(haDir, 'authkeys'), 'auth 1\n1 sha1 k\n', { mode: 0o600 });
    writeFileSync(join(haDir, 'haresources'), 'lb3 IPaddr::198.18.0.99/24/lo\n');
    const port = await closedPort();
    const r = await runTsbal(['run', '-c', conf(port, slow.port), '--ha-dir', haDir, '--node', 'lb1', '--state-dir', haDir]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: expect.stringContaining(`${join(haDir, 'haresources')}:1: Bad nodename`) });
    expect(r.stdout + r.stderr).not.toContain('listening');
  });

  test('a service whose role is not served yet is refused, naming the role', async () => {
    const path = join(dir, 'web.conf');
    writeFileSync(path, `CREATE SERVICE tracker\n  SET role = upload_tracker\n  SET listen = 127.0.0.1:${await closedPort()}\nENABLE tracker\n`);
    const r = await runTsbal(['run', '-c', path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path}:1: service tracker: role upload_tracker is not supported`);
  });

  test('a selector that would hand requests to a service tsbal does not serve is refused at that VHOST line', async () => {
    const path = join(dir, 'selector-web.conf');
    writeFileSync(
      path,
      `LOAD vhosts\nCREATE SERVICE files\n  SET role = upload_tracker\n` +
        `CREATE SERVICE sel\n  SET role = selector\n  SET listen = 127.0.0.1:${await closedPort()}\n  SET plugins = vhosts\n` +
        '  VHOST * = files\nENABLE sel\n',
    );
    const r = await runTsbal(['run', '-c', path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${path}:8: selector sel: VHOST * hands requests to files (role upload_tracker), which this version of tsbal run does not serve`,
    );
  });

  test('a plugin tsbal does not enforce on a served service is refused at its SET plugins line, and check says the same', async () => {
    const path = join(dir, 'palimg.conf');
    writeFileSync(
      path,
      `LOAD Palimg\nLOAD AccessControl\nCREATE POOL p\n  POOL p ADD 127.0.0.1:${slow.port}\nCREATE SERVICE web\n  SET role = reverse_proxy\n` +
        `  SET listen = 127.0.0.1:${await closedPort()}\n  SET pool = p\n  SET plugins = accesscontrol, palimg\nENABLE web\n`,
    );
    const message =
      `${path}:9: service web: plugin palimg is not enforced by this version of tsbal run on a reverse_proxy service ` +
      `(it enforces: ${enforcedPlugins('reverse_proxy').join(', ')}); remove it from SET plugins or run Perlbal`;
    const run = await runTsbal(['run', '-c', path]);
    expect([run.code, run.stderr]).toEqual([1, expect.stringContaining(message)]);
    const check = runCheck({ config: path, haDir: { path: dir, required: false }, cwd: dir });
    expect(check.ok).toBe(false);
    expect(check.stderr.filter((l) => !l.includes(': warning: '))).toEqual([message, `tsbal check: 1 error in ${path}`]);
  });

  test('--daemon returns once the services are up, and reports a startup failure on the terminal', async () => {
    const port = await closedPort();
    const pidfile = join(dir, 'daemon.pid');
    const ok = await runTsbal(['run', '-c', conf(port, slow.port), '--daemon', '--pidfile', pidfile]);
    expect(ok.code).toBe(0);
    const pid = Number(readFileSync(pidfile, 'utf8'));
    try {
      const r = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { until: (d) => d.endsWith('slow') });
      expect(statusCodes(r.data)).toEqual([200]);
      // The same port again: the second daemon cannot bind, and names the running copy (the supervisor in the pidfile).
      const clash = await runTsbal(['run', '-c', conf(port, slow.port), '--daemon']);
      expect(clash.code).toBe(1);
      expect(clash.stderr).toContain(`tsbal is already running (pid ${pid}, engine pid `);
    } finally {
      process.kill(pid, 'SIGTERM');
    }
  }, 20_000);
});
