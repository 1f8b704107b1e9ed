// `tsbal run --log-file`: a daemon's log lines (backend down, reload FAILED, stop) land in a file created 0640, one
// time-stamped line per entry (or JSON with --log-format json), and SIGHUP reopens it, so logrotate can rename it.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY, runTsbal } from '../harness/cli.ts';
import { daemonChildArgs } from '../../src/cli/run.ts';
import { closedPort, rawBackend, rawRequest, statusCodes, type RawBackend } from '../proxy/helpers.ts';

let dir: string;
let hung: RawBackend;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsbal-logfile-'));
  hung = await rawBackend('hung', () => {});
});
afterAll(async () => {
  await hung.close();
  rmSync(dir, { recursive: true, force: true });
});

function conf(name: string, listenPort: number): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    `CREATE POOL web\n  POOL web ADD 127.0.0.1:${hung.port}\n\nCREATE SERVICE balancer\n  SET listen = 127.0.0.1:${listenPort}\n` +
      '  SET role = reverse_proxy\n  SET pool = web\n  SET response_timeout = 1\nENABLE balancer\n',
  );
  return path;
}

async function waitFor(what: string, read: () => string, ms = 5000): Promise<string> {
  const t0 = performance.now();
  for (;;) {
    const text = read();
    if (text.includes(what)) return text;
    if (performance.now() - t0 > ms) throw new Error(`expected '${what}' within ${ms} ms, got:\n${text}`);
    await Bun.sleep(25);
  }
}

const readOr = (path: string) => (): string => (existsSync(path) ? readFileSync(path, 'utf8') : '');
const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(info|warn|error)\] /;

describe('tsbal run --log-file', () => {
  test('--daemon logs backend-down, reload FAILED and the stop to the file; SIGHUP after a rename writes a new 0640 file', async () => {
    const port = await closedPort();
    const config = conf('daemon.conf', port);
    const logPath = join(dir, 'tsbal.log');
    const pidfile = join(dir, 'tsbal.pid');
    const started = await runTsbal(['run', '-c', config, '--daemon', '--pidfile', pidfile, '--log-file', logPath]);
    expect({ code: started.code, stderr: started.stderr }).toEqual({ code: 0, stderr: '' });
    const pid = Number(readFileSync(pidfile, 'utf8'));
    try {
      expect(statSync(logPath).mode & 0o777).toBe(0o640);
      await waitFor('running (', readOr(logPath));
      const r = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { timeoutMs: 5000 });
      expect(statusCodes(r.data)).toEqual([504]);
      await waitFor(`backend 127.0.0.1:${hung.port} down`, readOr(logPath));

      // logrotate without copytruncate: rename, then SIGHUP (here with a broken config, so the reload fails).
      renameSync(logPath, `${logPath}.1`);
      writeFileSync(config, 'CREATE SERVICE broken\n  SET role = nonsense\n');
      process.kill(pid, 'SIGHUP');
      const fresh = await waitFor('reload FAILED', readOr(logPath));
      expect(statSync(logPath).mode & 0o777).toBe(0o640);
      expect(fresh).toContain('SIGHUP: reloading');
      expect(readFileSync(`${logPath}.1`, 'utf8')).not.toContain('SIGHUP');
      process.kill(pid, 'SIGTERM');
      const all = await waitFor('] stopped', readOr(logPath));
      for (const line of (readFileSync(`${logPath}.1`, 'utf8') + all).trimEnd().split('\n')) expect(line).toMatch(LINE);
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already stopped.
      }
    }
  }, 20_000);

  test('--log-format json --log-file writes one JSON object per line, and nothing to stderr', async () => {
    const port = await closedPort();
    const logPath = join(dir, 'json.log');
    const child = spawn(process.execPath, [CLI_ENTRY, 'run', '-c', conf('json.conf', port), '--log-format', 'json', '--log-file', logPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await waitFor('running (', readOr(logPath));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const records = readFileSync(logPath, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string });
      expect(records.map((r) => r.msg)).toContain('stopped');
      expect(records.every((r) => typeof r.level === 'string')).toBe(true);
      expect(stderr).toBe('');
    } finally {
      child.kill('SIGKILL');
    }
  }, 20_000);

  test('a --log-file that cannot be opened is refused on the terminal before detaching', async () => {
    const port = await closedPort();
    const r = await runTsbal(['run', '-c', conf('bad.conf', port), '--daemon', '--log-file', join(dir, 'no-such-dir', 'tsbal.log')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`tsbal: --log-file: cannot open ${join(dir, 'no-such-dir', 'tsbal.log')}: ENOENT`);
  });

  test('--daemon without --log-file gives the daemon /var/log/tsbal.log; with one, keeps it', () => {
    expect(daemonChildArgs(['run', '-c', 'p.conf', '--daemon'], '/var/log/tsbal.log')).toEqual(['run', '-c', 'p.conf', '--log-file', '/var/log/tsbal.log', '--supervise']);
    expect(daemonChildArgs(['run', '--daemon', '--log-file=/tmp/x.log'], '/tmp/x.log')).toEqual(['run', '--log-file=/tmp/x.log', '--supervise']);
  });
});
