// bench/proxy/instr.ts: instructions per kept-alive request, counted by valgrind's callgrind, for tsbal and HAProxy
// in front of the same two nginx backends. Instruction counts do not move with the machine's load, so a change to
// the per-request path can be judged by them where wrk's req/s cannot (bench/README.md).
//
//   npx bun bench/proxy/instr.ts [--requests 20000] [--warmup 20000] [--connections 64] [--only haproxy,tsbal]
//                                [--tsbal-bin dist/tsbal ...] [--tsbal-cjs before.cjs ...] [--node /usr/bin/node] [--keep DIR]
//
// Each proxy runs under `valgrind --tool=callgrind` (every thread of the process counted); h2load --h1 sends
// --warmup requests (JIT warm-up, idle backend connections opened), the counters are zeroed (callgrind_control -z),
// h2load sends exactly --requests requests on --connections kept-alive connections, and the counts are dumped
// (callgrind_control -d). Printed: instructions per request and the ratio to HAProxy. With --keep the dumps stay in
// DIR for callgrind_annotate (tsbal under Node then runs with --perf-basic-prof so JIT frames are named).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startNginxBackend, type Nginx } from '../../test/harness/nginx.ts';
import { reverseProxyConfFor } from '../../test/harness/perlbal.ts';
import { TUTORIAL_OPTIONS } from '../../test/harness/perlbalconf.ts';
import { makeTempDir, startDaemon, startWithFreshPorts, stopAll, type Daemon } from '../../test/harness/procs.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';
import { haproxyConf } from '../../test/harness/haproxy.ts';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '20000' },
    connections: { type: 'string', default: '64' },
    only: { type: 'string', default: 'haproxy,tsbal' },
    'tsbal-bin': { type: 'string', multiple: true },
    // Other bundles (a build before a change) run like the tsbal row: rows tsbal-cjs:<file name>.
    'tsbal-cjs': { type: 'string', multiple: true },
    node: { type: 'string', default: '/usr/bin/node' },
    keep: { type: 'string' },
  },
});
const REQUESTS = Number(args.requests);
const WARMUP = Number(args.warmup);
const CONNECTIONS = Number(args.connections);

type Proxy = Daemon & { port: number; outFile: string };

function valgrind(outFile: string, command: string, argv: string[]): { command: string; args: string[] } {
  return {
    command: 'valgrind',
    args: ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${outFile}`, command, ...argv],
  };
}

function startTsbalCounted(name: string, backends: number[], command: string, argv: string[]): Promise<Proxy> {
  return startWithFreshPorts(2, async (ports) => {
    const dir = makeTempDir('instr-tsbal');
    const { text, ready } = reverseProxyConfFor({ backends, set: TUTORIAL_OPTIONS })(ports);
    const conf = path.join(dir, 'perlbal.conf');
    fs.writeFileSync(conf, text);
    const outFile = path.join(args.keep ? path.resolve(args.keep) : dir, `callgrind.${name.replace(/[^\w.-]/g, '_')}.out`);
    // Start-up under valgrind takes far longer than the harness's usual 15 s.
    const daemon = await startDaemon({
      name: 'tsbal',
      ...valgrind(outFile, command, [...argv, 'run', '-c', conf]),
      dir,
      ports: ready,
      // One process, as HAProxy runs one thread (valgrind would not follow worker processes anyway).
      env: { ...process.env, TSBAL_WORKERS: '1' },
      readyTimeoutMs: 120_000,
    });
    return { ...daemon, port: ready[0]!, outFile };
  });
}

function startHaproxyCounted(backends: number[]): Promise<Proxy> {
  return startWithFreshPorts(1, async (ports) => {
    const dir = makeTempDir('instr-haproxy');
    const conf = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(conf, haproxyConf(ports, backends, {}));
    const outFile = path.join(args.keep ? path.resolve(args.keep) : dir, 'callgrind.haproxy.out');
    const daemon = await startDaemon({
      name: 'haproxy',
      ...valgrind(outFile, '/usr/sbin/haproxy', ['-db', '-f', conf]),
      dir,
      ports,
      readyTimeoutMs: 60_000,
    });
    return { ...daemon, port: ports[0]!, outFile };
  });
}

/** Sends `requests` requests; the number that did not get a 2xx (a proxy under valgrind on a loaded machine may time out). */
function h2load(port: number, requests: number): number {
  const r = spawnSync('h2load', ['--h1', '-n', String(requests), '-c', String(CONNECTIONS), '-t', '1', `http://127.0.0.1:${port}/`], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(r.stdout);
  if (done === null || Number(done[1]) !== requests) throw new Error(`h2load on port ${port}: ${r.stdout}\n${r.stderr}`);
  return requests - Number(done[2]);
}

function control(pid: number, flag: string): void {
  const r = spawnSync('callgrind_control', [flag, String(pid)], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`callgrind_control ${flag} ${pid}: ${r.stdout}${r.stderr}`);
}

/** Total instructions in the dumps written after the zeroing (callgrind_control -d writes <out>.<n>). */
function dumpedInstructions(outFile: string): number {
  const dir = path.dirname(outFile);
  const base = path.basename(outFile);
  let total = 0;
  for (const f of fs.readdirSync(dir)) {
    if (!f.startsWith(`${base}.`)) continue;
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    const m = /^(?:summary|totals): (\d+)/m.exec(text);
    if (m) total += Number(m[1]);
  }
  return total;
}

interface Row {
  name: string;
  start(backends: number[]): Promise<Proxy>;
}

const rows: Row[] = [];
for (const name of args.only.split(',')) {
  if (name === 'haproxy') rows.push({ name, start: startHaproxyCounted });
  else if (name === 'tsbal') {
    const perf = args.keep ? ['--perf-basic-prof'] : [];
    rows.push({ name, start: (b) => startTsbalCounted(name, b, path.resolve(args.node), [...RUN_V8_FLAGS, ...perf, `${REPO_ROOT}dist/tsbal.cjs`]) });
  }
}
for (const cjs of args['tsbal-cjs'] ?? []) {
  const name = `tsbal-cjs:${path.basename(cjs)}`;
  rows.push({ name, start: (b) => startTsbalCounted(name, b, path.resolve(args.node), [...RUN_V8_FLAGS, path.resolve(cjs)]) });
}
for (const bin of args['tsbal-bin'] ?? []) {
  const name = `tsbal-bin:${path.basename(bin)}`;
  rows.push({ name, start: (b) => startTsbalCounted(name, b, path.resolve(bin), []) });
}

const backends: Nginx[] = [await startNginxBackend({ name: 'b1' }), await startNginxBackend({ name: 'b2' })];
const results: { name: string; perRequest: number; failed: number }[] = [];
try {
  for (const row of rows) {
    const proxy = await row.start(backends.map((b) => b.ports[0]!));
    try {
      h2load(proxy.port, WARMUP);
      // The main thread's pid is the daemon's (valgrind execs the program in place).
      control(proxy.pid, '-z');
      const failed = h2load(proxy.port, REQUESTS);
      control(proxy.pid, '-d');
      const n = dumpedInstructions(proxy.outFile);
      results.push({ name: row.name, perRequest: n / REQUESTS, failed });
    } finally {
      await proxy.stop(5000);
    }
  }
} finally {
  await stopAll(backends);
}

const base = results.find((r) => r.name === 'haproxy')?.perRequest;
console.log(`\nkept-alive, h2load --h1 -c${CONNECTIONS}, ${REQUESTS} requests after ${WARMUP} warm-up, callgrind (all threads)\n`);
console.log('| proxy | instructions per request | × HAProxy | not 2xx |');
console.log('| --- | ---: | ---: | ---: |');
for (const r of results) {
  console.log(`| ${r.name} | ${Math.round(r.perRequest)} | ${base ? (r.perRequest / base).toFixed(2) + '×' : '–'} | ${r.failed} |`);
}
