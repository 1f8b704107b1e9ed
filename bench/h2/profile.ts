// bench/h2/profile.ts: tsbal (Node, dist bundle) alone behind h2load, for optimisation work on the HTTP/2 path:
// CPU seconds per 100k requests (from /proc), backend connections opened (nginx stub_status accepts) and requests
// seen by the backend; --cpu-prof writes a V8 CPU profile to the given directory. Several --bundle files (e.g. a
// copy of dist/tsbal.cjs before a change, and after) run side by side, rounds interleaved, for an A/B on a loaded
// machine.
//
//   npx bun bench/h2/profile.ts [--requests 20000] [--rounds 3] [--cpu-prof DIR] [--bundle 'FILE [node flags]']...
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makePki } from '../../test/harness/certs.ts';
import { nginxCounters, startNginxBackend } from '../../test/harness/nginx.ts';
import { stopAll } from '../../test/harness/procs.ts';
import { startTsbalTls } from '../tls/proxies.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { DIST_BUNDLE } from '../../test/harness/tsbal.ts';
import { LOOPBACK } from '../../test/harness/ports.ts';
import { RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '20000' },
    clients: { type: 'string', default: '8' },
    streams: { type: 'string', default: '10' },
    'cpu-prof': { type: 'string' },
    bundle: { type: 'string', multiple: true },
    /** Extra Node flags for every tsbal, after RUN_V8_FLAGS (so they win), e.g. --node-flag=--max-semi-space-size=16. */
    'node-flag': { type: 'string', multiple: true },
  },
});
const REQUESTS = Number(args.requests);

const pki = makePki();
const ec = pki.issue('ec', ['127.0.0.1']);
const backend = await startNginxBackend({ name: 'h2-profile' });
const profDir = args['cpu-prof'];
const node = `${REPO_ROOT}node_modules/.bin/node`;
const extra = [...(args['node-flag'] ?? []), ...(profDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profDir)}`])];
const startTsbal = (spec: string) => {
  // A spec is the bundle, then Node flags for it alone: 'dist/tsbal.cjs --max-semi-space-size=16'. One process (as
  // HAProxy runs one thread): the profile and the CPU figures are of the one serving.
  const [file, ...flags] = spec.split(' ');
  return startTsbalTls({ name: 'tsbal-h2-profile', command: node, args: [...RUN_V8_FLAGS, ...extra, ...flags, path.resolve(file!)], describe: spec }, backend.port, ec.crt, ec.key);
};
const bundles = args.bundle ?? [DIST_BUNDLE];
const proxies = [];
for (const b of bundles) proxies.push({ bundle: b, d: await startTsbal(b) });
try {
  const run = (port: number, n: number): number => {
    const r = spawnSync('h2load', ['-n', String(n), '-c', args.clients, '-m', args.streams, '-t', '1', `https://${LOOPBACK}:${port}/`], { encoding: 'utf8', timeout: 300_000 });
    const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(r.stdout);
    if (m === null) throw new Error(r.stdout + r.stderr);
    return Number(m[1]);
  };
  for (const p of proxies) run(p.d.port, Math.max(1000, REQUESTS / 10));
  const cpus = new Map<string, number[]>();
  for (let i = 0; i < Number(args.rounds); i++) {
    for (const p of proxies) {
      const c0 = await nginxCounters(backend);
      const cpu0 = p.d.usage().cpuSeconds;
      const ok = run(p.d.port, REQUESTS);
      const cpu = ((p.d.usage().cpuSeconds - cpu0) / ok) * 100_000;
      const c1 = await nginxCounters(backend);
      cpus.set(p.bundle, [...(cpus.get(p.bundle) ?? []), cpu]);
      console.log(`round ${i} ${p.bundle}: ${ok} ok, CPU ${cpu.toFixed(2)} s/100k, backend accepts ${c1.accepts - c0.accepts - 1}, backend requests ${c1.requests - c0.requests - 1}, load ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);
    }
  }
  for (const [b, xs] of cpus) console.log(`${b}: CPU s/100k median ${[...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!.toFixed(2)}, min ${Math.min(...xs).toFixed(2)}`);
} finally {
  await stopAll([...proxies.map((p) => p.d), backend]);
  pki.cleanup();
}
