// `tsbal run` reloading on SIGHUP, as a real process under load: keep-alive clients and new connections run through
// several reloads (pool changes, a service added and one removed, a bad config, a bind that fails) and none of their
// requests may fail; removed backends get no new requests; the unchanged listener keeps the very same socket.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { looksLikeTsbalRun } from '../../src/cli/reload.ts';
import { CLI_ENTRY, runTsbal } from '../harness/cli.ts';
import { connectRaw, describeOutcome, type RawConnection } from '../harness/rawclient.ts';
import { closedPort, rawBackend, rawRequest, type RawBackend } from '../proxy/helpers.ts';

let dir: string;
let a: RawBackend, b: RawBackend, c: RawBackend;
let taken: Server;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsbal-reload-'));
  [a, b, c] = await Promise.all([rawBackend('a'), rawBackend('b'), rawBackend('c')]);
  taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
});
afterAll(async () => {
  await Promise.all([a.close(), b.close(), c.close(), new Promise<void>((r) => taken.close(() => r()))]);
  rmSync(dir, { recursive: true, force: true });
});

const requestCount = (be: RawBackend): number => be.conns.reduce((n, s) => n + (s.match(/^GET /gm)?.length ?? 0), 0);

/** The inode of the socket listening on 127.0.0.1:port (null: none): the same inode means the same socket. */
/** The listening sockets on 127.0.0.1:port (one per worker with SERVER workers), as their sorted inodes. */
function listenInode(port: number): string | null {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes: string[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[3] === '0A' && f[9] !== undefined) inodes.push(f[9]);
  }
  return inodes.length === 0 ? null : inodes.sort().join(',');
}

interface Ports {
  web: number;
  old: number;
  api: number;
}

function service(name: string, port: number, pool: string, extra = ''): string {
  return (
    `CREATE SERVICE ${name}\n  SET listen = 127.0.0.1:${port}\n  SET role = reverse_proxy\n  SET pool = ${pool}\n` +
    `  SET persist_client = on\n  SET persist_backend = on\n${extra}ENABLE ${name}\n`
  );
}

function pool(name: string, members: RawBackend[]): string {
  return `CREATE POOL ${name}\n${members.map((m) => `  POOL ${name} ADD 127.0.0.1:${m.port}\n`).join('')}`;
}

interface LoopResult {
  ok: number;
  failures: string[];
  /** Ended by its hard deadline rather than by `stop` (then it did not cover everything it was meant to). */
  timedOut: boolean;
}

/**
 * A paced client: `keepAlive` sends its requests on one connection (a new one after `Connection: close`), otherwise
 * each on a new connection. Runs until `stop()` says so, and never past `hardMs` or `maxRequests`.
 */
// hardMs: the four reloads below take a few seconds; with worker processes each reload compiles in every worker
// too, which on a loaded 2-core machine took up to ~25 s.
async function clientLoop(port: number, keepAlive: boolean, stop: () => boolean, hardMs = 40_000, maxRequests = 20_000): Promise<LoopResult> {
  const t0 = performance.now();
  const result: LoopResult = { ok: 0, failures: [], timedOut: false };
  let conn: RawConnection | null = null;
  try {
    for (let i = 0; i < maxRequests && !stop(); i++) {
      if (performance.now() - t0 > hardMs) {
        result.timedOut = true;
        break;
      }
      if (conn === null || conn.isClosed()) {
        const opened = await connectRaw(port).catch((e: Error) => e);
        if (opened instanceof Error) {
          result.failures.push(`request ${i}: connect: ${opened.message}`);
          continue;
        }
        conn = opened;
      }
      conn.send(`GET /${keepAlive ? 'ka' : 'fresh'} HTTP/1.1\r\nHost: t\r\n${keepAlive ? '' : 'Connection: close\r\n'}\r\n`);
      const o = await conn.read({ timeoutMs: 3000 });
      if (o.kind === 'response' && o.response.status === 200 && o.response.body.toString().startsWith('hello from')) result.ok++;
      else result.failures.push(`request ${i}: ${describeOutcome(o)}`);
      const close = o.kind !== 'response' || !keepAlive || /close/i.test(o.response.head.headers.find(([k]) => k.toLowerCase() === 'connection')?.[1] ?? '');
      if (close) {
        conn.close();
        conn = null;
      }
      await Bun.sleep(1);
    }
  } finally {
    conn?.close();
  }
  return result;
}

describe('tsbal run reload (SIGHUP)', () => {
  let run: { child: ChildProcess; output: () => string; exited: Promise<number | null> };

  async function outcome(kind: 'reload OK' | 'reload FAILED', nth: number): Promise<void> {
    const t0 = performance.now();
    while (run.output().split(kind).length - 1 < nth) {
      if (performance.now() - t0 > 5000) throw new Error(`no ${nth}th "${kind}" within 5 s; output:\n${run.output()}`);
      await Bun.sleep(20);
    }
  }

  test('reloads pools and listeners under load with zero failed requests; a bad config or a failed bind changes nothing', async () => {
    const ports: Ports = { web: await closedPort(), old: await closedPort(), api: await closedPort() };
    const confPath = join(dir, 'perlbal.conf');
    const pidfile = join(dir, 'tsbal.pid');
    const write = (text: string): void => writeFileSync(confPath, text);
    write(`${pool('webpool', [a, b])}${pool('otherpool', [c])}${service('web', ports.web, 'webpool')}${service('old', ports.old, 'otherpool')}`);
    const child = spawn(process.execPath, [CLI_ENTRY, 'run', '-c', confPath, '--pidfile', pidfile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    run = { child, output: () => out, exited: new Promise((r) => child.on('exit', (code) => r(code))) };
    try {
      const t0 = performance.now();
      while (listenInode(ports.web) === null || listenInode(ports.old) === null) {
        if (performance.now() - t0 > 10_000 || child.exitCode !== null) throw new Error(`tsbal run did not listen:\n${out}`);
        await Bun.sleep(50);
      }
      const inode = listenInode(ports.web);

      // Keep-alive and new-connection clients run until every reload below is done (bounded by time and count).
      let reloadsDone = false;
      const stop = (): boolean => reloadsDone;
      const loops = Promise.all([clientLoop(ports.web, true, stop), clientLoop(ports.web, true, stop), clientLoop(ports.web, false, stop), clientLoop(ports.web, false, stop)]);
      await Bun.sleep(300);

      // 1. a leaves the pool, c joins; a new service listens.
      write(`${pool('webpool', [b, c])}${pool('otherpool', [c])}${service('web', ports.web, 'webpool')}${service('old', ports.old, 'otherpool')}${service('api', ports.api, 'otherpool')}`);
      child.kill('SIGHUP');
      await outcome('reload OK', 1);
      expect(out).toContain(`services +api ~web (backends +127.0.0.1:${c.port} -127.0.0.1:${a.port}); listeners +127.0.0.1:${ports.api} kept 2`);
      expect(listenInode(ports.web)).toBe(inode);
      await Bun.sleep(200); // requests dispatched before the commit arrive
      const aAfterRemoval = requestCount(a);
      expect((await rawRequest(ports.api, 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')).data).toContain('hello from c');

      // 2. A syntax error: logged as file:line, the old config serves on.
      write(`${pool('webpool', [a])}${service('web', ports.web, 'webpool')}  SET persist_client = maybe\n`);
      child.kill('SIGHUP');
      await outcome('reload FAILED', 1);
      expect(out).toMatch(new RegExp(`${confPath.replace(/[.]/g, '\\.')}:\\d+: `));
      expect(listenInode(ports.web)).toBe(inode);
      expect(listenInode(ports.old)).not.toBeNull();

      // 3. The old service goes away (its port closes), the pool changes order, an option changes.
      write(`${pool('webpool', [c, b])}${pool('otherpool', [c])}${service('web', ports.web, 'webpool', '  SET max_retries = 3\n')}${service('api', ports.api, 'otherpool')}`);
      child.kill('SIGHUP');
      await outcome('reload OK', 2);
      expect(listenInode(ports.old)).toBeNull();
      expect(listenInode(ports.web)).toBe(inode);

      // 4. a back in, plus a service on a port that is taken: the bind fails, so nothing of it applies.
      const takenPort = (taken.address() as AddressInfo).port;
      write(`${pool('webpool', [a, b, c])}${pool('otherpool', [c])}${service('web', ports.web, 'webpool')}${service('api', ports.api, 'otherpool')}${service('clash', takenPort, 'otherpool')}`);
      // tsbal reload checks the config (it is valid: the port is taken only at run time), signals, and reports the refusal.
      const sent = await runTsbal(['reload', '--pidfile', pidfile, '--log-level', 'error']);
      expect([sent.code, sent.stderr]).toEqual([1, expect.stringContaining(`reload FAILED (tsbal run pid ${child.pid} keeps its previous configuration, unchanged)`)]);
      expect(sent.stderr).toContain(`service clash: cannot listen on 127.0.0.1:${takenPort}: EADDRINUSE`);
      await outcome('reload FAILED', 2);
      expect(out).toContain(`service clash: cannot listen on 127.0.0.1:${takenPort}: EADDRINUSE`);
      expect(listenInode(ports.web)).toBe(inode);

      await Bun.sleep(300);
      reloadsDone = true;
      const results = await loops;
      if (process.env.TSBAL_TEST_LOG) console.log(results.map((r) => r.ok), { a: requestCount(a), b: requestCount(b), c: requestCount(c) }, out);
      expect(results.map((r) => ({ failures: r.failures.slice(0, 3), count: r.failures.length, timedOut: r.timedOut }))).toEqual(
        Array(4).fill({ failures: [], count: 0, timedOut: false }),
      );
      for (const r of results) expect(r.ok).toBeGreaterThan(50);
      expect(requestCount(a)).toBe(aAfterRemoval);
      expect(listenInode(ports.web)).toBe(inode);

      child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  test('tsbal reload refuses a stale pidfile, a missing default pidfile, and with -c a config with errors (before signalling)', async () => {
    const pidfile = join(dir, 'stale.pid');
    writeFileSync(pidfile, '999999999\n');
    const r = await runTsbal(['reload', '--pidfile', pidfile]);
    expect([r.code, r.stderr]).toEqual([1, expect.stringContaining('stale pidfile?')]);
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, 'CREATE SERVICE x\n  SET role = reverse_proxy\n  SET persist_client = maybe\n');
    const checked = await runTsbal(['reload', '--pidfile', pidfile, '-c', bad]);
    expect([checked.code, checked.stderr]).toEqual([1, expect.stringContaining(`${bad}:3: `)]);
    expect(checked.stderr).not.toContain('stale pidfile');
    if (!existsSync('/run/tsbal.pid')) {
      const missing = await runTsbal(['reload']);
      expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining('cannot read /run/tsbal.pid: ENOENT')]);
    }
  });

  test('tsbal reload does not signal a live process that is not tsbal run (a stale pidfile whose pid was reused)', async () => {
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const pidfile = join(dir, 'reused.pid');
      writeFileSync(pidfile, `${other.pid}\n`);
      const r = await runTsbal(['reload', '--pidfile', pidfile]);
      expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(`pid ${other.pid} is not tsbal run`)]);
      await Bun.sleep(100);
      expect({ exitCode: other.exitCode, signalCode: other.signalCode }).toEqual({ exitCode: null, signalCode: null });
    } finally {
      other.kill('SIGKILL');
    }
  });
});

describe('looksLikeTsbalRun', () => {
  test('accepts tsbal run as the SEA binary, under node (with V8 flags), deno, and bun from source', () => {
    expect(looksLikeTsbalRun(['/usr/local/bin/tsbal', 'run', '--pidfile', '/run/tsbal.pid'])).toBe(true);
    expect(looksLikeTsbalRun(['/usr/bin/node', '--max-semi-space-size=16', 'dist/tsbal.cjs', 'run'])).toBe(true);
    expect(looksLikeTsbalRun(['deno', 'run', '-A', '/opt/tsbal.cjs', 'run', '-c', 'p.conf'])).toBe(true);
    expect(looksLikeTsbalRun(['/root/.bun/bin/bun', '/src/tsbal/src/cli/main.ts', 'run'])).toBe(true);
  });
  test('refuses other programs, other tsbal subcommands, and an empty cmdline (zombie)', () => {
    expect(looksLikeTsbalRun(['sleep', '300'])).toBe(false);
    expect(looksLikeTsbalRun(['/usr/sbin/nginx', '-g', 'daemon off;'])).toBe(false);
    expect(looksLikeTsbalRun(['deno', 'run', '-A', 'other.js'])).toBe(false);
    expect(looksLikeTsbalRun(['/usr/local/bin/tsbal', 'demo'])).toBe(false);
    expect(looksLikeTsbalRun([])).toBe(false);
  });
});
