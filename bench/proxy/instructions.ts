// bench/proxy/instructions.ts: user-space instructions per request, counted by callgrind over a fixed number of
// requests, for decisions that wrk's req/s cannot resolve on a loaded machine (the count does not depend on what
// else runs). Each target runs under `valgrind --tool=callgrind` (all its threads: JIT, GC and main); a built-in
// client sends --warmup requests, the counters are zeroed (callgrind_control -z), --requests more are sent, and the
// counters dumped (callgrind_control -d). Kernel time is not counted: see the syscall figures in bench/README.md.
//
//   npx bun bench/proxy/instructions.ts [--shape close|keep-alive] [--requests 3000] [--warmup 1500]
//        [--concurrency 8] [--only tsbal,floor-node,...] [--tsbal-bin dist/tsbal ...] [--tsbal-cjs a.cjs ...]
//        [--no-build]
// Targets: tsbal (dist/tsbal.cjs under Node 22), tsbal-bin:<file> per --tsbal-bin, tsbal-cjs:<file> per
// --tsbal-cjs (another bundle under Node 22: builds before and after a change, in one run), floor-node, floor-bun,
// haproxy (proxying, nbthread 1), haproxy-return (answering itself), all but the floors in front of two nginx.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { startNginxBackend } from '../../test/harness/nginx.ts';
import { reverseProxyConfFor, startWithConf } from '../../test/harness/perlbal.ts';
import { TUTORIAL_OPTIONS } from '../../test/harness/perlbalconf.ts';
import { type Daemon, makeTempDir, startDaemon, startWithFreshPorts, stopAll } from '../../test/harness/procs.ts';
import { type TsbalBuild, launchSingleTsbal } from '../../test/harness/tsbal.ts';
import { RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';
import { FLOOR_NAMES, type FloorName, type Launch, type Wrap, startFloor } from './floors.ts';

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'close' },
    requests: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '1500' },
    concurrency: { type: 'string', default: '8' },
    only: { type: 'string' },
    'tsbal-bin': { type: 'string', multiple: true },
    'tsbal-cjs': { type: 'string', multiple: true },
    /** Extra Node flags for the --tsbal-cjs targets (e.g. --single-threaded-gc). */
    'node-flag': { type: 'string', multiple: true },
    'no-build': { type: 'boolean', default: false },
    /** Copies the measured callgrind dumps here (for callgrind_annotate) before the target's temp dir goes. */
    'save-dumps': { type: 'string' },
  },
});
const SHAPE = args.shape === 'keep-alive' ? 'keep-alive' : 'close';
const REQUESTS = Number(args.requests);
const WARMUP = Number(args.warmup);
const CONCURRENCY = Number(args.concurrency);
const READY_MS = 180_000;

type Target = Daemon & { port: number };

const callgrindOut = (dir: string): string => path.join(dir, 'callgrind.out.%p');
const underCallgrind: Wrap = ({ command, args: argv }: Launch, dir: string) => ({
    command: '/usr/bin/valgrind',
    args: ['--tool=callgrind', '--quiet', '--separate-threads=yes', `--callgrind-out-file=${callgrindOut(dir)}`, command, ...argv],
  });

function startHaproxyUnder(backends: readonly number[]): Promise<Target> {
  return startWithFreshPorts(1, async ([port]) => {
    const dir = makeTempDir('bench-haproxy');
    const conf = path.join(dir, 'haproxy.cfg');
    const servers = backends.map((p, i) => `  server b${i + 1} 127.0.0.1:${p}`).join('\n');
    fs.writeFileSync(
      conf,
      `global\n  nbthread 1\n  maxconn 4096\ndefaults\n  mode http\n  option http-keep-alive\n  option forwardfor\n` +
        `  http-reuse always\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n` +
        `frontend fe\n  bind 127.0.0.1:${port}\n  default_backend be\nbackend be\n  balance roundrobin\n${servers}\n`,
    );
    const { command, args: argv } = underCallgrind({ command: '/usr/sbin/haproxy', args: ['-db', '-f', conf] }, dir);
    const daemon = await startDaemon({ name: 'haproxy', command, args: argv, dir, ports: [port!], readyTimeoutMs: READY_MS });
    return { ...daemon, port: port! };
  });
}

async function startTsbalUnder(build: TsbalBuild | { kind: 'cjs'; path: string }, backends: readonly number[]): Promise<Target> {
  const launch =
    build.kind === 'cjs'
      ? (conf: string) => ({
          command: `${REPO_ROOT}node_modules/.bin/node`,
          args: [...RUN_V8_FLAGS, ...(args['node-flag'] ?? []), build.path, 'run', '-c', conf],
          // One process, as HAProxy runs one thread (valgrind would not follow worker processes anyway).
          env: { ...process.env, TSBAL_WORKERS: '1' },
        })
      : launchSingleTsbal(build);
  return startWithConf('tsbal', 2, reverseProxyConfFor({ backends, set: TUTORIAL_OPTIONS }), (conf, dir) => {
    const { command, args: argv, env } = launch(conf);
    return { ...underCallgrind({ command, args: argv }, dir), env };
  }, READY_MS);
}

function start(name: string, backends: readonly number[]): Promise<Target> {
  if ((FLOOR_NAMES as readonly string[]).includes(name)) return startFloor(name as FloorName, underCallgrind, READY_MS);
  if (name === 'haproxy') return startHaproxyUnder(backends);
  if (name === 'tsbal') return startTsbalUnder({ kind: 'dist', node: `${REPO_ROOT}node_modules/.bin/node` }, backends);
  if (name.startsWith('tsbal-cjs:')) return startTsbalUnder({ kind: 'cjs', path: path.resolve(name.slice('tsbal-cjs:'.length)) }, backends);
  const bin = name.slice('tsbal-bin:'.length);
  return startTsbalUnder({ kind: 'binary', path: path.resolve(bin) }, backends);
}

const REQUEST = (port: number): Buffer =>
  Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${SHAPE === 'close' ? 'Connection: close\r\n' : ''}\r\n`);

/** One connection per request: connect, send, read to the server's close. Resolves the status code. */
function oneClose(port: number, request: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(120_000, () => socket.destroy(new Error('timed out')));
    socket.on('connect', () => socket.write(request));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('end', () => {
      socket.destroy();
      resolve(Number(Buffer.concat(chunks).toString('latin1', 9, 12)));
    });
  });
}

/** `count` requests in order on one kept connection (each answer read to its Content-Length). */
function keptRequests(port: number, request: Buffer, count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const statuses: number[] = [];
    let buf = Buffer.alloc(0);
    socket.setTimeout(120_000, () => socket.destroy(new Error('timed out')));
    socket.on('connect', () => socket.write(request));
    socket.on('error', reject);
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.toString('latin1', 0, end);
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        statuses.push(Number(head.slice(9, 12)));
        buf = buf.subarray(end + 4 + length);
        if (statuses.length === count) {
          socket.destroy();
          resolve(statuses);
          return;
        }
        socket.write(request);
      }
    });
  });
}

/** `total` requests over CONCURRENCY connections (or one connection each, for the close shape). */
async function load(port: number, total: number): Promise<void> {
  const request = REQUEST(port);
  let left = total;
  let bad = 0;
  const lane = async (): Promise<void> => {
    if (SHAPE === 'keep-alive') {
      const share = Math.ceil(total / CONCURRENCY);
      const n = Math.min(share, left);
      left -= n;
      if (n > 0) bad += (await keptRequests(port, request, n)).filter((s) => s !== 200).length;
      return;
    }
    while (left > 0) {
      left--;
      if ((await oneClose(port, request)) !== 200) bad++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  if (bad > 0) throw new Error(`${bad} of ${total} requests did not answer 200`);
}

function callgrindControl(flag: string, pid: number): void {
  const r = spawnSync('callgrind_control', [flag, String(pid)], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`callgrind_control ${flag} ${pid}: ${r.stdout}${r.stderr}`);
}

/**
 * The valgrind process is the daemon's pid (the group leader). Sums "totals:" of the dumps made after zeroing: one
 * per thread (`-01` is the main thread, the event loop; the others are V8's compiler and GC helpers and libuv's
 * pool, whose one-off JIT compilations make the total noisier than the main thread's count).
 */
function dumpedInstructions(dir: string, before: ReadonlySet<string>): { total: number; main: number } {
  let total = 0;
  let main = 0;
  for (const file of fs.readdirSync(dir)) {
    if (!file.startsWith('callgrind.out') || before.has(file)) continue;
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    const m = /^(?:totals|summary):\s*(\d+)/m.exec(text);
    if (m) total += Number(m[1]);
    if (m && /-0*1$/.test(file)) main += Number(m[1]);
    if (args['save-dumps']) {
      fs.mkdirSync(args['save-dumps'], { recursive: true });
      fs.copyFileSync(path.join(dir, file), path.join(args['save-dumps'], `${path.basename(dir)}.${file}`));
    }
  }
  return { total, main };
}

async function measure(name: string, backends: readonly number[]): Promise<{ total: number; main: number }> {
  const target = await start(name, backends);
  try {
    await load(target.port, WARMUP);
    const dumpsBefore = new Set(fs.readdirSync(target.dir));
    callgrindControl('-z', target.pid);
    await load(target.port, REQUESTS);
    callgrindControl('-d', target.pid);
    await new Promise((r) => setTimeout(r, 500));
    const counted = dumpedInstructions(target.dir, dumpsBefore);
    return { total: counted.total / REQUESTS, main: counted.main / REQUESTS };
  } finally {
    await target.stop(10_000);
  }
}

async function main(): Promise<void> {
  if (!args['no-build']) {
    const build = spawnSync('node_modules/.bin/node', ['build/bundle.ts'], { cwd: REPO_ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('bundle build failed (node build/bundle.ts)');
  }
  const names = [
    ...(args.only?.split(',').filter(Boolean) ?? ['haproxy', 'haproxy-return', 'floor-node', 'floor-bun', 'tsbal']),
    ...(args['tsbal-bin'] ?? []).map((b) => `tsbal-bin:${b}`),
    ...(args['tsbal-cjs'] ?? []).map((b) => `tsbal-cjs:${b}`),
  ];
  const backends = await Promise.all([startNginxBackend({ name: 'b1' }), startNginxBackend({ name: 'b2' })]);
  const rows: Array<{ name: string; perRequest: number; mainThread: number }> = [];
  console.error(`instructions: load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  try {
    for (const name of names) {
      const counted = await measure(
        name,
        backends.map((b) => b.port),
      );
      console.error(
        `instructions: ${name} ${SHAPE}: ${(counted.total / 1000).toFixed(1)}k instructions per request, ` +
          `${(counted.main / 1000).toFixed(1)}k on the main thread`,
      );
      rows.push({ name, perRequest: counted.total, mainThread: counted.main });
    }
  } finally {
    await stopAll(backends);
  }
  const ref = (n: string) => rows.find((r) => r.name === n)?.perRequest;
  console.log(`## instructions per request (${SHAPE}), ${REQUESTS} requests after ${WARMUP}, ${CONCURRENCY} at a time`);
  console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  console.log('| target | k instructions / request | main thread | × haproxy | × haproxy-return | × floor-node | × floor-bun |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const x = (v: number, b: number | undefined) => (b ? `${(v / b).toFixed(2)}×` : '–');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${(r.perRequest / 1000).toFixed(1)} | ${(r.mainThread / 1000).toFixed(1)} | ${x(r.perRequest, ref('haproxy'))} | ` +
        `${x(r.perRequest, ref('haproxy-return'))} | ${x(r.perRequest, ref('floor-node'))} | ${x(r.perRequest, ref('floor-bun'))} |`,
    );
  }
}

await main();
