// bench/proxy/cpu-ab.ts: CPU seconds per 100k kept-alive requests of two or more tsbal builds, in interleaved rounds
// (the order flips every round), for A/B decisions on a shared machine where one wrk run per build is noise: every
// build runs at once in front of the same two nginx backends (tutorial options, one worker), h2load --h1 sends N
// requests on C connections to each in turn, and utime+stime come from /proc/<pid>/stat.
//
//   npx bun bench/proxy/cpu-ab.ts A.cjs|A-binary B.cjs|B-binary ...   (env ROUNDS=4, N=100000, C=64)
// A `.cjs` runs under node_modules/.bin/node (Node 22) with the flags the SEA binary bakes in; anything else is run
// as a binary. Prints each round and the median and minimum per build.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startNginxBackend } from '../../test/harness/nginx.ts';
import { reverseProxyConfFor } from '../../test/harness/perlbal.ts';
import { TUTORIAL_OPTIONS } from '../../test/harness/perlbalconf.ts';
import { makeTempDir, startDaemon, startWithFreshPorts, stopAll } from '../../test/harness/procs.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';
const targets = process.argv.slice(2);
const ROUNDS = Number(process.env.ROUNDS ?? 4);
const N = process.env.N ?? '100000';
const C = process.env.C ?? '64';
const backends = await Promise.all([startNginxBackend({ name: 'b1' }), startNginxBackend({ name: 'b2' })]);
const cpu = (pid: number): number => { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
const procs = [] as Array<{ name: string; pid: number; port: number; stop: (ms: number) => Promise<void> }>;
for (const t of targets) {
  const d = await startWithFreshPorts(2, async (ports) => {
    const dir = makeTempDir('ab');
    const { text, ready } = reverseProxyConfFor({ backends: backends.map((b) => b.port), set: TUTORIAL_OPTIONS })(ports);
    const conf = path.join(dir, 'perlbal.conf');
    fs.writeFileSync(conf, text);
    const cmd = t.endsWith('.cjs') ? { command: `${REPO_ROOT}node_modules/.bin/node`, args: [...RUN_V8_FLAGS, t, 'run', '-c', conf] } : { command: t, args: ['run', '-c', conf] };
    const daemon = await startDaemon({ name: 'tsbal', ...cmd, dir, ports: ready, env: { ...process.env, TSBAL_WORKERS: '1' } });
    return { ...daemon, port: ready[0]! };
  });
  procs.push({ name: t, pid: d.pid, port: d.port, stop: d.stop });
  spawnSync('h2load', ['--h1', '-n', '30000', '-c', C, '-t', '1', `http://127.0.0.1:${d.port}/`]);
}
const res: Record<string, number[]> = {};
try {
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? procs : [...procs].reverse();
    for (const p of order) {
      const c0 = cpu(p.pid);
      const t0 = performance.now();
      const out = spawnSync('h2load', ['--h1', '-n', N, '-c', C, '-t', '1', `http://127.0.0.1:${p.port}/`], { encoding: 'utf8' });
      const secs = (performance.now() - t0) / 1000;
      const per100k = ((cpu(p.pid) - c0) * 100000) / Number(N);
      (res[p.name] ??= []).push(per100k);
      console.log(`round ${r} ${p.name}: ${per100k.toFixed(2)} CPU s/100k, ${(Number(N) / secs).toFixed(0)} req/s, load ${os.loadavg()[0]!.toFixed(1)} ${/succeeded, (\d+) failed/.exec(out.stdout)?.[1]} failed`);
    }
  }
} finally {
  for (const p of procs) await p.stop(5000);
  await stopAll(backends);
}
for (const [k, v] of Object.entries(res)) { const s = [...v].sort((a, b) => a - b); console.log(`${k}: median ${s[Math.floor(s.length / 2)]!.toFixed(2)} min ${s[0]!.toFixed(2)} all ${v.map((x) => x.toFixed(2)).join(' ')}`); }
