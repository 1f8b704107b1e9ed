// `tsbal run` stopping on SIGTERM while requests wait on hung backends: a response_timeout that fires during the
// drain still answers 504, and --drain-timeout bounds the whole drain (requests still waiting then get a 504,
// responses under way are cut, one log line counts them) and the process exits 0.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY } from '../harness/cli.ts';
import { closedPort, rawBackend, rawRequest, statusCodes, type RawBackend } from '../proxy/helpers.ts';

let dir: string;
let hung: RawBackend;
let stalled: RawBackend;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsbal-drain-'));
  // Reads the request and never answers.
  hung = await rawBackend('hung', () => {});
  // Sends a head and part of the body, then nothing.
  stalled = await rawBackend('stalled', (socket, _i, received) => {
    if (received.endsWith('\r\n\r\n')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart');
  });
});
afterAll(async () => {
  await hung.close();
  await stalled.close();
  rmSync(dir, { recursive: true, force: true });
});

function conf(listenPort: number, backendPort: number, responseTimeoutS: number): string {
  const path = join(dir, `perlbal-${listenPort}.conf`);
  writeFileSync(
    path,
    `CREATE POOL web\n  POOL web ADD 127.0.0.1:${backendPort}\n\nCREATE SERVICE balancer\n  SET listen = 127.0.0.1:${listenPort}\n` +
      `  SET role = reverse_proxy\n  SET pool = web\n  SET persist_client = on\n  SET response_timeout = ${responseTimeoutS}\nENABLE balancer\n`,
  );
  return path;
}

async function runUntilSigterm(backendPort: number, responseTimeoutS: number, extra: string[]) {
  const port = await closedPort();
  const child = spawn(process.execPath, [CLI_ENTRY, 'run', '-c', conf(port, backendPort, responseTimeoutS), ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const t0 = performance.now();
    while (!out.includes('running (')) {
      if (performance.now() - t0 > 10_000) throw new Error(`tsbal run did not start:\n${out}`);
      await Bun.sleep(20);
    }
    const inFlight = rawRequest(port, 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\n', { timeoutMs: 8000 });
    await Bun.sleep(200);
    const signalled = performance.now();
    child.kill('SIGTERM');
    const response = await inFlight;
    const code = await exited;
    return { response, code, exitMs: performance.now() - signalled, log: () => out };
  } finally {
    child.kill('SIGKILL');
  }
}

describe('tsbal run: SIGTERM with requests waiting on a hung backend', () => {
  test('a response_timeout that fires during the drain answers 504, then the process exits 0', async () => {
    const r = await runUntilSigterm(hung.port, 1, ['--drain-timeout', '10']);
    expect({ statuses: statusCodes(r.response.data), code: r.code }).toEqual({ statuses: [504], code: 0 });
    expect(r.exitMs).toBeLessThan(5000);
    expect(r.log()).not.toContain('drain timeout');
  }, 20_000);

  test('--drain-timeout: a request still waiting at the deadline gets 504 (not a bare close), one line counts it, exit 0', async () => {
    const r = await runUntilSigterm(hung.port, 30, ['--drain-timeout', '1']);
    expect({ statuses: statusCodes(r.response.data), code: r.code }).toEqual({ statuses: [504], code: 0 });
    expect(r.exitMs).toBeGreaterThan(900);
    expect(r.exitMs).toBeLessThan(4000);
    expect(r.log()).toContain('drain timeout (1 s): closing 1 connection still in progress (1 waiting for a backend answered 504)');
  }, 20_000);

  test('--drain-timeout: a response under way at the deadline is cut and counted, exit 0', async () => {
    const r = await runUntilSigterm(stalled.port, 30, ['--drain-timeout', '1']);
    expect({ statuses: statusCodes(r.response.data), closed: r.response.closed, code: r.code }).toEqual({ statuses: [200], closed: true, code: 0 });
    expect(r.response.data.endsWith('part')).toBe(true);
    expect(r.exitMs).toBeLessThan(4000);
    expect(r.log()).toContain('drain timeout (1 s): closing 1 connection still in progress\n');
  }, 20_000);

  test('a bad --drain-timeout is a usage error (exit 2)', async () => {
    const r = Bun.spawnSync([process.execPath, CLI_ENTRY, 'run', '-c', join(dir, 'none.conf'), '--drain-timeout', 'soon']);
    expect({ code: r.exitCode, stderr: r.stderr.toString().trim() }).toEqual({
      code: 2,
      stderr: "tsbal: --drain-timeout: expected a number of seconds (0 or more), got 'soon'",
    });
  });
});
