// bench/proxy/workers.ts: tsbal with `SERVER workers = 1` and `= 2` against HAProxy `nbthread 1` and `nbthread 2`,
// in the same run, in front of the same two nginx backends (issue 11, "All cores" and "Bursts"). Scenarios:
//   keep-alive    wrk -t2 -c64, kept-alive connections (the workers target: req/s >= 0.85x HAProxy-2t)
//   burst         wrk -t1 -c1000, kept-alive: 1,000 connections opened at once, then reused
//   burst-close   wrk -t1 -c1000 with `Connection: close`: 1,000 new connections at a time, all the time
// Rounds interleave the proxies; the table shows medians. CPU is utime+stime from /proc per process of the proxy's
// process group, so tsbal's owner and each worker are told apart (CPU s per 100k requests, per process).
//
//   npx bun bench/proxy/workers.ts [--rounds 3] [--duration 5] [--tsbal dist/tsbal] [--only keep-alive,burst]
//
// tsbal runs as the SEA binary dist/tsbal (Node 22, which has SO_REUSEPORT), or with --tsbal a given executable;
// `--tsbal node` runs dist/tsbal.cjs under node_modules' Node 22. The load generator and the backends share the
// machine's cores with the proxy: on 2 cores, 2 workers compete with wrk and nginx (say so when quoting figures).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startHaproxy } from '../../test/harness/haproxy.ts';
import { type Nginx, startNginxBackend } from '../../test/harness/nginx.ts';
import { reverseProxyConf } from '../../test/harness/perlbalconf.ts';
import { TUTORIAL_OPTIONS } from '../../test/harness/perlbalconf.ts';
import { type Daemon, groupProcs, stopAll } from '../../test/harness/procs.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { startTsbalWithConf, type TsbalBuild } from '../../test/harness/tsbal.ts';
import { runWrk, type WrkResult } from '../../test/harness/wrk.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    tsbal: { type: 'string' },
    only: { type: 'string' },
  },
});
const ROUNDS = Number(args.rounds);
const DURATION = Number(args.duration);

interface Scenario {
  name: string;
  threads: number;
  connections: number;
  headers: string[];
}
const SCENARIOS: Scenario[] = [
  { name: 'keep-alive', threads: 2, connections: 64, headers: [] },
  { name: 'burst', threads: 1, connections: 1000, headers: [] },
  { name: 'burst-close', threads: 1, connections: 1000, headers: ['Connection: close'] },
].filter((s) => args.only === undefined || args.only.split(',').includes(s.name));

function tsbalBuild(): TsbalBuild {
  if (args.tsbal === 'node') return { kind: 'dist', node: path.join(REPO_ROOT, 'node_modules/.bin/node') };
  const bin = path.resolve(args.tsbal ?? path.join(REPO_ROOT, 'dist/tsbal'));
  if (!fs.existsSync(bin)) throw new Error(`${bin} does not exist (npm run build, or --tsbal <executable> / --tsbal node)`);
  return { kind: 'binary', path: bin };
}

type Proxy = Daemon & { port: number };
interface ProxyDef {
  name: string;
  start(backends: number[]): Promise<Proxy>;
}

function tsbalDef(workers: number, build: TsbalBuild): ProxyDef {
  return {
    name: `tsbal-w${workers}`,
    start: (backends) =>
      startTsbalWithConf(2, (ports) => ({ text: `SERVER workers = ${workers}\n${reverseProxyConf({ backends, set: TUTORIAL_OPTIONS }, { listen: ports[0]!, mgmt: null })}`, ready: [ports[0]!] }), build),
  };
}

interface Row {
  proxy: string;
  scenario: string;
  rps: number;
  p99Ms: number;
  timeouts: number;
  errors: number;
  cpuPer100k: number;
  /** CPU s per 100k requests of each process of the group, busiest first. */
  perProcess: number[];
}

async function measure(proxy: Proxy, name: string, sc: Scenario): Promise<Row> {
  const url = `http://127.0.0.1:${proxy.port}/`;
  await runWrk({ url, threads: sc.threads, connections: sc.connections, durationSeconds: 1, headers: sc.headers });
  const before = new Map(groupProcs(proxy.pid).map((p) => [p.pid, p.cpuSeconds]));
  const r: WrkResult = await runWrk({ url, threads: sc.threads, connections: sc.connections, durationSeconds: DURATION, headers: sc.headers });
  const after = groupProcs(proxy.pid);
  const per = after.map((p) => ((p.cpuSeconds - (before.get(p.pid) ?? 0)) / r.requests) * 100_000).sort((a, b) => b - a);
  const e = r.errors;
  return {
    proxy: name,
    scenario: sc.name,
    rps: r.requestsPerSecond,
    p99Ms: r.latencyMs.p99,
    timeouts: e.timeout,
    errors: e.connect + e.read + e.write + e.non2xx3xx,
    cpuPer100k: per.reduce((a, b) => a + b, 0),
    perProcess: per,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const build = tsbalBuild();
  const defs: ProxyDef[] = [
    { name: 'haproxy-1t', start: (b) => startHaproxy(b) },
    { name: 'haproxy-2t', start: (b) => startHaproxy(b, { nbthread: 2 }) },
    tsbalDef(1, build),
    tsbalDef(2, build),
  ];
  const backends: Nginx[] = await Promise.all([startNginxBackend({ name: 'b1' }), startNginxBackend({ name: 'b2' })]);
  const running: Array<{ name: string; proxy: Proxy }> = [];
  const rows: Row[] = [];
  const loadBefore = os.loadavg();
  try {
    for (const d of defs) running.push({ name: d.name, proxy: await d.start(backends.map((b) => b.port)) });
    for (let round = 1; round <= ROUNDS; round++) {
      for (const sc of SCENARIOS) {
        for (const { name, proxy } of running) {
          const row = await measure(proxy, name, sc);
          rows.push(row);
          console.error(
            `bench: round ${round} ${sc.name} ${name}: ${row.rps.toFixed(0)} req/s, p99 ${row.p99Ms} ms, ${row.timeouts} timeouts, ${row.errors} errors, ` +
              `${row.cpuPer100k.toFixed(2)} CPU s/100k (${row.perProcess.map((x) => x.toFixed(2)).join(' + ')})`,
          );
        }
      }
    }
  } finally {
    await stopAll([...running.map((r) => r.proxy), ...backends]);
  }
  const loadAfter = os.loadavg();
  const out: string[] = [];
  out.push(`Load average before ${loadBefore.map((x) => x.toFixed(1)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(1)).join(' ')}; ${os.cpus().length} CPUs; ${ROUNDS} rounds of ${DURATION} s; tsbal: ${build.kind === 'binary' ? build.path : build.kind === 'dist' ? `${build.node} dist/tsbal.cjs` : 'source'}`);
  for (const sc of SCENARIOS) {
    out.push('', `### ${sc.name}: wrk -t${sc.threads} -c${sc.connections}${sc.headers.map((h) => ` -H '${h}'`).join('')}`, '');
    out.push('| proxy | req/s | × HAProxy-2t | p99 ms | × HAProxy p99 (same threads) | timeouts | other errors | CPU s/100k | per process (owner last) |', '|---|---:|---:|---:|---:|---:|---:|---:|---|');
    const of = (p: string) => rows.filter((r) => r.proxy === p && r.scenario === sc.name);
    const ha2 = median(of('haproxy-2t').map((r) => r.rps));
    for (const { name } of running) {
      const rs = of(name);
      const rps = median(rs.map((r) => r.rps));
      const p99 = median(rs.map((r) => r.p99Ms));
      const peer = name === 'tsbal-w2' ? 'haproxy-2t' : name === 'tsbal-w1' ? 'haproxy-1t' : name;
      const peerP99 = median(of(peer).map((r) => r.p99Ms));
      const procs = rs[0]?.perProcess.length ?? 0;
      const perProcess = Array.from({ length: procs }, (_, i) => median(rs.map((r) => r.perProcess[i] ?? 0)).toFixed(2)).join(' / ');
      out.push(
        `| ${name} | ${rps.toFixed(0)} | ${(rps / ha2).toFixed(2)} | ${p99.toFixed(1)} | ${(p99 / peerP99).toFixed(2)} | ${rs.map((r) => r.timeouts).join(',')} | ` +
          `${rs.map((r) => r.errors).join(',')} | ${median(rs.map((r) => r.cpuPer100k)).toFixed(2)} | ${perProcess} |`,
      );
    }
  }
  console.log(out.join('\n'));
  fs.mkdirSync(path.join(REPO_ROOT, 'bench/results'), { recursive: true });
  fs.writeFileSync(path.join(REPO_ROOT, `bench/results/workers-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ loadBefore, loadAfter, rows }, null, 2));
}

await main();
