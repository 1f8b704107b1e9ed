// bench/proxy/rss-gaps.ts: tsbal's RSS over bursts of kept-alive load with idle gaps between them (the shape in
// which bench/proxy/run.ts saw its RSS max grow round by round while HAProxy took its turns).
//
//   npx bun bench/proxy/rss-gaps.ts [--bursts 12] [--burst 3] [--gap 4] [--connections 64] -- dist/tsbal
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { startNginxBackend } from '../../test/harness/nginx.ts';
import { TUTORIAL_OPTIONS } from '../../test/harness/perlbalconf.ts';
import { stopAll } from '../../test/harness/procs.ts';
import { startTsbal } from '../../test/harness/tsbal.ts';
import { runWrk } from '../../test/harness/wrk.ts';

const { values: args, positionals } = parseArgs({
  options: {
    bursts: { type: 'string', default: '12' },
    burst: { type: 'string', default: '3' },
    gap: { type: 'string', default: '4' },
    connections: { type: 'string', default: '64' },
  },
  allowPositionals: true,
});
const binary = positionals[0] ?? 'dist/tsbal';
const kb = (pid: number, key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
const mib = (k: number): string => (k / 1024).toFixed(1);

const backends = [await startNginxBackend({ name: 'g1', body: 'backend!\n' }), await startNginxBackend({ name: 'g2', body: 'backend!\n' })];
try {
  const proxy = await startTsbal({ backends: backends.map((b) => b.port), set: TUTORIAL_OPTIONS }, { kind: 'binary', path: fs.realpathSync(binary) });
  try {
    const url = `http://127.0.0.1:${proxy.port}/`;
    for (let i = 1; i <= Number(args.bursts); i++) {
      const wrk = await runWrk({ url, threads: 1, connections: Number(args.connections), durationSeconds: Number(args.burst) });
      const loaded = `RSS ${mib(kb(proxy.pid, 'VmRSS'))} (anon ${mib(kb(proxy.pid, 'RssAnon'))}) after ${Math.round(wrk.requestsPerSecond)} req/s`;
      await new Promise((r) => setTimeout(r, Number(args.gap) * 1000));
      console.log(`burst ${i}: ${loaded}; after the gap RSS ${mib(kb(proxy.pid, 'VmRSS'))}, HWM ${mib(kb(proxy.pid, 'VmHWM'))} MiB`);
    }
    // Under `node --trace-gc` (a wrapper script as the binary): the heap after each full collection.
    const gcLines = proxy.output().split("\n").filter((l) => /Scavenge|Mark-Compact|Mark-Sweep/.test(l));
    console.log(`gc: ${gcLines.length} lines; full collections:`);
    for (const line of gcLines.filter((l) => /Mark-Compact|Mark-Sweep/.test(l)).slice(-8)) console.log(`  ${line.trim()}`);
  } finally {
    await stopAll([proxy]);
  }
} finally {
  await stopAll(backends);
}
