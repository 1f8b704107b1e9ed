// bench/tls: TLS termination, tsbal beside HAProxy (nbthread 1) in the same run, in front of the same nginx backend
// (plain HTTP, keep-alive). Same certificate for all (ECDSA P-256, then RSA 2048), made by openssl. Per certificate
// kind, three loads:
//   full      every request a new connection with a full handshake (ab: it never offers a session), the
//             certificate's signature and the key exchange each time;
//   resumed   every request a new connection (wrk with `Connection: close`), which offers the ticket the previous
//             connection brought: an abbreviated handshake when the server renews tickets;
//   keepalive keep-alive HTTPS requests (wrk).
// Each with the proxy's CPU seconds per 1000 requests (/proc, the proxy's process group). tsbal runs as the Node
// program (the bundle under --node, as the SEA binary ships it, or the SEA binary itself with --sea) and as the Bun
// binary (dist/tsbal-bun, `npm run build:bun`) when it exists. Beside them the runtimes' floors, floor.cjs (a bare
// node:tls responder, no proxying, same certificate): floor-node under Node 22, floor-bun under Bun (unless --no-bun),
// so a run shows how far tsbal is from what its runtime costs at all. Rounds interleave the proxies; the table shows
// medians.
//
//   npx bun bench/tls/run.ts [--rounds 3] [--duration 5] [--connections 32] [--threads 2] [--no-build]
//                            [--node PATH | --sea dist/tsbal] [--bun dist/tsbal-bun | --no-bun] [--modes full,resumed,keepalive]
//                            [--extra NAME=COMMAND ...] [--no-floor] [--warmup 1] [--prewarm 0]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makePki } from '../../test/harness/certs.ts';
import { startNginxBackend } from '../../test/harness/nginx.ts';
import { type Daemon, stopAll } from '../../test/harness/procs.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { DIST_BUNDLE } from '../../test/harness/tsbal.ts';
import { LOOPBACK } from '../../test/harness/ports.ts';
import { runWrk, totalErrors } from '../../test/harness/wrk.ts';
import { RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';
import { runAb } from './ab.ts';
import { type FloorRuntime, type Proxy, startHaproxyTls, startTlsFloor, startTsbalTls, type TsbalForm } from './proxies.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    'no-build': { type: 'boolean', default: false },
    /** The Node that runs dist/tsbal.cjs (the shipped SEA binary is Node 22: node_modules/.bin/node). */
    node: { type: 'string', default: path.join(REPO_ROOT, 'node_modules/.bin/node') },
    /** Run this SEA binary (dist/tsbal) instead of --node with the bundle. */
    sea: { type: 'string' },
    bun: { type: 'string', default: path.join(REPO_ROOT, 'dist/tsbal-bun') },
    'no-bun': { type: 'boolean', default: false },
    modes: { type: 'string', default: 'full,resumed,keepalive' },
    /** More tsbal builds to compare in the same rounds, NAME=COMMAND (e.g. a wrapper running an older bundle). */
    extra: { type: 'string', multiple: true, default: [] },
    'no-floor': { type: 'boolean', default: false },
    /** Seconds of load before each measured run. */
    warmup: { type: 'string', default: '1' },
    /** Seconds of load per proxy and mode before round 1, unmeasured: JIT runtimes measured warm, as a server runs. */
    prewarm: { type: 'string', default: '0' },
  },
});
const ROUNDS = Number(args.rounds);
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const THREADS = Number(args.threads);
const WARMUP = Number(args.warmup);
const PREWARM = Number(args.prewarm);
const MODES = args.modes.split(',') as Mode[];
type Mode = 'full' | 'resumed' | 'keepalive';
const MODE_LABEL: Record<Mode, string> = {
  full: 'full handshake per request (ab)',
  resumed: 'new connection per request, ticket offered (wrk)',
  keepalive: 'keep-alive HTTPS (wrk)',
};

function tsbalForms(): TsbalForm[] {
  const forms: TsbalForm[] = [];
  if (args.sea !== undefined) {
    const sea = path.resolve(args.sea);
    forms.push({ name: 'tsbal-node', command: sea, args: [], describe: `${sea} (Node SEA)` });
  } else {
    // Absolute: the daemon runs in its own directory.
    const node = path.resolve(args.node);
    const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
    forms.push({ name: 'tsbal-node', command: node, args: [...RUN_V8_FLAGS, DIST_BUNDLE], describe: `Node ${version} running ${DIST_BUNDLE}` });
  }
  if (!args['no-bun'] && fs.existsSync(args.bun)) {
    const bun = path.resolve(args.bun);
    forms.push({ name: 'tsbal-bun', command: bun, args: [], describe: `${bun} (Bun binary)` });
  }
  for (const e of args.extra) {
    const eq = e.indexOf('=');
    if (eq <= 0) throw new Error(`--extra ${e}: NAME=COMMAND expected`);
    forms.push({ name: e.slice(0, eq), command: path.resolve(e.slice(eq + 1)), args: [], describe: e.slice(eq + 1) });
  }
  return forms;
}

interface Row { proxy: string; cert: string; mode: Mode; rps: number; cpuPer1k: number; errors: number }

async function load(url: string, mode: Mode, seconds: number): Promise<{ requests: number; rps: number; errors: number }> {
  if (mode === 'full') {
    // Two ab processes: one (single-threaded, doing full client handshakes) is slower than the proxies.
    const half = Math.max(1, Math.floor(CONNECTIONS / 2));
    const rs = await Promise.all([runAb(url, half, seconds), runAb(url, half, seconds)]);
    return { requests: rs[0]!.requests + rs[1]!.requests, rps: rs[0]!.requestsPerSecond + rs[1]!.requestsPerSecond, errors: rs[0]!.errors + rs[1]!.errors };
  }
  const headers = mode === 'resumed' ? ['Connection: close'] : [];
  const r = await runWrk({ url, threads: THREADS, connections: CONNECTIONS, durationSeconds: seconds, headers });
  return { requests: r.requests, rps: r.requestsPerSecond, errors: totalErrors(r) };
}

async function measure(p: Proxy, name: string, cert: string, mode: Mode): Promise<Row> {
  const url = `https://${LOOPBACK}:${p.port}/`;
  await load(url, mode, WARMUP);
  const cpu0 = p.usage().cpuSeconds;
  const r = await load(url, mode, DURATION);
  const cpu = p.usage().cpuSeconds - cpu0;
  return { proxy: name, cert, mode, rps: r.rps, cpuPer1k: (cpu / Math.max(1, r.requests)) * 1000, errors: r.errors };
}

/** The middle value; of an even count, the mean of the two middle ones (with 2 rounds, not the larger one). */
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function main(): Promise<void> {
  if (!args['no-build']) {
    const b = spawnSync(`${REPO_ROOT}node_modules/.bin/node`, [`${REPO_ROOT}build/bundle.ts`], { stdio: 'inherit', cwd: REPO_ROOT });
    if (b.status !== 0) throw new Error('bundle build failed');
  }
  const forms = tsbalForms();
  const floors: FloorRuntime[] = args['no-floor'] ? [] : args['no-bun'] ? ['floor-node'] : ['floor-node', 'floor-bun'];
  const pki = makePki();
  const ec = pki.issue('ec', ['127.0.0.1']);
  const rsa = pki.issue('rsa', ['127.0.0.1'], { key: 'rsa' });
  const pems = { ec: path.join(pki.dir, 'ec.pem'), rsa: path.join(pki.dir, 'rsa.pem') };
  for (const [k, leaf] of [['ec', ec], ['rsa', rsa]] as const) fs.writeFileSync(pems[k], fs.readFileSync(leaf.crt, 'latin1') + fs.readFileSync(leaf.key, 'latin1'), { mode: 0o600 });
  const backend = await startNginxBackend({ name: 'tls-bench' });
  const daemons: Daemon[] = [backend];
  const rows: Row[] = [];
  const loads: string[] = [];
  try {
    for (const [cert, leaf] of [['ECDSA P-256', ec], ['RSA 2048', rsa]] as const) {
      const haproxy = await startHaproxyTls(backend.port, cert === 'RSA 2048' ? pems.rsa : pems.ec);
      const proxies: Array<[string, Proxy]> = [['haproxy', haproxy]];
      for (const floor of floors) proxies.push([floor, await startTlsFloor(floor, leaf.crt, leaf.key, path.resolve(args.node), RUN_V8_FLAGS)]);
      for (const form of forms) proxies.push([form.name, await startTsbalTls(form, backend.port, leaf.crt, leaf.key)]);
      daemons.push(...proxies.map(([, p]) => p));
      if (PREWARM > 0) {
        for (const [, p] of proxies) for (const mode of MODES) await load(`https://${LOOPBACK}:${p.port}/`, mode, PREWARM);
      }
      for (let round = 0; round < ROUNDS; round++) {
        for (const mode of MODES) {
          for (const [name, p] of proxies) rows.push(await measure(p, name, cert, mode));
        }
        loads.push(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!);
      }
      await stopAll(proxies.map(([, p]) => p));
    }
  } finally {
    await stopAll(daemons);
    pki.cleanup();
  }
  const names = [...floors, ...forms.map((f) => f.name)];
  // Each tsbal row against its runtime's floor (Bun builds against floor-bun), when that floor ran.
  const floorOf = (name: string): FloorRuntime => (/bun/.test(name) ? 'floor-bun' : 'floor-node');
  const againstFloor = forms.map((f) => f.name).filter((n) => floors.includes(floorOf(n)));
  const out: string[] = [
    `tsbal: ${forms.map((f) => `${f.name} = ${f.describe}`).join('; ')}. HAProxy nbthread 1. ${CONNECTIONS} connections (wrk -t${THREADS}; ab: 2 processes of ${Math.floor(CONNECTIONS / 2)}), ${ROUNDS} rounds of ${DURATION} s after ${WARMUP} s of warm-up each${PREWARM > 0 ? `, every proxy first loaded ${PREWARM} s per mode unmeasured` : ''}, medians. 1-min load average after each round: ${loads.join(', ')}.`,
    '',
    `| certificate | load | haproxy req/s | ${names.map((n) => `${n} req/s | ${n}/haproxy req/s`).join(' | ')} | haproxy CPU ms/req | ${names.map((n) => `${n} CPU ms/req | haproxy/${n} CPU`).join(' | ')} | ${againstFloor.map((n) => `${floorOf(n)}/${n} CPU`).join(' | ')}${againstFloor.length > 0 ? ' | ' : ''}errors (${['haproxy', ...names].join('/')}) |`,
    `|${'---|'.repeat(3 + names.length * 4 + 2 + againstFloor.length)}`,
  ];
  for (const cert of ['ECDSA P-256', 'RSA 2048']) {
    for (const mode of MODES) {
      const pick = (name: string): Row[] => rows.filter((r) => r.cert === cert && r.mode === mode && r.proxy === name);
      const rps = (name: string): number => median(pick(name).map((r) => r.rps));
      const cpu = (name: string): number => median(pick(name).map((r) => r.cpuPer1k));
      const errs = ['haproxy', ...names].map((n) => pick(n).reduce((s, r) => s + r.errors, 0)).join('/');
      out.push(`| ${cert} | ${MODE_LABEL[mode]} | ${rps('haproxy').toFixed(0)} | ${names.map((n) => `${rps(n).toFixed(0)} | ${(rps(n) / rps('haproxy')).toFixed(2)}`).join(' | ')} | ${cpu('haproxy').toFixed(3)} | ${names.map((n) => `${cpu(n).toFixed(3)} | ${(cpu('haproxy') / cpu(n)).toFixed(2)}`).join(' | ')} | ${againstFloor.map((n) => `${(cpu(floorOf(n)) / cpu(n)).toFixed(2)} | `).join('')}${errs} |`);
    }
  }
  out.push('', 'CPU ms/req is CPU seconds per 1000 requests; haproxy/X CPU is the speed ratio by CPU cost (0.8 = X spends 1.25x HAProxy\'s CPU per request); floor/X CPU the same against the runtime\'s bare TLS responder (1.0 = tsbal costs no more than its runtime answering by itself).');
  console.log(out.join('\n'));
}

await main();
