// A management service under `tsbal reload`, in a real `tsbal run`: removed, its port stops accepting and its open
// console connections close; added, it listens and answers; renamed on the same address, it keeps its socket; one
// that cannot bind refuses the whole reload.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY, runTsbal } from '../harness/cli.ts';
import { closedPort, rawBackend, rawRequest, type RawBackend } from '../proxy/helpers.ts';

let dir: string;
let backend: RawBackend;
let taken: Server;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsbal-reload-mgmt-'));
  backend = await rawBackend('b');
  taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
});
afterAll(async () => {
  await Promise.all([backend.close(), new Promise<void>((r) => taken.close(() => r()))]);
  rmSync(dir, { recursive: true, force: true });
});

/** The inode of the socket listening on 127.0.0.1:port (null: none): the same inode means the same socket. */
/** The listening sockets on 127.0.0.1:port (one per worker with SERVER workers), as their sorted inodes. */
function listenInode(port: number): string | null {
  // /proc/net/tcp is read a page at a time: with a worker's 16 listening sockets the table spans pages, and a
  // connection opened or closed meanwhile can show a line twice or hide one. Read until two reads agree.
  let last: string | null | undefined;
  for (let i = 0; i < 10; i++) {
    const now = listenInodesOnce(port);
    if (now === last) return now;
    last = now;
  }
  return last ?? null;
}

function listenInodesOnce(port: number): string | null {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[3] === '0A' && f[9] !== undefined) inodes.add(f[9]);
  }
  return inodes.size === 0 ? null : [...inodes].sort().join(',');
}

/** An open console connection: send a line, read until the answer's last line; `closed` resolves when tsbal ends it. */
function consoleConn(port: number): Promise<{ ask(line: string): Promise<string>; closed: Promise<void>; destroy(): void }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (buf += d));
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    s.on('error', reject);
    s.on('connect', () =>
      resolve({
        async ask(line) {
          buf = '';
          s.write(`${line}\r\n`);
          const t0 = performance.now();
          while (!buf.endsWith('\r\n') && performance.now() - t0 < 3000) await Bun.sleep(10);
          return buf;
        },
        closed,
        destroy: () => s.destroy(),
      }),
    );
  });
}

const web = (port: number): string =>
  `CREATE POOL p\n  POOL p ADD 127.0.0.1:${backend.port}\nCREATE SERVICE web\n  SET listen = 127.0.0.1:${port}\n  SET role = reverse_proxy\n  SET pool = p\nENABLE web\n`;
const mgmt = (name: string, port: number): string => `CREATE SERVICE ${name}\n  SET role = management\n  SET listen = 127.0.0.1:${port}\nENABLE ${name}\n`;

describe('tsbal reload applies management services', () => {
  test('removed: stops accepting and closes its console connections; added: listens; renamed: same socket; unbindable: nothing changes', async () => {
    const [webPort, m1, m2] = [await closedPort(), await closedPort(), await closedPort()];
    const confPath = join(dir, 'perlbal.conf');
    const pidfile = join(dir, 'tsbal.pid');
    writeFileSync(confPath, web(webPort) + mgmt('mgmt', m1));
    const child = spawn(process.execPath, [CLI_ENTRY, 'run', '-c', confPath, '--pidfile', pidfile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const reload = async (): Promise<string> => {
      const r = await runTsbal(['reload', '--pidfile', pidfile, '--log-level', 'error']);
      if (r.code !== 0) throw new Error(`tsbal reload exited ${r.code}: ${r.stdout}${r.stderr}\nrun's output:\n${out}`);
      return r.stdout;
    };
    try {
      const t0 = performance.now();
      while (listenInode(webPort) === null || listenInode(m1) === null) {
        if (performance.now() - t0 > 10_000 || child.exitCode !== null) throw new Error(`tsbal run did not listen:\n${out}`);
        await Bun.sleep(50);
      }
      const webInode = listenInode(webPort);
      const held = await consoleConn(m1);
      expect(await held.ask('version')).toMatch(/\S/);

      // 1. Renamed on the same address: the very same socket, the open console connection carries on.
      const m1Inode = listenInode(m1);
      writeFileSync(confPath, web(webPort) + mgmt('admin', m1));
      expect(await reload()).toContain(`management 127.0.0.1:${m1} mgmt→admin`);
      expect(listenInode(m1)).toBe(m1Inode);
      expect(await held.ask('version')).toMatch(/\S/);

      // 2. Removed: the port stops accepting and the connection open on it is ended by tsbal.
      writeFileSync(confPath, web(webPort));
      expect(await reload()).toContain(`management -127.0.0.1:${m1}`);
      expect(listenInode(m1)).toBeNull();
      const ended = await Promise.race([held.closed.then(() => 'closed'), Bun.sleep(3000).then(() => 'still open after 3 s')]);
      expect(ended).toBe('closed');
      expect(out).toContain(`service admin: stopped listening on 127.0.0.1:${m1} (management)`);

      // 3. Added on another port: it listens and answers; the HTTP service kept its socket throughout.
      writeFileSync(confPath, web(webPort) + mgmt('mgmt2', m2));
      expect(await reload()).toContain(`management +127.0.0.1:${m2}`);
      const fresh = await consoleConn(m2);
      expect(await fresh.ask('show service web')).toContain('SERVICE web');
      fresh.destroy();
      expect(listenInode(webPort)).toBe(webInode);

      // 4. Moved to a port that is taken: the reload is refused with file:line and the old console stays.
      const takenPort = (taken.address() as AddressInfo).port;
      writeFileSync(confPath, web(webPort) + mgmt('mgmt2', takenPort));
      const refused = await runTsbal(['reload', '--pidfile', pidfile, '--log-level', 'error']);
      expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining(`${confPath}:8: service mgmt2: cannot listen on 127.0.0.1:${takenPort}: EADDRINUSE`)]);
      expect(listenInode(m2)).not.toBeNull();
      expect((await rawRequest(webPort, 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')).data).toContain('hello from b');

      child.kill('SIGTERM');
      expect(await new Promise((r) => child.on('exit', (code) => r(code)))).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 30_000);
});
