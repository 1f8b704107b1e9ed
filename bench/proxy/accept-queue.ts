// bench/proxy/accept-queue.ts: how fast a proxy takes a burst of new connections. wrk opens all its connections
// at once; this samples the listening socket's accept queue (`ss -ltn` Recv-Q: connections the kernel has
// completed but the proxy has not accepted yet) every 100 ms while wrk runs, for tsbal and HAProxy (nbthread 1)
// in front of the same two nginx backends. A request sent on a connection still in that queue waits there, and
// wrk counts the wait as request latency.
//
//   npx bun bench/proxy/accept-queue.ts [--connections 1000] [--duration 4] [--no-build]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
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
    'no-build': { type: 'boolean', default: false },
  },
});
const CONNECTIONS = Number(args.connections);
const DURATION = Number(args.duration);

/** Recv-Q of the listening socket on `port`: connections waiting to be accepted. */
function acceptQueue(port: number): number {
  const out = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim();
  return Number(out.split(/\s+/)[1] ?? 0);
}

async function measure(name: string, port: number): Promise<void> {
  const wrk = spawn('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${DURATION}s`, '--latency', `http://127.0.0.1:${port}/`]);
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
    `${name} -c${CONNECTIONS}: ${r.requestsPerSecond.toFixed(0)} req/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ` +
      `max ${max}, timeouts ${r.errors.timeout}; accept queue peak ${Math.max(...samples)}, ` +
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
  const haproxy = await startHaproxy(ports);
  daemons.push(haproxy);
  const tsbal = await startTsbal({ backends: ports, set: TUTORIAL_OPTIONS }, { kind: 'dist' });
  daemons.push(tsbal);
  console.log(`load average before: ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
  await measure('haproxy', haproxy.port);
  await measure('tsbal', tsbal.port);
} finally {
  await stopAll(daemons);
}
