// `tsbal status` and /metrics with SERVER workers = 2, against a real `tsbal run` (the source under Bun): the two
// worker pids are real processes listening on the port; a kill -9 of one shows as a restart (counter 1, a `worker`
// transition naming the signal, a new pid); one process says `workers: 1 (this process)`.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StatusSnapshot } from '../../src/status/snapshot.ts';
import { CLI_ENTRY, runTsbal } from '../harness/cli.ts';
import { closedPort, rawBackend, type RawBackend } from '../proxy/helpers.ts';

let dir: string;
let backend: RawBackend;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsbal-wstatus-'));
  backend = await rawBackend('a');
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  port: number;
  mgmt: number;
  stateDir: string;
  log(): string;
  exited: Promise<number | null>;
}

async function startRun(name: string, workers: number | null): Promise<Run> {
  const [port, mgmt] = [await closedPort(), await closedPort()];
  const conf = join(dir, `${name}.conf`);
  writeFileSync(
    conf,
    `${workers === null ? '' : `SERVER workers = ${workers}\n`}CREATE POOL web\n  POOL web ADD 127.0.0.1:${backend.port}\n` +
      `CREATE SERVICE proxy\n  SET listen = 127.0.0.1:${port}\n  SET role = reverse_proxy\n  SET pool = web\nENABLE proxy\n` +
      `CREATE SERVICE mgmt\n  SET role = management\n  SET listen = 127.0.0.1:${mgmt}\nENABLE mgmt\n`,
  );
  const stateDir = join(dir, `state-${name}`);
  const child = spawn(process.execPath, [CLI_ENTRY, 'run', '-c', conf, '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, port, mgmt, stateDir, log: () => out, exited };
}

async function status(run: Run): Promise<StatusSnapshot> {
  const r = await runTsbal(['status', '--json', '--state-dir', run.stateDir]);
  if (r.code !== 0) throw new Error(`tsbal status exited ${r.code}: ${r.stderr}\nrun's output:\n${run.log()}`);
  return JSON.parse(r.stdout) as StatusSnapshot;
}

/** Polls `tsbal status --json` (at most 20 s: a loaded machine takes seconds to start workers) until `ok` holds. */
async function statusUntil(run: Run, ok: (s: StatusSnapshot) => boolean, what: string): Promise<StatusSnapshot> {
  const t0 = performance.now();
  let last: StatusSnapshot | null = null;
  while (performance.now() - t0 < 20_000) {
    const r = await runTsbal(['status', '--json', '--state-dir', run.stateDir]);
    if (r.code === 0) {
      last = JSON.parse(r.stdout) as StatusSnapshot;
      if (ok(last)) return last;
    }
    if (run.child.exitCode !== null) break;
    await Bun.sleep(200);
  }
  throw new Error(`${what} not seen; last status: ${JSON.stringify(last?.workers)}\nrun's output:\n${run.log()}`);
}

function metrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('/metrics: no answer in 5 s')));
  });
}

/** Pids of the processes listening on 127.0.0.1:port (ss). */
/** The processes listening on the port, each once (a worker listens on several SO_REUSEPORT sockets). */
function listeningPids(port: number): number[] {
  const out = spawnSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' }).stdout;
  return [...new Set([...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))].sort((a, b) => a - b);
}

async function stop(run: Run): Promise<number | null> {
  run.child.kill('SIGTERM');
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 10_000);
  const code = await run.exited;
  clearTimeout(timer);
  return code;
}

describe('tsbal status with SERVER workers = 2', () => {
  let run: Run;
  beforeAll(async () => {
    run = await startRun('two', 2);
  });
  afterAll(async () => {
    if (run !== undefined) expect(await stop(run)).toBe(0);
  }, 20_000);

  test('shows 2 workers whose pids are the real processes listening on the port, each ready; /metrics says 2 configured, 2 running', async () => {
    const s = await statusUntil(run, (x) => x.workers?.list.every((w) => w.state === 'ready') === true, 'both workers ready');
    expect(s.workers!.count).toBe(2);
    expect(s.workers!.thisProcess).toBe(false);
    expect(s.workers!.restarts).toBe(0);
    const pids = s.workers!.list.map((w) => w.pid!).sort((a, b) => a - b);
    expect(pids.length).toBe(2);
    expect(pids).not.toContain(run.child.pid);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(true);
    expect(listeningPids(run.port)).toEqual(pids);
    const plain = await runTsbal(['status', '--state-dir', run.stateDir]);
    expect(plain.stdout).toContain('workers: 2\n');
    for (const pid of pids) expect(plain.stdout).toMatch(new RegExp(`  worker [12]: pid ${pid}, ready, up \\d+s, 0 restarts`));
    const m = await metrics(run.mgmt);
    expect(m).toContain('# TYPE tsbal_workers gauge');
    expect(m).toContain('tsbal_workers{state="configured"} 2');
    expect(m).toContain('tsbal_workers{state="running"} 2');
    expect(m).toContain('# TYPE tsbal_worker_restarts_total counter');
    expect(m).toContain('tsbal_worker_restarts_total 0');
  }, 30_000);

  test('kill -9 of one worker: restart counter 1, a worker transition naming SIGKILL, and a new pid in its place', async () => {
    const before = await statusUntil(run, (x) => x.workers?.list.every((w) => w.state === 'ready') === true, 'both workers ready');
    const victim = before.workers!.list[0]!;
    const other = before.workers!.list[1]!;
    process.kill(victim.pid!, 'SIGKILL');
    const after = await statusUntil(
      run,
      (x) => x.workers!.list[0]!.state === 'ready' && x.workers!.list[0]!.pid !== victim.pid && x.transitions.some((t) => /started again/.test(t.text)),
      `worker ${victim.index} started again`,
    );
    expect(after.workers!.restarts).toBe(1);
    expect(after.workers!.list.map((w) => w.restarts)).toEqual([1, 0]);
    const fresh = after.workers!.list[0]!.pid!;
    expect(existsSync(`/proc/${fresh}`)).toBe(true);
    expect(after.workers!.list[1]!.pid).toBe(other.pid);
    expect(listeningPids(run.port)).toEqual([fresh, other.pid!].sort((a, b) => a - b));
    const worker = after.transitions.filter((t) => t.source === 'worker').map((t) => t.text);
    expect(worker).toEqual([`worker ${victim.index} (pid ${victim.pid}) exited (SIGKILL); starting it again`, `worker ${victim.index} started again (pid ${fresh})`]);
    const plain = await runTsbal(['status', '--state-dir', run.stateDir]);
    expect(plain.stdout).toContain('workers: 2 (1 restart)\n');
    expect(plain.stdout).toContain(`  worker ${victim.index}: pid ${fresh}, ready, `);
    expect(plain.stdout).toMatch(new RegExp(`transition \\S+ worker: worker ${victim.index} \\(pid ${victim.pid}\\) exited \\(SIGKILL\\)`));
    const m = await metrics(run.mgmt);
    expect(m).toContain('tsbal_worker_restarts_total 1');
    expect(m).toContain('tsbal_workers{state="running"} 2');
  }, 40_000);
});

describe('tsbal status with SERVER workers = 1', () => {
  test('one process says `workers: 1 (this process)` and lists no worker; /metrics says 1 configured, 1 running, 0 restarts', async () => {
    const run = await startRun('one', 1);
    try {
      const s = await statusUntil(run, () => true, 'status');
      expect(s.workers).toEqual({ count: 1, thisProcess: true, restarts: 0, list: [] });
      const plain = await runTsbal(['status', '--state-dir', run.stateDir]);
      expect(plain.stdout).toContain('workers: 1 (this process)\n');
      expect(plain.stdout).not.toContain('  worker ');
      const m = await metrics(run.mgmt);
      expect(m).toContain('tsbal_workers{state="configured"} 1');
      expect(m).toContain('tsbal_workers{state="running"} 1');
      expect(m).toContain('tsbal_worker_restarts_total 0');
      expect(await stop(run)).toBe(0);
    } finally {
      run.child.kill('SIGKILL');
    }
  }, 30_000);
});
