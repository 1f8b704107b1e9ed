// bench/proxy/parse-instructions.ts: instructions spent reading the two heads of a kept-alive proxied request (the
// client's request head and the backend's response head: scanHead + parseRequestHead, readResponseHead), counted by
// callgrind on the main thread. The whole-proxy count (instructions.ts) moves by ±0.5k between runs with V8's
// tiering; this one isolates the parsers, so a change of a few hundred instructions can be judged.
//
//   npx bun bench/proxy/parse-instructions.ts [--mode both|req|res] [--node node_modules/.bin/node]
//
// Bundles parse-loop.ts with esbuild (as the program is bundled: module boundaries cost differently under Node's
// own TypeScript loading) and runs the bundle under `valgrind --tool=callgrind` twice, 20k and 220k parses after the
// same warm-up; prints the difference per parse: what one more request costs, start-up and warm-up excluded.
// The heads are the bench's own: `GET / HTTP/1.1` with Host, and nginx's answer to it, each in a shared buffer the
// way the engine reads them. Spread between runs: about ±150 instructions. It measures this tree's src/: to compare
// with a change, run it in both trees (or at both commits).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

function mainThreadTotal(dir: string, tag: string): number {
  const file = fs.readdirSync(dir).find((f) => f.startsWith(`${tag}.`) && f.endsWith('-01'));
  if (file === undefined) throw new Error(`no main-thread dump for ${tag} in ${dir}`);
  const m = /^(?:summary|totals): (\d+)/m.exec(fs.readFileSync(path.join(dir, file), 'utf8'));
  if (m === null) throw new Error(`no total in ${file}`);
  return Number(m[1]);
}

const { values: args } = parseArgs({
  options: {
    mode: { type: 'string', default: 'both' },
    node: { type: 'string' },
  },
});
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parse-instructions-'));
try {
  const node = args.node ?? path.resolve(import.meta.dirname, '../../node_modules/.bin/node');
  const bundle = path.join(dir, 'parse.cjs');
  await build({ entryPoints: [path.join(import.meta.dirname, 'parse-loop.ts')], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: bundle, logLevel: 'warning' });
  const WARM = 30_000;
  const runs: Array<[string, number]> = [
    ['a', 20_000],
    ['b', 220_000],
  ];
  for (const [tag, n] of runs) {
    const r = spawnSync(
      '/usr/bin/valgrind',
      ['--tool=callgrind', '--quiet', '--separate-threads=yes', `--callgrind-out-file=${dir}/${tag}.%p`, node, '--max-semi-space-size=2', bundle, args.mode, String(n), String(WARM)],
      { stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 },
    );
    if (r.status !== 0) throw new Error(`callgrind run ${tag} failed (${r.status ?? r.signal})`);
  }
  const per = (mainThreadTotal(dir, 'b') - mainThreadTotal(dir, 'a')) / 200_000;
  console.log(`parse-instructions: ${args.mode}: ${Math.round(per)} instructions per parse (main thread, load ${os.loadavg()[0]!.toFixed(1)})`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
