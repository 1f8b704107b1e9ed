// bench/proxy/accept-queue.ts: how fast a proxy takes a burst of new connections. wrk opens all its connections
// at once; this samples the listening socket's accept queue (`ss -ltn` Recv-Q: connections the kernel has
// completed but the proxy has not accepted yet) every 100 ms while wrk runs, for tsbal and HAProxy (nbthread 1)
// in front of the same two nginx backends. A request sent on a connection still in that queue waits there, and
// wrk counts the wait as request latency.
//
// --close sends `Connection: close` (every request a new connection: bursts of connects all the run long);
// --tsbal-bin adds a built executable (several: one row each), --rounds interleaves the proxies that many times.
//
//   npx bun bench/proxy/accept-queue.ts [--connections 1000] [--duration 4] [--threads 2] [--close] [--rounds 1]
//                                       [--tsbal-bin dist/tsbal ...] [--no-dist] [--no-build]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { startHaproxy } from '../../test/harness/haproxy.ts';
import { startNginxBackend } from '../../test/harness/nginx.ts';
import { TUTORIAL_OPTIONS } from '../../test/harness/perlbalconf.ts';
import { type Daemon, stopAll } from '../../test/harness/procs.ts';
import { startTsbal } from '../../test/harness/tsbal.ts';
import { parseWrk } from '../../test/harness/wrk.ts';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '4' },
    threads: { type: 'string', default: '2' },
    close: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '1' },
    'tsbal-bin': { type: 'string', multiple: true },
    'no-dist': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
  },
});
const CONNECTIONS = Number(args.connections);
const DURATION = Number(args.duration);
const HEADERS = args.close ? ['-H', 'Connection: close'] : [];

/** Recv-Q of the listening socket on `port`: connections waiting to be accepted. */
function acceptQueue(port: number): number {
  const out = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim();
  return Number(out.split(/\s+/)[1] ?? 0);
}

async function measure(name: string, port: number): Promise<void> {
  const wrk = spawn('wrk', [`-t${args.threads}`, `-c${CONNECTIONS}`, `-d${DURATION}s`, '--latency', ...HEADERS, `http://127.0.0.1:${port}/`]);
  let raw = '';
  wrk.stdout.on('data', (d: Buffer) => (raw += d.toString()));
  const exited = new Promise<void>((resolve) => wrk.on('exit', () => resolve()));
  const start = Date.now();
  const samples: number[] = [];
  // Bounded: wrk stops itself after DURATION; the loop gives up 3 s later whatever happens.
  while (wrk.exitCode === null && Date.now() - start < (DURATION + 3) * 1000) {
    samples.push(acceptQueue(port));
    await new Promise((r) => setTimeout(r, 100));
  }
  await exited;
  const r = parseWrk(raw);
  const max = /Latency\s+\S+\s+\S+\s+(\S+)/.exec(raw)?.[1] ?? '?';
  const drainedAt = samples.findIndex((n, i) => i > 0 && n === 0);
  console.log(
    `${name} -t${args.threads} -c${CONNECTIONS}${args.close ? ' close' : ''}: ${r.requestsPerSecond.toFixed(0)} req/s, ` +
      `p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${max}, timeouts ${r.errors.timeout}, ` +
      `other socket errors ${r.errors.connect + r.errors.read + r.errors.write}; accept queue peak ${Math.max(...samples)}, ` +
      `empty after ${drainedAt === -1 ? 'never' : `${drainedAt * 100} ms`}`,
  );
  console.log(`  accept queue every 100 ms: ${samples.join(' ')}`);
}

if (!args['no-build']) {
  const build = spawnSync('node_modules/.bin/node', ['build/bundle.ts'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('bundle build failed (node build/bundle.ts)');
}
const daemons: Daemon[] = [];
try {
  const backends = [await startNginxBackend({ name: 'b1' }), await startNginxBackend({ name: 'b2' })];
  daemons.push(...backends);
  const ports = backends.map((b) => b.port);
  const proxies: Array<{ name: string; port: number }> = [];
  const haproxy = await startHaproxy(ports);
  daemons.push(haproxy);
  proxies.push({ name: 'haproxy', port: haproxy.port });
  if (!args['no-dist']) {
    const tsbal = await startTsbal({ backends: ports, set: TUTORIAL_OPTIONS }, { kind: 'dist' });
    daemons.push(tsbal);
    proxies.push({ name: 'tsbal', port: tsbal.port });
  }
  for (const bin of args['tsbal-bin'] ?? []) {
    const tsbal = await startTsbal({ backends: ports, set: TUTORIAL_OPTIONS }, { kind: 'binary', path: path.resolve(bin) });
    daemons.push(tsbal);
    proxies.push({ name: `tsbal-bin:${path.basename(bin)}`, port: tsbal.port });
  }
  console.log(`load average before: ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const p of proxies) await measure(p.name, p.port);
  }
  console.log(`load average after: ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
} finally {
  await stopAll(daemons);
}
