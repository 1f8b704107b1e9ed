// bench/anycast: requests per second through three anycast nodes against one, in the anycast lab of test/harness
// (router with FRR and ECMP, three LBs with FRR and `tsbal run --supervise`, two backends, wrk in the client
// namespace behind the router). "One node" is the same lab with lb2 and lb3 drained (`tsbal anycast drain`), so the
// only difference is the number of nexthops.
//
//   npx bun bench/anycast/run.ts [--seconds 10] [--connections 30] [--rounds 2] [--engine dist|source]
//
// On this 2-core machine the nodes, the router, the backends and wrk share the same cores: three nodes cannot show
// scaling here (they compete for the cores the single node had). What the run does show is what the routing costs
// (the ratio of req/s) and the CPU each node spends per request (utime+stime of its engine from /proc/PID/stat,
// divided by the requests it sent to backends), which is what scales on real hosts.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AC_ADDR, AC_LBS, AC_VIP, createAnycastLab, type AcLb, type AnycastLab } from '../../test/harness/anycastlab.ts';
import { createAnycastNode, startWhoBackends, type AnycastNode } from '../../test/harness/anycastnode.ts';
import { CLI_ENTRY } from '../../test/harness/cli.ts';
import { NODE22 } from '../../test/harness/dist.ts';
import { sleep, waitFor, type ProcHandle } from '../../test/harness/proc.ts';
import { DIST_BUNDLE } from '../../test/harness/tsbal.ts';
import { parseWrk } from '../../test/harness/wrk.ts';
import { RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '30' },
    rounds: { type: 'string', default: '2' },
    engine: { type: 'string', default: 'dist' },
  },
});
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const ROUNDS = Number(values.rounds);
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const CLK_TCK = 100;

async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th fields.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

async function requestsOf(node: AnycastNode): Promise<number> {
  const r = await node.cli(['status', '--json']);
  const s = JSON.parse(r.stdout) as { services: Array<{ backends: Array<{ requests: number }> }> };
  return s.services.reduce((n, svc) => n + svc.backends.reduce((m, b) => m + b.requests, 0), 0);
}

interface NodeFigures { lb: AcLb; requests: number; cpuMs: number; usPerRequest: number | null; usPerRequestNetOfIdle: number | null }
interface Round { nodes: 1 | 3; rps: number; requests: number; errors: number; p99Ms: number; perNode: NodeFigures[]; load: number[] }

async function measure(lab: AnycastLab, nodes: Record<AcLb, AnycastNode>, pids: Record<AcLb, number>, count: 1 | 3, idleMsPerS: number[]): Promise<Round> {
  const before = await Promise.all(AC_LBS.map(async (lb) => ({ lb, cpu: await cpuMs(pids[lb]), req: await requestsOf(nodes[lb]) })));
  const r = await lab.exec('client', ['wrk', '--latency', '-t2', `-c${CONNECTIONS}`, `-d${SECONDS}s`, `http://${AC_VIP}/`], { timeoutMs: (SECONDS + 20) * 1000 });
  const wrk = parseWrk(r.stdout);
  const after = await Promise.all(AC_LBS.map(async (lb) => ({ lb, cpu: await cpuMs(pids[lb]), req: await requestsOf(nodes[lb]) })));
  const perNode = AC_LBS.map((lb, i) => {
    const requests = after[i]!.req - before[i]!.req;
    const cpu = after[i]!.cpu - before[i]!.cpu;
    const net = cpu - idleMsPerS[i]! * wrk.seconds;
    return { lb, requests, cpuMs: cpu, usPerRequest: requests > 0 ? Math.round((cpu * 1000) / requests) : null, usPerRequestNetOfIdle: requests > 0 ? Math.round((net * 1000) / requests) : null };
  });
  const e = wrk.errors;
  return { nodes: count, rps: Math.round(wrk.requestsPerSecond), requests: wrk.requests, errors: e.connect + e.read + e.write + e.timeout + e.non2xx3xx, p99Ms: wrk.latencyMs.p99, perNode, load: loadavg().map((x) => Math.round(x * 10) / 10) };
}

async function main(): Promise<void> {
  const engine = values.engine === 'source' || !existsSync(DIST_BUNDLE) ? [process.execPath, CLI_ENTRY] : [NODE22, ...RUN_V8_FLAGS, DIST_BUNDLE];
  const lab = await createAnycastLab();
  const baseDir = await mkdtemp(join(tmpdir(), 'tsbal-anycast-bench-'));
  let backends: ProcHandle[] = [];
  try {
    const frr = lab.startFrr(30_000);
    backends = await startWhoBackends(lab);
    const nodes = {} as Record<AcLb, AnycastNode>;
    for (const lb of AC_LBS) nodes[lb] = await createAnycastNode(lab, baseDir, lb, engine);
    await Promise.all(AC_LBS.map((lb) => nodes[lb].start()));
    await frr;
    const hops = async (want: string[]) =>
      waitFor(`nexthops ${want.join(',')}`, async () => ((await lab.nexthops()).join() === [...want].sort().join() ? true : undefined), { timeoutMs: 20_000, intervalMs: 100 });
    await hops(AC_LBS.map((lb) => AC_ADDR[lb]));
    const pids = {} as Record<AcLb, number>;
    for (const lb of AC_LBS) pids[lb] = await nodes[lb].enginePid();
    // Idle cost (health checks every 250 ms, the anycast decision every 25 ms), to subtract from the per-request CPU.
    const idleBefore = await Promise.all(AC_LBS.map((lb) => cpuMs(pids[lb])));
    await sleep(5_000);
    const idleMsPerS = await Promise.all(AC_LBS.map(async (lb, i) => Math.round(((await cpuMs(pids[lb])) - idleBefore[i]!) / 5)));
    const rounds: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      rounds.push(await measure(lab, nodes, pids, 3, idleMsPerS));
      for (const lb of ['lb2', 'lb3'] as const) await nodes[lb].cli(['anycast', 'drain']);
      await hops([AC_ADDR.lb1]);
      await sleep(500);
      rounds.push(await measure(lab, nodes, pids, 1, idleMsPerS));
      for (const lb of ['lb2', 'lb3'] as const) await nodes[lb].cli(['anycast', 'resume']);
      await hops(AC_LBS.map((lb) => AC_ADDR[lb]));
      await sleep(500);
    }
    const lines = [
      `anycast bench: wrk -t2 -c${CONNECTIONS} -d${SECONDS}s from the client namespace, engine ${engine.includes(DIST_BUNDLE) ? 'Node 22 + dist/tsbal.cjs' : 'Bun + source'}, 2 cores shared by everything`,
      '',
      '| nodes | req/s | p99 ms | errors | requests per node (lb1/lb2/lb3) | engine CPU µs per request (lb1/lb2/lb3) | same, minus idle CPU | load avg |',
      '|---|---|---|---|---|---|---|---|',
      ...rounds.map((r) => `| ${r.nodes} | ${r.rps} | ${r.p99Ms.toFixed(1)} | ${r.errors} | ${r.perNode.map((n) => n.requests).join(' / ')} | ${r.perNode.map((n) => n.usPerRequest ?? '-').join(' / ')} | ${r.perNode.map((n) => n.usPerRequestNetOfIdle ?? '-').join(' / ')} | ${r.load.join(' ')} |`),
    ];
    const three = rounds.filter((r) => r.nodes === 3);
    const one = rounds.filter((r) => r.nodes === 1);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    lines.push('', `idle engine CPU (no requests), ms per s: ${idleMsPerS.join(' / ')}`);
    lines.push('', `ratio 3 nodes / 1 node: ${(mean(three.map((r) => r.rps)) / mean(one.map((r) => r.rps))).toFixed(2)} (cannot show scaling on 2 shared cores)`);
    console.log(lines.join('\n'));
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(join(RESULTS_DIR, 'anycast-sample.json'), `${JSON.stringify({ at: new Date().toISOString(), seconds: SECONDS, connections: CONNECTIONS, idleMsPerS, rounds }, null, 2)}\n`);
  } finally {
    for (const b of backends) b.kill('SIGKILL');
    await lab.teardown();
    await rm(baseDir, { recursive: true, force: true });
  }
}

await main();
