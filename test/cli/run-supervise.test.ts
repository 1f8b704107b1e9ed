// `tsbal run --supervise` (and --daemon, which supervises by default) as real processes: kill -9 of the engine is
// followed by a new engine serving within about a second; SIGTERM to the supervisor stops both and removes the pidfile;
// SIGHUP reaches the engine through it (tsbal reload waits for and reports the outcome); a crash loop gives up;
// a second copy says `tsbal is already running (pid N)`.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideRestart, engineArgs, RESTART_POLICY } from '../../src/cli/supervise.ts';
import { daemonChildArgs } from '../../src/cli/run.ts';
import { procNetAddress } from '../../src/cli/pidfile.ts';
import { outcomeAfter } from '../../src/cli/reload-status.ts';
import { CLI_ENTRY, runTsbal } from '../harness/cli.ts';
import { closedPort, rawRequest } from '../proxy/helpers.ts';

let dir: string;

// One process (TSBAL_WORKERS, inherited by every tsbal started here): these cases time the supervisor's restarts of
// its engine (served again within 2.5 s, five restarts in a row within 5 s each); from source under Bun on a loaded
// machine each restart would also load two worker runtimes. test/proxy/workers/ covers an owner killed with its
// workers.
const workersBefore = process.env.TSBAL_WORKERS;
beforeAll(() => {
  process.env.TSBAL_WORKERS = '1';
  dir = mkdtempSync(join(tmpdir(), 'tsbal-supervise-'));
  writeFileSync(join(dir, 'index.html'), 'hello\n');
});
afterAll(() => {
  if (workersBefore === undefined) delete process.env.TSBAL_WORKERS;
  else process.env.TSBAL_WORKERS = workersBefore;
  rmSync(dir, { recursive: true, force: true });
});

function webConf(name: string, port: number): string {
  const path = join(dir, `${name}.conf`);
  writeFileSync(path, `CREATE SERVICE web\n  SET listen = 127.0.0.1:${port}\n  SET role = web_server\n  SET docroot = ${dir}\nENABLE web\n`);
  return path;
}

/** Kills a supervisor and its engine (a test that failed half-way must not leave an engine behind). */
function killTree(pid: number | undefined): void {
  if (pid === undefined) return;
  for (const child of childrenOf(pid)) {
    try {
      process.kill(child, 'SIGKILL');
    } catch {
      // Gone.
    }
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone.
  }
}

function start(args: string[], cwd?: string): { child: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: string | null }> } {
  // Its own process group, as a shell gives a foreground job (the Ctrl-C test signals the whole group).
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, output: () => out, exited };
}

async function serves(port: number): Promise<boolean> {
  const r = await rawRequest(port, 'GET /index.html HTTP/1.0\r\n\r\n', { until: (d) => d.includes('hello'), timeoutMs: 300 });
  return r.data.includes('hello');
}

/** Polls every 20 ms until the port serves; returns the ms it took. */
async function waitServing(port: number, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await serves(port)) return performance.now() - t0;
    await Bun.sleep(20);
  }
  throw new Error(`nothing served on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

/** The children of a process (from /proc/PID/task/PID/children). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function engineOf(supervisor: number, other: number | null = null): Promise<number> {
  for (let i = 0; i < 250; i++) {
    const kids = childrenOf(supervisor).filter((p) => p !== other);
    if (kids.length === 1) return kids[0]!;
    await Bun.sleep(20);
  }
  throw new Error(`no engine under supervisor ${supervisor}: children ${childrenOf(supervisor).join(' ')}`);
}

const processArgvOf = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('restart policy (pure)', () => {
  test('restarts after the delay up to the burst within the window, then gives up; old restarts age out', () => {
    const { delayMs, windowMs, burst } = RESTART_POLICY;
    expect(decideRestart([], 1_000_000)).toEqual({ kind: 'restart', delayMs, recent: 1 });
    const recent = Array.from({ length: burst }, (_, i) => 1_000_000 - i * 1000);
    expect(decideRestart(recent.slice(1), 1_000_000)).toEqual({ kind: 'restart', delayMs, recent: burst });
    expect(decideRestart(recent, 1_000_000)).toEqual({ kind: 'give-up', recent: burst });
    expect(decideRestart(recent, 1_000_000 + windowMs + burst * 1000)).toEqual({ kind: 'restart', delayMs, recent: 1 });
  });

  test("the engine gets the supervisor's arguments without --supervise, --daemon and the pidfile (the supervisor owns it)", () => {
    expect(engineArgs(['-c', 'p.conf', '--supervise', '--pidfile', '/run/tsbal.pid', '--log-file', 'l', '--pidfile=/x'])).toEqual(['-c', 'p.conf', '--log-file', 'l']);
    expect(daemonChildArgs(['run', '--daemon', '--pidfile', 'p'], '/var/log/tsbal.log')).toEqual(['run', '--pidfile', 'p', '--log-file', '/var/log/tsbal.log', '--supervise']);
    expect(daemonChildArgs(['run', '--daemon', '--no-supervise', '--log-file', 'l'], '/var/log/tsbal.log')).toEqual(['run', '--no-supervise', '--log-file', 'l']);
  });

  test('a reload outcome counts only for a round after the one seen before the signal', () => {
    const ok = { round: 3, state: 'ok' as const, at: 0, summary: 's' };
    expect(outcomeAfter(null, ok)).toEqual({ kind: 'ok', summary: 's' });
    expect(outcomeAfter(ok, ok)).toBeNull();
    expect(outcomeAfter({ round: 3, state: 'running', at: 0 }, ok)).toBeNull();
    expect(outcomeAfter(ok, { round: 4, state: 'running', at: 0 })).toBeNull();
    expect(outcomeAfter(ok, { round: 4, state: 'failed', at: 0, errors: ['e'] })).toEqual({ kind: 'failed', errors: ['e'] });
    // A supervised engine restarted meanwhile (its SIGHUP was not passed on while it started): it read the current file.
    expect(outcomeAfter({ ...ok, at: 100 }, { round: 0, state: 'started', at: 200 })).toMatchObject({ kind: 'ok' });
    expect(outcomeAfter({ round: 0, state: 'started', at: 200 }, { round: 0, state: 'started', at: 200 })).toBeNull();
    expect(procNetAddress('127.0.0.1', 8080)).toBe('0100007F:1F90');
    expect(procNetAddress('198.18.0.99', 80)).toBe('630012C6:0050');
  });
});

describe('tsbal run --supervise', () => {
  test('kill -9 of the engine: a new engine serves within about a second; SIGTERM to the supervisor stops both and removes the pidfile', async () => {
    const port = await closedPort();
    const pidfile = join(dir, 'sup.pid');
    const run = start(['run', '--supervise', '-c', webConf('sup', port), '--pidfile', pidfile, '--state-dir', join(dir, 'state-sup')]);
    try {
      await waitServing(port, 15_000);
      expect(Number(readFileSync(pidfile, 'utf8'))).toBe(run.child.pid!);
      const first = await engineOf(run.child.pid!);
      process.kill(first, 'SIGKILL');
      const backMs = await waitServing(port, 5_000);
      const second = await engineOf(run.child.pid!, first);
      if (process.env.TSBAL_TEST_LOG) console.log(`served again ${Math.round(backMs)} ms after kill -9 of the engine`);
      expect(second).not.toBe(first);
      // The restart delay (250 ms) plus an engine's startup; 2.5 s leaves room for a loaded machine.
      expect(backMs).toBeLessThan(2_500);
      expect(run.output()).toMatch(/engine \(pid \d+\) died \(killed by SIGKILL\) after [\d.]+ s: starting it again in 250 ms/);
      expect(Number(readFileSync(pidfile, 'utf8'))).toBe(run.child.pid!);

      run.child.kill('SIGTERM');
      expect(await run.exited).toEqual({ code: 0, signal: null });
      expect(alive(second)).toBe(false);
      expect(existsSync(pidfile)).toBe(false);
      expect(await serves(port)).toBe(false);
    } finally {
      killTree(run.child.pid);
    }
  }, 30_000);

  test('tsbal reload through the supervisor: exit 0 with the summary, exit 1 with file:line for a bad config (--no-check sends it anyway)', async () => {
    const port = await closedPort();
    const pidfile = join(dir, 'reload.pid');
    const conf = webConf('reload', port);
    const stateDir = join(dir, 'state-reload');
    const run = start(['run', '--supervise', '-c', conf, '--pidfile', pidfile, '--state-dir', stateDir]);
    try {
      await waitServing(port, 15_000);
      // The config and the state dir come from the running process's arguments.
      const ok = await runTsbal(['reload', '--pidfile', pidfile]);
      expect([ok.code, ok.stdout.trim()]).toEqual([0, `reload OK (tsbal run pid ${run.child.pid}): no changes`]);
      writeFileSync(conf, `${readFileSync(conf, 'utf8')}  SET persist_client = maybe\n`);
      const refused = await runTsbal(['reload', '--pidfile', pidfile]);
      expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining(`${conf}:6: `)]);
      expect(refused.stderr).toContain(`reload not sent: ${conf} has errors`);
      const sent = await runTsbal(['reload', '--pidfile', pidfile, '--no-check']);
      expect([sent.code, sent.stderr]).toEqual([1, expect.stringContaining(`reload FAILED (tsbal run pid ${run.child.pid} keeps its previous configuration, unchanged):\n  ${conf}:6: `)]);
      expect(await serves(port)).toBe(true);
      run.child.kill('SIGTERM');
      expect((await run.exited).code).toBe(0);
      expect(existsSync(join(stateDir, `reload-status.${run.child.pid}.json`))).toBe(false);
    } finally {
      killTree(run.child.pid);
    }
  }, 30_000);

  test('tsbal reload --pid finds the config and the state dir of a process started with relative paths in another directory', async () => {
    const port = await closedPort();
    webConf('relative', port);
    const run = start(['run', '-c', 'relative.conf', '--state-dir', 'state-relative'], dir);
    try {
      await waitServing(port, 15_000);
      const ok = await runTsbal(['reload', '--pid', String(run.child.pid)]);
      expect([ok.code, ok.stdout.trim(), ok.stderr]).toEqual([0, `reload OK (tsbal run pid ${run.child.pid}): no changes`, '']);
      run.child.kill('SIGTERM');
      expect((await run.exited).code).toBe(0);
    } finally {
      killTree(run.child.pid);
    }
  }, 30_000);

  test(`a crash loop: after ${RESTART_POLICY.burst} restarts within ${RESTART_POLICY.windowMs / 1000} s the supervisor gives up and exits 1`, async () => {
    const port = await closedPort();
    const run = start(['run', '--supervise', '-c', webConf('loop', port), '--state-dir', join(dir, 'state-loop')]);
    try {
      await waitServing(port, 15_000);
      let last: number | null = null;
      for (let i = 0; i <= RESTART_POLICY.burst; i++) {
        const engine = await engineOf(run.child.pid!, last);
        await waitServing(port, 5_000);
        process.kill(engine, 'SIGKILL');
        last = engine;
      }
      expect(await run.exited).toEqual({ code: 1, signal: null });
      expect(run.output()).toContain(`it was restarted ${RESTART_POLICY.burst} times in ${RESTART_POLICY.windowMs / 1000} s: giving up`);
    } finally {
      killTree(run.child.pid);
    }
  }, 60_000);

  test('a second copy started by hand says tsbal is already running, with the pid: from the pidfile, or from the port it holds', async () => {
    const port = await closedPort();
    const pidfile = join(dir, 'second.pid');
    const conf = webConf('second', port);
    const run = start(['run', '--supervise', '-c', conf, '--pidfile', pidfile, '--state-dir', join(dir, 'state-second')]);
    try {
      await waitServing(port, 15_000);
      const engine = await engineOf(run.child.pid!);
      const samePidfile = await runTsbal(['run', '-c', conf, '--pidfile', pidfile]);
      expect([samePidfile.code, samePidfile.stderr.trim()]).toEqual([
        1,
        `tsbal: tsbal is already running (pid ${run.child.pid}, from ${pidfile}); stop it first, or use tsbal reload to apply a new config`,
      ]);
      const byPort = await runTsbal(['run', '-c', conf, '--state-dir', join(dir, 'state-second-b')]);
      expect([byPort.code, byPort.stderr]).toEqual([1, expect.stringContaining(`tsbal: tsbal is already running (pid ${run.child.pid}, engine pid ${engine}, listening on 127.0.0.1:${port})`)]);
      // A stale pidfile (its pid gone) fools nobody: the start goes ahead (and fails only on the taken port).
      writeFileSync(join(dir, 'stale.pid'), '999999999\n');
      const stale = await runTsbal(['run', '-c', conf, '--pidfile', join(dir, 'stale.pid'), '--state-dir', join(dir, 'state-second-c')]);
      expect(stale.stderr).not.toContain('from ' + join(dir, 'stale.pid'));
      expect(stale.stderr).toContain('tsbal is already running');
    } finally {
      run.child.kill('SIGTERM');
      await Promise.race([run.exited, Bun.sleep(10_000)]);
      killTree(run.child.pid);
    }
  }, 40_000);

  test('SIGTERM while the first engine is still starting stops both (no engine is left behind without its supervisor)', async () => {
    const port = await closedPort();
    const run = start(['run', '--supervise', '-c', webConf('early', port), '--state-dir', join(dir, 'state-early')]);
    try {
      const engine = await engineOf(run.child.pid!);
      run.child.kill('SIGTERM');
      expect(await run.exited).toEqual({ code: 0, signal: null });
      for (let i = 0; i < 100 && alive(engine); i++) await Bun.sleep(50);
      expect(alive(engine)).toBe(false);
      expect(await serves(port)).toBe(false);
    } finally {
      killTree(run.child.pid);
    }
  }, 30_000);

  test('Ctrl-C (SIGINT to the foreground process group) stops the engine gracefully once, through the supervisor', async () => {
    const port = await closedPort();
    const run = start(['run', '--supervise', '-c', webConf('ctrlc', port), '--state-dir', join(dir, 'state-ctrlc')]);
    try {
      await waitServing(port, 15_000);
      const engine = await engineOf(run.child.pid!);
      process.kill(-run.child.pid!, 'SIGINT');
      expect(await run.exited).toEqual({ code: 0, signal: null });
      expect(alive(engine)).toBe(false);
      expect(run.output()).toContain('SIGINT: stopping (finishing requests in flight)');
      expect(run.output()).not.toContain('SIGINT again');
    } finally {
      killTree(run.child.pid);
    }
  }, 30_000);

  test('the rc.local line (--daemon, supervised by default): the pidfile names the supervisor, kill -9 of the engine is repaired, SIGTERM stops both', async () => {
    const port = await closedPort();
    const pidfile = join(dir, 'daemon.pid');
    const logFile = join(dir, 'daemon.log');
    const started = await runTsbal(['run', '--daemon', '-c', webConf('daemon', port), '--pidfile', pidfile, '--log-file', logFile, '--state-dir', join(dir, 'state-daemon')]);
    expect([started.code, started.stderr]).toEqual([0, '']);
    const supervisor = Number(readFileSync(pidfile, 'utf8'));
    try {
      expect(processArgvOf(supervisor)).toContain('--supervise');
      const engine = await engineOf(supervisor);
      process.kill(engine, 'SIGKILL');
      await waitServing(port, 5_000);
      const again = await engineOf(supervisor, engine);
      expect(again).not.toBe(engine);
      process.kill(supervisor, 'SIGTERM');
      for (let i = 0; i < 200 && (alive(supervisor) || alive(again)); i++) await Bun.sleep(50);
      expect([alive(supervisor), alive(again), existsSync(pidfile)]).toEqual([false, false, false]);
      const log = readFileSync(logFile, 'utf8');
      expect(log).toMatch(/engine \(pid \d+\) died \(killed by SIGKILL\)/);
      expect(log).toContain('[supervisor] SIGTERM: stopping the engine');
    } finally {
      killTree(supervisor);
    }
  }, 30_000);
});
