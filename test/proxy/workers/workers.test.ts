// SERVER workers for real: `tsbal run` with workers = 2 (the source under Bun, which has SO_REUSEPORT), two
// backends, bounded keep-alive load. Each worker listens on its own socket; the console sums the workers; a second
// tsbal on the same port is refused; 20 reloads under load fail no request; a SIGKILLed worker fails only the
// requests it carried, is started again, and the other worker serves meanwhile.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { makePki, type TestPki } from '../../harness/certs.ts';
import { NODE22 } from '../../harness/dist.ts';
import { DIST_BUNDLE } from '../../harness/tsbal.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY } from '../../harness/cli.ts';
import { closedPort, rawBackend, type RawBackend } from '../helpers.ts';
import { ACCEPT_SOCKETS } from '../../../src/proxy/listener.ts';

let dir: string;
let backends: RawBackend[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsbal-workers-'));
  backends = [await rawBackend('a'), await rawBackend('b')];
});
afterAll(async () => {
  for (const b of backends) await b.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess;
  port: number;
  mgmt: number;
  conf: string;
  log(): string;
  /** Waits until the log holds `text` `count` times. */
  waitFor(text: string, count?: number, ms?: number): Promise<void>;
  stop(): Promise<number | null>;
}

function writeConf(path: string, port: number, mgmt: number, idleTimeout = 30, workers = 2): void {
  writeFileSync(
    path,
    `SERVER workers = ${workers}\nCREATE POOL web\n${backends.map((b) => `  POOL web ADD 127.0.0.1:${b.port}\n`).join('')}` +
      `CREATE SERVICE proxy\n  SET listen = 127.0.0.1:${port}\n  SET role = reverse_proxy\n  SET pool = web\n  SET persist_client = on\n` +
      `  SET idle_timeout = ${idleTimeout}\nENABLE proxy\nCREATE SERVICE mgmt\n  SET role = management\n  SET listen = 127.0.0.1:${mgmt}\nENABLE mgmt\n`,
  );
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

/** tsbal from source under this Bun, or as `command` (e.g. the bundle under Node 22). */
async function startRun(conf: string, port: number, mgmt: number, command: string[] = [process.execPath, CLI_ENTRY]): Promise<Running> {
  const child = spawn(command[0]!, [...command.slice(1), 'run', '-c', conf, '--state-dir', join(dir, `state-${port}`)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const waitFor = async (text: string, n = 1, ms = 15_000): Promise<void> => {
    const t0 = performance.now();
    while (count(out, text) < n) {
      if (performance.now() - t0 > ms) throw new Error(`no ${n}× '${text}' within ${ms} ms; log:\n${out}`);
      if (child.exitCode !== null) throw new Error(`tsbal run exited ${child.exitCode}; log:\n${out}`);
      await Bun.sleep(20);
    }
  };
  const r: Running = {
    child,
    port,
    mgmt,
    conf,
    log: () => out,
    waitFor,
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  await waitFor('running (');
  return r;
}

/** Pid of each socket listening on 127.0.0.1:port (ss), one entry per socket. */
function listeningSocketPids(port: number): number[] {
  const out = spawnSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' }).stdout;
  return [...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
}

/** Pids of the processes listening on 127.0.0.1:port. */
function listeningPids(port: number): number[] {
  return [...new Set(listeningSocketPids(port))];
}

function consoleCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(`${command}\r\nquit\r\n`));
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (buf += d));
    s.on('end', () => resolve(buf));
    s.on('error', reject);
    setTimeout(() => reject(new Error(`console: no answer to ${command}`)), 5000).unref();
  });
}

/** Bounded keep-alive load: `conns` clients send GETs one after another until stopped (or `maxMs`). */
function load(port: number, conns: number, maxMs: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: conns });
  const result = { ok: 0, failed: 0, errors: new Map<string, number>() };
  let running = true;
  const t0 = performance.now();
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) result.ok++;
          else {
            result.failed++;
            result.errors.set(String(res.statusCode), (result.errors.get(String(res.statusCode)) ?? 0) + 1);
          }
          resolve();
        });
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        result.failed++;
        result.errors.set(e.code ?? e.message, (result.errors.get(e.code ?? e.message) ?? 0) + 1);
        resolve();
      });
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.end();
    });
  const loops = Array.from({ length: conns }, async () => {
    while (running && performance.now() - t0 < maxMs) await one();
  });
  return {
    result,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
  };
}

describe('SERVER workers = 2', () => {
  let run: Running;
  let conf: string;
  beforeAll(async () => {
    const port = await closedPort();
    const mgmt = await closedPort();
    conf = join(dir, 'workers.conf');
    writeConf(conf, port, mgmt);
    run = await startRun(conf, port, mgmt);
  }, 30_000);
  afterAll(async () => {
    if (run !== undefined) expect(await run.stop()).toBe(0);
  }, 20_000);

  test('two worker processes each listen on the port with ACCEPT_SOCKETS sockets (SO_REUSEPORT); the owner listens only on the management port', () => {
    const pids = listeningPids(run.port);
    expect(pids.length).toBe(2);
    // Each worker accepts on several sockets, so that a burst of connects is not accepted one per event-loop turn.
    const sockets = listeningSocketPids(run.port);
    expect(pids.map((pid) => sockets.filter((p) => p === pid).length)).toEqual([ACCEPT_SOCKETS, ACCEPT_SOCKETS]);
    expect(pids).not.toContain(run.child.pid);
    expect(listeningPids(run.mgmt)).toEqual([run.child.pid!]);
    expect(run.log()).toContain('2 workers serving');
  });

  test('the console and /metrics sum the requests every worker served', async () => {
    const before = await consoleCommand(run.mgmt, 'show pool web');
    const used = (text: string): number => [...text.matchAll(/127\.0\.0\.1:\d+ (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
    const l = load(run.port, 8, 10_000);
    await Bun.sleep(1500);
    const r = await l.stop();
    expect(r.failed).toBe(0);
    const after = await consoleCommand(run.mgmt, 'show pool web');
    expect(used(after) - used(before)).toBe(r.ok);
    const metrics = await new Promise<string>((resolve) => {
      request({ host: '127.0.0.1', port: run.mgmt, path: '/metrics' }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
      }).end();
    });
    const ok2xx = Number(/tsbal_requests_total\{service="proxy",code="2xx"\} (\d+)/.exec(metrics)?.[1]);
    expect(ok2xx).toBeGreaterThanOrEqual(r.ok);
  }, 20_000);

  test('a second tsbal run on the same port is refused: it says another tsbal listens there, and exits non-zero', async () => {
    const other = spawnSync(process.execPath, [CLI_ENTRY, 'run', '-c', conf, '--state-dir', join(dir, 'state-other')], { encoding: 'utf8', timeout: 20_000 });
    expect(other.status).not.toBe(0);
    expect(`${other.stderr}${other.stdout}`).toMatch(/tsbal is already running|EADDRINUSE/);
    expect(listeningPids(run.port).length).toBe(2);
  }, 30_000);

  test('20 reloads (SIGHUP, each changing the config) under keep-alive load: no request fails', async () => {
    const l = load(run.port, 8, 60_000);
    const okBefore = count(run.log(), 'reload OK');
    for (let i = 1; i <= 20; i++) {
      writeConf(run.conf, run.port, run.mgmt, 30 + i);
      run.child.kill('SIGHUP');
      await run.waitFor('reload OK', okBefore + i, 15_000);
      await Bun.sleep(50);
    }
    const r = await l.stop();
    console.log(`20 reloads under load: ${r.ok} requests ok, ${r.failed} failed`);
    expect({ failed: r.failed, errors: [...r.errors] }).toEqual({ failed: 0, errors: [] });
    expect(r.ok).toBeGreaterThan(100);
    expect(count(run.log(), 'reload FAILED')).toBe(0);
  }, 120_000);

  test("a backend that dies, seen by every worker's traffic: one down line from the owner, /metrics shows it down; back: one up line", async () => {
    const b = backends[1]!;
    const bKey = `127.0.0.1:${b.port}`;
    const metricUp = async (): Promise<string | undefined> => {
      const text = await new Promise<string>((resolve) => {
        request({ host: '127.0.0.1', port: run.mgmt, path: '/metrics' }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve(body));
        }).end();
      });
      return new RegExp(`tsbal_backend_up\\{service="proxy",backend="${bKey.replace(/\./g, '\\.')}"\\} (\\d)`).exec(text)?.[1];
    };
    await b.close();
    const l = load(run.port, 8, 30_000);
    await run.waitFor(`backend ${bKey} down`, 1, 10_000);
    await Bun.sleep(1000);
    expect(await metricUp()).toBe('0');
    backends[1] = await rawBackend('b', undefined, b.port);
    await run.waitFor(`backend ${bKey} up`, 1, 20_000);
    await Bun.sleep(1000);
    const r = await l.stop();
    // GETs that found it dead were retried on the other backend: no client saw a failure.
    expect(r.failed).toBe(0);
    expect(await metricUp()).toBe('1');
    expect([count(run.log(), `backend ${bKey} down`), count(run.log(), `backend ${bKey} up`)]).toEqual([1, 1]);
  }, 60_000);

  test('SIGKILL of one worker: only its requests in flight fail; it is started again; the other kept serving', async () => {
    const [victim] = listeningPids(run.port);
    const l = load(run.port, 8, 30_000);
    await Bun.sleep(500);
    process.kill(victim!, 'SIGKILL');
    await run.waitFor('exited (SIGKILL); starting it again', 1, 10_000);
    await run.waitFor('started again', 1, 15_000);
    await Bun.sleep(500);
    const r = await l.stop();
    console.log(`worker SIGKILL under load (8 keep-alive clients): ${r.ok} ok, ${r.failed} failed (${[...r.errors].map(([k, v]) => `${k} ${v}`).join(', ')})`);
    // At most one request per client connection of the killed worker: the one it carried (8 clients in all).
    expect(r.failed).toBeLessThanOrEqual(8);
    expect(r.ok).toBeGreaterThan(100);
    const pids = listeningPids(run.port);
    expect(pids.length).toBe(2);
    expect(pids).not.toContain(victim);
    // And afterwards nothing fails.
    const after = load(run.port, 8, 10_000);
    await Bun.sleep(1000);
    const r2 = await after.stop();
    expect(r2.failed).toBe(0);
  }, 60_000);
});

describe('SERVER workers = 1 on a runtime with SO_REUSEPORT', () => {
  test('the one process accepts on ACCEPT_SOCKETS sockets, serves, and a second tsbal or a plain listener keeps it off the port', async () => {
    const port = await closedPort();
    const mgmt = await closedPort();
    const conf = join(dir, 'one.conf');
    writeConf(conf, port, mgmt, 30, 1);
    const r = await startRun(conf, port, mgmt);
    try {
      // A burst of connects is accepted up to ACCEPT_SOCKETS per event-loop turn, as in a worker.
      expect(listeningSocketPids(port)).toEqual(Array(ACCEPT_SOCKETS).fill(r.child.pid));
      const l = load(port, 4, 5_000);
      await Bun.sleep(300);
      const got = await l.stop();
      expect(got.ok).toBeGreaterThan(0);
      expect(got.failed).toBe(0);
      // SO_REUSEPORT would let a second tsbal bind beside it: the process looked first, so it is refused.
      const other = spawnSync(process.execPath, [CLI_ENTRY, 'run', '-c', conf, '--state-dir', join(dir, 'state-one-other')], { encoding: 'utf8', timeout: 20_000 });
      expect(other.status).not.toBe(0);
      expect(`${other.stderr}${other.stdout}`).toMatch(/tsbal is already running|cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
      expect(listeningPids(port)).toEqual([r.child.pid!]);
    } finally {
      expect(await r.stop()).toBe(0);
    }
    // A program that listens there without SO_REUSEPORT (here a plain server of this test) keeps it off too.
    const held = createServer();
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port2 = (held.address() as AddressInfo).port;
      const conf2 = join(dir, 'one-held.conf');
      writeConf(conf2, port2, await closedPort(), 30, 1);
      const refused = spawnSync(process.execPath, [CLI_ENTRY, 'run', '-c', conf2, '--state-dir', join(dir, 'state-one-held')], { encoding: 'utf8', timeout: 20_000 });
      expect(refused.status).not.toBe(0);
      expect(`${refused.stderr}${refused.stdout}`).toMatch(/cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
    } finally {
      held.close();
    }
  }, 60_000);
});

describe('SERVER workers = 2: the owner killed', () => {
  test('kill -9 of the owner: its workers stop listening at once and exit (no orphan keeps the port)', async () => {
    const port = await closedPort();
    const mgmt = await closedPort();
    const conf = join(dir, 'orphans.conf');
    writeConf(conf, port, mgmt);
    const r = await startRun(conf, port, mgmt);
    const workers = listeningPids(port);
    expect(workers.length).toBe(2);
    r.child.kill('SIGKILL');
    const t0 = performance.now();
    while (listeningPids(port).length > 0 && performance.now() - t0 < 3000) await Bun.sleep(20);
    expect(listeningPids(port)).toEqual([]);
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    while (workers.some(alive) && performance.now() - t0 < 5000) await Bun.sleep(50);
    expect(workers.filter(alive)).toEqual([]);
  }, 30_000);
});

describe('SERVER workers = 2 with TLS', () => {
  let pki: TestPki;
  let run: Running | undefined;
  afterAll(async () => {
    if (run !== undefined) await run.stop();
    pki?.cleanup();
  }, 20_000);

  // Under Node 22 (what the SEA binary embeds): Bun has no setTicketKeys, so its workers keep their own keys.
  test("a session ticket from one worker resumes on the other (the owner's ticket keys are every worker's)", async () => {
    pki = makePki();
    const leaf = pki.issue('site', ['localhost']);
    const port = await closedPort();
    const mgmt = await closedPort();
    const conf = join(dir, 'tls.conf');
    writeFileSync(
      conf,
      `SERVER workers = 2\nCREATE POOL web\n  POOL web ADD 127.0.0.1:${backends[0]!.port}\n` +
        `CREATE SERVICE site\n  SET listen = 127.0.0.1:${port}\n  SET role = reverse_proxy\n  SET pool = web\n` +
        `  SET enable_ssl = on\n  SET ssl_cert_file = ${leaf.crt}\n  SET ssl_key_file = ${leaf.key}\nENABLE site\n` +
        `CREATE SERVICE mgmt\n  SET role = management\n  SET listen = 127.0.0.1:${mgmt}\nENABLE mgmt\n`,
    );
    run = await startRun(conf, port, mgmt, [NODE22, DIST_BUNDLE]);
    expect(listeningPids(port).length).toBe(2);
    const ca = readFileSync(pki.caCrt);
    /** One TLS connection (a request and its answer); whether it resumed, and the session to resume next. */
    const handshake = (session?: Buffer): Promise<{ reused: boolean; session: Buffer | undefined }> =>
      new Promise((resolve, reject) => {
        let ticket: Buffer | undefined;
        const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca, ...(session === undefined ? {} : { session }) }, () => {
          s.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
        });
        s.on('session', (t: Buffer) => (ticket ??= t));
        s.on('data', () => undefined);
        s.on('end', () => resolve({ reused: s.isSessionReused(), session: ticket }));
        s.on('error', reject);
        setTimeout(() => reject(new Error('TLS request: no answer within 5 s')), 5000).unref();
      });
    const first = await handshake();
    expect(first.session).toBeDefined();
    // Each new connection comes from another source port: the kernel hashes them over both workers' sockets.
    const reused: boolean[] = [];
    for (let i = 0; i < 16; i++) reused.push((await handshake(first.session)).reused);
    expect(reused.filter((r) => !r).length).toBe(0);
  }, 60_000);
});
