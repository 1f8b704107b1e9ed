// bench/proxy: wrk against tsbal, HAProxy (nbthread 1), nginx (1 worker) and Perlbal in the same run (tsbal and
// HAProxy also with cookie affinity, pinned and unpinned clients, and with health checks of 100 backends, see
// checks.ts), plus
// calibration proxies (bare node:net pipe, node:http + Agent), all in front of the same two nginx backends on
// 127.0.0.1 with keep-alive on both sides, and the floors (floors.ts: Node 22 and Bun answering by themselves on
// node:net, HAProxy answering by itself), which proxy nothing. Two shapes of client: kept-alive connections, and a
// new connection per request (`Connection: close`). All proxies are started first; wrk loads one at a time, in rounds
// that interleave the proxies, so a noisy neighbour hurts one round of each rather than all of one proxy.
// Reports the median over rounds of req/s, p50/p99 and proxy CPU seconds per 100k requests (utime+stime from
// /proc of the proxy's processes), max RSS, and ratios; prints markdown and writes JSON to bench/results/.
//
//   npx bun bench/proxy/run.ts [--rounds 3] [--duration 5] [--warmup 1] [--prewarm 0] [--connections 64,256] [--threads 2]
//                              [--shapes keep-alive,close] [--only haproxy,tsbal,...] [--tsbal-bin dist/tsbal ...]
//                              [--no-build]
//                              [--header 'Connection: close']
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startHaproxy } from '../../test/harness/haproxy.ts';
import { type Nginx, nginxAccepts, nginxCounters, startNginxBackend, startNginxProxy } from '../../test/harness/nginx.ts';
import { startPerlbal } from '../../test/harness/perlbal.ts';
import { TUTORIAL_OPTIONS } from '../../test/harness/perlbalconf.ts';
import { type Daemon, makeTempDir, startDaemon, startWithFreshPorts, stopAll } from '../../test/harness/procs.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { type TsbalBuild, startTsbal, tsbalRunMissing } from '../../test/harness/tsbal.ts';
import { runWrk, totalErrors } from '../../test/harness/wrk.ts';
import { type CheckTargets, CHECK_INTERVAL, CHECK_PATH, checkRate, startCheckTargets, startTsbalChecked } from './checks.ts';
import { FLOOR_NAMES, startFloor } from './floors.ts';
import {
  type Measurement,
  type Shape,
  aggregateRounds,
  checkTargets,
  connCostTargets,
  markdownAffinity,
  markdownConnCost,
  markdownTables,
  markdownTargets,
} from './report.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    /** Seconds of load per proxy and shape before round 1, unmeasured: JIT runtimes measured warm, as a server runs. */
    prewarm: { type: 'string', default: '0' },
    connections: { type: 'string', default: '64,256' },
    threads: { type: 'string', default: '2' },
    shapes: { type: 'string', default: 'keep-alive,close' },
    only: { type: 'string' },
    'tsbal-bin': { type: 'string', multiple: true },
    'no-build': { type: 'boolean', default: false },
    // A header line wrk sends to every proxy, e.g. `--header 'Connection: close'` for a new connection per request.
    header: { type: 'string', multiple: true },
  },
});

const ROUNDS = Number(args.rounds);
const DURATION = Number(args.duration);
const WARMUP = Number(args.warmup);
const PREWARM = Number(args.prewarm);
const CONNECTIONS = args.connections.split(',').map(Number);
const THREADS = Number(args.threads);
const SHAPES = args.shapes.split(',').map((s): Shape => {
  if (s !== 'keep-alive' && s !== 'close') throw new Error(`--shapes: unknown shape ${s} (keep-alive, close)`);
  return s;
});
/** What wrk adds to every request of a shape: `close` makes each request a new connection. */
const SHAPE_HEADERS: Record<Shape, string[]> = { 'keep-alive': [], close: ['Connection: close'] };

type Proxy = Daemon & { port: number; checks?: CheckTargets };

interface ProxyDef {
  name: string;
  /** Why it cannot run here, or null. */
  unavailable(): string | null;
  start(backends: number[]): Promise<Proxy>;
  /** Header lines wrk sends to this proxy, found once it runs (a pinned client's affinity cookie). */
  headers?: (port: number) => Promise<string[]>;
}

/**
 * A client pinned by cookie affinity: the cookie the proxy sets on a first request, sent on every request by wrk
 * (HAProxy and tsbal alike then route all of them to that backend without setting a cookie again).
 */
async function pinnedCookie(port: number): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${port}/`);
  await res.text();
  const set = res.headers.getSetCookie();
  if (set.length !== 1) throw new Error(`expected one Set-Cookie from 127.0.0.1:${port}, got ${JSON.stringify(set)}`);
  return [`Cookie: ${set[0]!.split(';')[0]!}`];
}

/** tsbal with cookie affinity (issue 12): the tutorial options plus `sticky = cookie`. */
const STICKY_OPTIONS = { ...TUTORIAL_OPTIONS, sticky: 'cookie', sticky_secret: 'bench secret' };

function nodeCalibration(name: string, script: string): ProxyDef {
  return {
    name,
    unavailable: () => null,
    start: (backends) =>
      startWithFreshPorts(1, async ([port]) => {
        const dir = makeTempDir(`bench-${name}`);
        const daemon = await startDaemon({
          name,
          command: '/usr/bin/node',
          args: [`${REPO_ROOT}bench/proxy/${script}`, String(port), ...backends.map(String)],
          dir,
          ports: [port!],
        });
        return { ...daemon, port: port! };
      }),
  };
}

function tsbalDef(name: string, build: TsbalBuild, set: Readonly<Record<string, string>> = TUTORIAL_OPTIONS): ProxyDef {
  let checked: { reason: string | null } | undefined;
  return {
    name,
    unavailable: () => (checked ??= { reason: tsbalRunMissing(build) }).reason,
    start: (backends) => startTsbal({ backends, set }, build),
  };
}

/**
 * A proxy that health-checks 100 backends every 1 s while serving: its own 98 check-only targets on
 * 127.0.<block>.1-98 (started first, stopped with the proxy) beside the 2 serving backends (checks.ts).
 */
function withChecks(
  def: Omit<ProxyDef, 'start'>,
  block: number,
  start: (backends: number[], targets: CheckTargets) => Promise<Daemon & { port: number }>,
): ProxyDef {
  return {
    ...def,
    start: async (backends) => {
      const targets = await startCheckTargets(def.name, block);
      let proxy: Daemon & { port: number };
      try {
        proxy = await start(backends, targets);
      } catch (error) {
        await targets.nginx.stop();
        throw error;
      }
      targets.since = { ms: Date.now(), requests: (await nginxCounters(targets.nginx)).requests };
      const stop = async (graceMs?: number) => {
        await proxy.stop(graceMs);
        await targets.nginx.stop();
      };
      return { ...proxy, stop, checks: targets };
    },
  };
}

const haproxyChecks = (targets: CheckTargets) => ({
  path: CHECK_PATH,
  interval: CHECK_INTERVAL,
  idleServers: targets.addresses,
});

const PROXIES: ProxyDef[] = [
  { name: 'haproxy', unavailable: () => null, start: (b) => startHaproxy(b) },
  { name: 'haproxy-cookie', unavailable: () => null, start: (b) => startHaproxy(b, { cookie: true }), headers: pinnedCookie },
  withChecks({ name: 'haproxy-checks', unavailable: () => null }, 3, (b, t) => startHaproxy(b, { checks: haproxyChecks(t) })),
  withChecks({ name: 'haproxy-cookie-checks', unavailable: () => null, headers: pinnedCookie }, 4, (b, t) =>
    startHaproxy(b, { cookie: true, checks: haproxyChecks(t) }),
  ),
  { name: 'nginx', unavailable: () => null, start: (b) => startNginxProxy(b) },
  tsbalDef('tsbal', { kind: 'dist' }),
  // Pinned clients (the steady state), and clients without the cookie yet (every answer sets one).
  { ...tsbalDef('tsbal-cookie', { kind: 'dist' }, STICKY_OPTIONS), headers: pinnedCookie },
  tsbalDef('tsbal-cookie-new', { kind: 'dist' }, STICKY_OPTIONS),
  withChecks(tsbalDef('tsbal-checks', { kind: 'dist' }), 1, (b, t) => startTsbalChecked(b, t, TUTORIAL_OPTIONS, { kind: 'dist' })),
  withChecks({ ...tsbalDef('tsbal-cookie-checks', { kind: 'dist' }), headers: pinnedCookie }, 2, (b, t) =>
    startTsbalChecked(b, t, STICKY_OPTIONS, { kind: 'dist' }),
  ),
  // Several --tsbal-bin (builds to compare in one run) are told apart by file name: tsbal-bin:<name>.
  ...(args['tsbal-bin'] ?? []).map((bin, _i, all) =>
    tsbalDef(all.length === 1 ? 'tsbal-bin' : `tsbal-bin:${path.basename(bin)}`, { kind: 'binary', path: path.resolve(bin) }),
  ),
  // The floors: no proxying, no backend (floors.ts).
  ...FLOOR_NAMES.map((name): ProxyDef => ({ name, unavailable: () => null, start: () => startFloor(name) })),
  nodeCalibration('node-net', 'netpipe.cjs'),
  nodeCalibration('node-http', 'nodehttp.cjs'),
  { name: 'perlbal', unavailable: () => null, start: (b) => startPerlbal({ backends: b, set: TUTORIAL_OPTIONS }) },
];

const backendCpu = (backends: readonly Nginx[]): number => backends.reduce((sum, b) => sum + b.usage().cpuSeconds, 0);
const backendAccepts = async (backends: readonly Nginx[]): Promise<number> =>
  (await Promise.all(backends.map(nginxAccepts))).reduce((sum, n) => sum + n, 0);

async function measure(
  proxy: Daemon & { port: number },
  name: string,
  shape: Shape,
  connections: number,
  backends: readonly Nginx[],
  pinned: readonly string[],
): Promise<Measurement> {
  const headers = [...pinned, ...SHAPE_HEADERS[shape]];
  const url = `http://127.0.0.1:${proxy.port}/`;
  await runWrk({ url, threads: THREADS, connections, durationSeconds: WARMUP, headers });
  const acceptsBefore = await backendAccepts(backends);
  const backendCpuBefore = backendCpu(backends);
  const before = proxy.usage();
  let rssMax = before.rssBytes;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, proxy.usage().rssBytes)), 250);
  try {
    const result = await runWrk({ url, threads: THREADS, connections, durationSeconds: DURATION, headers });
    const after = proxy.usage();
    const backendCpuAfter = backendCpu(backends);
    // Each stub_status read is itself one accepted connection per backend: not the proxy's.
    const opened = (await backendAccepts(backends)) - acceptsBefore - backends.length;
    rssMax = Math.max(rssMax, after.rssBytes);
    return {
      proxy: name,
      shape,
      connections,
      requests: result.requests,
      seconds: result.seconds,
      rps: result.requestsPerSecond,
      p50Ms: result.latencyMs.p50,
      p99Ms: result.latencyMs.p99,
      cpuSecondsPer100k: ((after.cpuSeconds - before.cpuSeconds) / result.requests) * 100_000,
      rssMaxMiB: rssMax / 2 ** 20,
      errors: totalErrors(result),
      backendCpuSecondsPer100k: ((backendCpuAfter - backendCpuBefore) / result.requests) * 100_000,
      backendConnsPer100k: (opened / result.requests) * 100_000,
    };
  } finally {
    clearInterval(sampler);
  }
}

async function main(): Promise<void> {
  if (!args['no-build']) {
    // The build scripts are TypeScript, run by the Node 22 from node_modules (Node 20 cannot run .ts files).
    const build = spawnSync('node_modules/.bin/node', ['build/bundle.ts'], { cwd: REPO_ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('bundle build failed (node build/bundle.ts)');
  }
  const only = args.only?.split(',');
  const selected = PROXIES.filter((p) => !only || only.includes(p.name) || only.includes(p.name.split(':')[0]!));
  const backends = await Promise.all([startNginxBackend({ name: 'b1' }), startNginxBackend({ name: 'b2' })]);
  const rounds: Measurement[] = [];
  const skipped: string[] = [];
  const running: Array<{ def: ProxyDef; proxy: Proxy; headers: string[] }> = [];
  const checkRates: Record<string, number> = {};
  const loadBefore = os.loadavg();
  try {
    for (const def of selected) {
      const reason = def.unavailable();
      if (reason !== null) {
        skipped.push(`${def.name}: skipped, ${reason}`);
        console.error(`bench: ${def.name} skipped: ${reason}`);
        continue;
      }
      const proxy = await def.start(backends.map((b) => b.port));
      const probe = await fetch(`http://127.0.0.1:${proxy.port}/`);
      if (probe.status !== 200) throw new Error(`${def.name}: probe answered ${probe.status}`);
      await probe.text();
      running.push({ def, proxy, headers: [...(args.header ?? []), ...((await def.headers?.(proxy.port)) ?? [])] });
    }
    if (PREWARM > 0) {
      for (const { def, proxy, headers } of running) {
        for (const shape of SHAPES) {
          await runWrk({ url: `http://127.0.0.1:${proxy.port}/`, threads: THREADS, connections: CONNECTIONS[0]!, durationSeconds: PREWARM, headers: [...headers, ...SHAPE_HEADERS[shape]] });
        }
        console.error(`bench: ${def.name} prewarmed (${PREWARM} s per shape)`);
      }
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const { def, proxy, headers } of running) {
        for (const shape of SHAPES) {
          for (const connections of CONNECTIONS) {
            const m = await measure(proxy, def.name, shape, connections, backends, headers);
            console.error(
              `bench: round ${round} ${def.name} ${shape} -c${connections}: ${m.rps.toFixed(0)} req/s, p99 ${m.p99Ms} ms, ` +
                `${m.cpuSecondsPer100k.toFixed(2)} CPU s/100k, ${m.rssMaxMiB.toFixed(1)} MiB, ${m.errors} errors`,
            );
            rounds.push(m);
          }
        }
      }
    }
    for (const { def, proxy } of running) {
      if (proxy.checks) checkRates[def.name] = await checkRate(proxy.checks);
    }
  } finally {
    await stopAll([...running.map((r) => r.proxy), ...backends]);
  }
  const results = aggregateRounds(rounds);
  const loadAfter = os.loadavg();

  const settings = { rounds: ROUNDS, durationSeconds: DURATION, warmupSeconds: WARMUP, connections: CONNECTIONS, threads: THREADS, shapes: SHAPES };
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '?', kernel: os.release(), bun: process.versions.bun };
  const tsbalName = results.some((r) => r.proxy === 'tsbal') ? 'tsbal' : 'tsbal-bin';
  const checks = checkTargets(results.filter((r) => r.shape === 'keep-alive'), tsbalName);
  const connCost = connCostTargets(results);
  const report = [
    `## bench/proxy ${new Date().toISOString()}`,
    '',
    `Median of ${ROUNDS} interleaved rounds of wrk -t${THREADS} -d${DURATION}s (each after a ${WARMUP}s warm-up${PREWARM > 0 ? `; every proxy first ran ${PREWARM}s of each shape, unmeasured` : ''}); ` +
      `shapes ${SHAPES.join(', ')} (close: wrk -H 'Connection: close', a new connection per request); ` +
      'two nginx backends; tutorial options for tsbal and Perlbal; ' +
      `${machine.cpus} CPUs (${machine.model}).`,
    '',
    markdownTables(results),
    markdownTargets(checks, tsbalName),
    markdownConnCost(connCost),
    markdownAffinity(rounds),
    ...Object.entries(checkRates).map(
      ([name, rate]) => `- ${name}: its 98 check-only backends got ${rate.toFixed(1)} checks/s over the run (98/s expected at 1 s).`,
    ),
    '',
    `Load average (1/5/15 min) before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}.`,
    '',
    ...skipped.map((s) => `- ${s}`),
  ].join('\n');
  console.log(report);
  const dir = `${REPO_ROOT}bench/results`;
  fs.mkdirSync(dir, { recursive: true });
  const file = `${dir}/proxy-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  fs.writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, settings, results, targets: checks, connCost, checkRates, skipped, rounds }, null, 2)}\n`);
  console.error(`bench: results written to ${file}`);
}

await main();
