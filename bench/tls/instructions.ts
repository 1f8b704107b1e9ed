// bench/tls/instructions: user-space instructions per request (callgrind), repeatable on a loaded machine where
// req/s is not. Each proxy runs under `valgrind --tool=callgrind`; after a warm-up the counters are zeroed
// (callgrind_control -z), the same number of requests is sent, and the counters are dumped. Loads, as in run.ts:
// full handshakes (ab), new connections that resume (h2load --h1 with `Connection: close`: it re-offers its first
// session every time, so it resumes whether or not the server renews tickets), keep-alive requests (h2load --h1),
// and plain-HTTP keep-alive on the same proxy. Kernel work (syscalls, TCP) is not counted. floor-node is Node's
// floor (floor.cjs: a bare node:tls responder under Node 22, no proxying; no plain row).
//
//   npx bun bench/tls/instructions.ts [--cert ec|rsa] [--handshakes 300] [--requests 3000] [--modes full,resumed,keepalive,plain]
//                                     [--bundle other/tsbal.cjs] [--extra NAME=BUNDLE ...] [--no-floor] [--bun dist/tsbal-bun]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makePki } from '../../test/harness/certs.ts';
import { startNginxBackend } from '../../test/harness/nginx.ts';
import { type Daemon, stopAll } from '../../test/harness/procs.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { DIST_BUNDLE } from '../../test/harness/tsbal.ts';
import { LOOPBACK } from '../../test/harness/ports.ts';
import { RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';
import { type Proxy, startHaproxyTls, startTlsFloor, startTsbalTls, type TsbalForm } from './proxies.ts';

const { values: args } = parseArgs({
  options: {
    cert: { type: 'string', default: 'ec' },
    handshakes: { type: 'string', default: '300' },
    requests: { type: 'string', default: '3000' },
    node: { type: 'string', default: path.join(REPO_ROOT, 'node_modules/.bin/node') },
    /** The bundle tsbal-node runs (another build of tsbal, for a before/after). */
    bundle: { type: 'string', default: DIST_BUNDLE },
    modes: { type: 'string', default: 'full,resumed,keepalive,plain' },
    /** Also the Bun binary (dist/tsbal-bun): it did not come up under valgrind 3.19 in 120 s, so off unless asked. */
    bun: { type: 'string' },
    /** More bundles under the same Node, NAME=path/to/tsbal.cjs (a before/after in one run). */
    extra: { type: 'string', multiple: true, default: [] },
    'no-floor': { type: 'boolean', default: false },
  },
});
const HANDSHAKES = Number(args.handshakes);
const REQUESTS = Number(args.requests);
type Mode = 'full' | 'resumed' | 'keepalive' | 'plain';
/** plain: keep-alive requests without TLS on the same proxy, so keepalive minus plain is the TLS layer's share. */
const MODES = args.modes.split(',') as Mode[];

function h2load(url: string, n: number, close: boolean): void {
  const r = spawnSync('/usr/bin/h2load', ['--h1', '-n', String(n), '-c', '4', '-t', '1', ...(close ? ['-H', 'Connection: close'] : []), url], { encoding: 'utf8', timeout: 600_000 });
  const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded/.exec(r.stdout);
  if (done === null || Number(done[2]) !== n) throw new Error(`h2load: ${n} requests expected:\n${r.stdout}${r.stderr}`);
}

async function send(url: string, mode: Mode, n: number): Promise<void> {
  if (mode === 'full') {
    // -n: a fixed count; ab stops early only on its time limit (default none with -n).
    const r = spawnSync('/usr/bin/ab', ['-q', '-r', '-s', '30', '-c', '4', '-n', String(n), url], { encoding: 'utf8', timeout: 600_000 });
    const complete = Number(/Complete requests:\s+(\d+)/.exec(r.stdout)?.[1] ?? -1);
    if (complete !== n) throw new Error(`ab: ${n} requests expected:\n${r.stdout}${r.stderr}`);
    return;
  }
  h2load(url, n, mode === 'resumed');
}

/** Total Ir of the newest dump in `dir`. */
function dumpTotal(file: string): number {
  const text = fs.readFileSync(file, 'utf8');
  const m = /^(?:totals|summary):\s+(\d+)/m.exec(text);
  if (m === null) throw new Error(`no totals in ${file}`);
  return Number(m[1]);
}

/** `main`: the main thread's share (the event loop; `-01` of --separate-threads), which repeats within a few %. */
type Counts = Partial<Record<Mode, { ir: number; perRequest: number; mainPerRequest: number }>>;

async function measure(name: string, start: (wrap: string[]) => Promise<Proxy>, dir: string, modes: readonly Mode[] = MODES): Promise<Counts> {
  const outFile = path.join(dir, `callgrind.${name}.out`);
  const p = await start(['valgrind', '--tool=callgrind', '--smc-check=all-non-file', '--quiet', '--separate-threads=yes', `--callgrind-out-file=${outFile}`]);
  const result: Counts = {};
  try {
    for (const mode of modes) {
      const url = mode === 'plain' ? `http://${LOOPBACK}:${p.plainPort}/` : `https://${LOOPBACK}:${p.port}/`;
      const n = mode === 'keepalive' || mode === 'plain' ? REQUESTS : HANDSHAKES;
      // Warm-up as long as the measurement: V8 has compiled the hot path by then.
      await send(url, mode, n);
      execFileSync('callgrind_control', ['-z', String(p.pid)], { stdio: 'ignore' });
      await send(url, mode, n);
      for (const f of fs.readdirSync(dir)) if (f.startsWith(`callgrind.${name}.out`)) fs.rmSync(path.join(dir, f));
      execFileSync('callgrind_control', ['-d', String(p.pid)], { stdio: 'ignore' });
      const dumps = fs.readdirSync(dir).filter((f) => f.startsWith(`callgrind.${name}.out`)).map((f) => path.join(dir, f));
      if (dumps.length === 0) throw new Error(`${name}: no callgrind dump`);
      // One dump per thread of the process (tsbal's workers idle): sum them. V8's compiler threads carry one-off
      // TurboFan compilations that vary by tens of thousands per request between runs; the main thread does not.
      const ir = dumps.reduce((s, f) => s + dumpTotal(f), 0);
      const main = dumps.filter((f) => /-0*1$/.test(f)).reduce((s, f) => s + dumpTotal(f), 0);
      result[mode] = { ir, perRequest: ir / n, mainPerRequest: main / n };
      console.error(`${name} ${mode}: ${(ir / n).toFixed(0)} instructions per request, ${(main / n).toFixed(0)} on the main thread`);
    }
  } finally {
    await stopAll([p]);
  }
  return result;
}

async function main(): Promise<void> {
  const pki = makePki();
  const key = args.cert === 'rsa' ? 'rsa' : 'ec';
  const leaf = pki.issue(key, ['127.0.0.1'], { key });
  const pem = path.join(pki.dir, `${key}.pem`);
  fs.writeFileSync(pem, fs.readFileSync(leaf.crt, 'latin1') + fs.readFileSync(leaf.key, 'latin1'), { mode: 0o600 });
  const dir = fs.mkdtempSync('/tmp/tsbal-tls-instr-');
  const backend = await startNginxBackend({ name: 'tls-instr' });
  const node = path.resolve(args.node);
  const forms: TsbalForm[] = [{ name: 'tsbal-node', command: node, args: [...RUN_V8_FLAGS, path.resolve(args.bundle)], describe: `Node ${spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()} + ${path.resolve(args.bundle)}` }];
  for (const e of args.extra) {
    const eq = e.indexOf('=');
    if (eq <= 0) throw new Error(`--extra ${e}: NAME=BUNDLE expected`);
    forms.push({ name: e.slice(0, eq), command: node, args: [...RUN_V8_FLAGS, path.resolve(e.slice(eq + 1))], describe: `the same Node + ${path.resolve(e.slice(eq + 1))}` });
  }
  if (args.bun !== undefined) forms.push({ name: 'tsbal-bun', command: path.resolve(args.bun), args: [], describe: 'Bun binary' });
  const daemons: Daemon[] = [backend];
  const results: Array<[string, Awaited<ReturnType<typeof measure>>]> = [];
  try {
    results.push(['haproxy', await measure('haproxy', (wrap) => startHaproxyTls(backend.port, pem, wrap, 60_000), dir)]);
    if (!args['no-floor']) {
      results.push(['floor-node', await measure('floor-node', (wrap) => startTlsFloor('floor-node', leaf.crt, leaf.key, node, RUN_V8_FLAGS, wrap, 120_000), dir, MODES.filter((m) => m !== 'plain'))]);
    }
    for (const form of forms) results.push([form.name, await measure(form.name, (wrap) => startTsbalTls(form, backend.port, leaf.crt, leaf.key, wrap, 120_000), dir)]);
  } finally {
    await stopAll(daemons);
    pki.cleanup();
  }
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const h = results[0]![1];
  const cell = (r: Counts, mode: Mode): string => (r[mode] === undefined ? '-' : `${r[mode].perRequest.toFixed(0)} (${r[mode].mainPerRequest.toFixed(0)})`);
  const ratio = (r: Counts, mode: Mode): string => (r[mode] === undefined || h[mode] === undefined ? '-' : (h[mode].mainPerRequest / r[mode].mainPerRequest).toFixed(2));
  console.log(`callgrind, ${args.cert === 'rsa' ? 'RSA 2048' : 'ECDSA P-256'}; ${HANDSHAKES} handshakes / ${REQUESTS} keep-alive requests after a warm-up of as many; ${forms.map((f) => `${f.name} = ${f.describe}`).join('; ')}; load average ${load}`);
  console.log('');
  console.log(`| load | ${results.map(([n]) => `${n} instr/req (main thread)`).join(' | ')} | ${results.slice(1).map(([n]) => `haproxy/${n} (main)`).join(' | ')} |`);
  console.log(`|${'---|'.repeat(1 + results.length * 2 - 1)}`);
  for (const mode of MODES) {
    console.log(`| ${mode} | ${results.map(([, r]) => cell(r, mode)).join(' | ')} | ${results.slice(1).map(([, r]) => ratio(r, mode)).join(' | ')} |`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
