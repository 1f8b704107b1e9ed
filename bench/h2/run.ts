// bench/h2: HTTP/2 requests per second with h2load (Debian's nghttp2-client), tsbal beside HAProxy (nbthread 1,
// `alpn h2,http/1.1`) in the same run, in front of the same nginx backend (plain HTTP/1.1, keep-alive), with the same
// ECDSA P-256 certificate. tsbal runs as shipped under Node 22 (dist bundle, its V8 flags) and as the Bun binary
// (dist/tsbal-bun). Each round: a warm-up, then a fixed number of requests, many streams per connection; the proxy's
// CPU seconds per 100k requests come from /proc (its process group), which stays meaningful on a loaded machine where
// req/s does not. Rounds interleave the proxies; the table shows medians.
//
//   npx bun bench/h2/run.ts [--rounds 3] [--requests 30000] [--clients 8] [--streams 10] [--no-build] [--no-bun] [--floor] [--h1]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makePki } from '../../test/harness/certs.ts';
import { startNginxBackend } from '../../test/harness/nginx.ts';
import { type Daemon, makeTempDir, startDaemon, startWithFreshPorts, stopAll } from '../../test/harness/procs.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { DIST_BUNDLE } from '../../test/harness/tsbal.ts';
import { LOOPBACK } from '../../test/harness/ports.ts';
import { RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';
import { startHaproxyTls, startTsbalTls } from '../tls/proxies.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '30000' },
    clients: { type: 'string', default: '8' },
    streams: { type: 'string', default: '10' },
    'no-build': { type: 'boolean', default: false },
    'no-bun': { type: 'boolean', default: false },
    /** Also measure bench/h2/floor.mjs: node:http2 answering on the spot, no backend (what node:http2 costs alone). */
    floor: { type: 'boolean', default: false },
    /** h2load --h1 instead: HTTP/1.1 keep-alive over TLS to the same proxies (-m 1, no pipelining), to tell what
     * HTTP/2 adds to tsbal's request path from what the path costs anyway. */
    h1: { type: 'boolean', default: false },
    node: { type: 'string', default: `${REPO_ROOT}node_modules/.bin/node` },
  },
});
const ROUNDS = Number(args.rounds);
const REQUESTS = Number(args.requests);
const CLIENTS = Number(args.clients);
const STREAMS = Number(args.streams);
const BUN_BINARY = `${REPO_ROOT}dist/tsbal-bun`;

type Proxy = Daemon & { port: number };

/** tsbal (one worker, as HAProxy runs one thread) with HTTP/2 on by default on its TLS listener. */
function startTsbalH2(name: string, argv: string[], backend: number, crt: string, key: string): Promise<Proxy> {
  return startTsbalTls({ name, command: argv[0]!, args: argv.slice(1), describe: name }, backend, crt, key);
}

function startFloor(crt: string, key: string): Promise<Proxy> {
  return startWithFreshPorts(1, async ([port]) => {
    const dir = makeTempDir('bench-h2-floor');
    const d = await startDaemon({ name: 'h2-floor', command: args.node, args: [path.join(REPO_ROOT, 'bench/h2/floor.mjs'), String(port), crt, key], dir, ports: [port!] });
    return { ...d, port: port! };
  });
}

interface H2load { rps: number; succeeded: number; failed: number }

function h2load(port: number, requests: number): H2load {
  const mode = args.h1 ? ['--h1', '-m', '1'] : ['-m', String(STREAMS)];
  const r = spawnSync('h2load', ['-n', String(requests), '-c', String(CLIENTS), ...mode, '-t', '1', `https://${LOOPBACK}:${port}/`], { encoding: 'utf8', timeout: 300_000 });
  const rps = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(r.stdout);
  const req = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(r.stdout);
  const proto = /Application protocol: (\S+)/.exec(r.stdout)?.[1];
  if (rps === null || req === null) throw new Error(`h2load output not understood:\n${r.stdout}\n${r.stderr}`);
  const want = args.h1 ? 'http/1.1' : 'h2';
  if (proto !== want) throw new Error(`h2load negotiated ${proto ?? 'nothing'}, not ${want}:\n${r.stdout}`);
  return { rps: Number(rps[1]), succeeded: Number(req[1]), failed: Number(req[2]) + Number(req[3]) };
}

interface Row { proxy: string; rps: number; cpuPer100k: number; failed: number }

function measure(p: Proxy, name: string): Row {
  h2load(p.port, Math.max(1000, REQUESTS / 10));
  const cpu0 = p.usage().cpuSeconds;
  const r = h2load(p.port, REQUESTS);
  const cpu = p.usage().cpuSeconds - cpu0;
  return { proxy: name, rps: r.rps, cpuPer100k: (cpu / Math.max(1, r.succeeded)) * 100_000, failed: r.failed + (REQUESTS - r.succeeded - r.failed) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (!args['no-build']) {
    const b = spawnSync(`${REPO_ROOT}node_modules/.bin/node`, [`${REPO_ROOT}build/build-bun.ts`], { stdio: 'inherit', cwd: REPO_ROOT });
    if (b.status !== 0) throw new Error('build failed');
  }
  const pki = makePki();
  const ec = pki.issue('ec', ['127.0.0.1']);
  const pem = path.join(pki.dir, 'ec.pem');
  fs.writeFileSync(pem, fs.readFileSync(ec.crt, 'latin1') + fs.readFileSync(ec.key, 'latin1'), { mode: 0o600 });
  const backend = await startNginxBackend({ name: 'h2-bench' });
  const daemons: Daemon[] = [backend];
  const rows: Row[] = [];
  const load0 = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  try {
    const proxies: Array<[string, Proxy]> = [['haproxy', await startHaproxyTls(backend.port, pem, [], undefined, 'h2,http/1.1')]];
    proxies.push(['tsbal (Node)', await startTsbalH2('tsbal-node', [args.node, ...RUN_V8_FLAGS, DIST_BUNDLE], backend.port, ec.crt, ec.key)]);
    if (!args['no-bun']) proxies.push(['tsbal (Bun)', await startTsbalH2('tsbal-bun', [BUN_BINARY], backend.port, ec.crt, ec.key)]);
    if (args.floor) proxies.push(['node:http2 alone (no backend)', await startFloor(ec.crt, ec.key)]);
    daemons.push(...proxies.map(([, p]) => p));
    for (let round = 0; round < ROUNDS; round++) for (const [name, p] of proxies) rows.push(measure(p, name));
  } finally {
    await stopAll(daemons);
    pki.cleanup();
  }
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const hr = median(rows.filter((r) => r.proxy === 'haproxy').map((r) => r.rps));
  const hc = median(rows.filter((r) => r.proxy === 'haproxy').map((r) => r.cpuPer100k));
  const out = [
    `h2load -n ${REQUESTS} -c ${CLIENTS} ${args.h1 ? '--h1 -m 1' : `-m ${STREAMS}`} -t 1, ${ROUNDS} rounds, medians; tsbal under ${args.node} and ${BUN_BINARY}; load average ${load0} at the start, ${load} at the end`,
    '',
    '| proxy | req/s | ratio to haproxy | CPU s per 100k req | CPU ratio | failed |',
    '|---|---|---|---|---|---|',
  ];
  for (const name of [...new Set(rows.map((r) => r.proxy))]) {
    const mine = rows.filter((r) => r.proxy === name);
    const rps = median(mine.map((r) => r.rps));
    const cpu = median(mine.map((r) => r.cpuPer100k));
    out.push(`| ${name} | ${rps.toFixed(0)} | ${(rps / hr).toFixed(2)} | ${cpu.toFixed(2)} | ${(cpu / hc).toFixed(2)} | ${mine.reduce((s, r) => s + r.failed, 0)} |`);
  }
  console.log(out.join('\n'));
}

await main();
