// bench/config: how long parsing a 10,000-line perlbal.conf takes (issue 3's target: under 200 ms).
//
//   npx bun bench/config/run.ts [--lines 10000] [--runs 30]
//
// The parser runs under Bun directly and under Node (an esbuild bundle, as `tsbal` ships), each in a fresh
// process: the first parse is the cold one a starting daemon pays (JIT not warmed up), the rest show the
// warm cost. Real Perlbal 1.80 loads the same file in the same run for a ratio (Perlbal::load_config timed
// inside perl, module loading excluded). Prints a markdown table; JSON to bench/results/.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCommand } from '../../test/harness/cli.ts';
import { generatePerlbalConfig } from './generate.ts';

const TARGET_MS = 200;
const { values } = parseArgs({ options: { lines: { type: 'string', default: '10000' }, runs: { type: 'string', default: '30' } } });
const lines = Number(values.lines);
const runs = Number(values.runs);
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const NODE22 = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));

interface Row {
  runtime: string;
  coldMs: number;
  warmMedianMs: number;
  warmP95Ms: number;
  warmMinMs: number;
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

async function timeWorker(command: string, args: string[]): Promise<Row> {
  const r = await runCommand(command, args, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { runtime: string; ms: number[] };
  const warm = out.ms.slice(1);
  return { runtime: out.runtime, coldMs: out.ms[0]!, warmMedianMs: quantile(warm, 0.5), warmP95Ms: quantile(warm, 0.95), warmMinMs: Math.min(...warm) };
}

/** Perlbal::load_config on the same file, timed inside perl (fresh process per run: Perlbal's state is global). */
async function timePerlbal(file: string, times: number): Promise<number[] | null> {
  if (!existsSync('/usr/share/perl5/Perlbal.pm')) return null;
  const script = 'use Time::HiRes qw(time); $SIG{__WARN__}=sub{}; require Perlbal; my $t=time; my $ok=Perlbal::load_config($ARGV[0], sub {}); printf("%s %.3f\\n", $ok ? "ok" : "failed", (time-$t)*1000);';
  const out: number[] = [];
  for (let i = 0; i < times; i++) {
    const r = await runCommand('perl', ['-e', script, file], { timeoutMs: 120_000 });
    const [status, ms] = r.stdout.trim().split(' ');
    if (status !== 'ok') throw new Error(`Perlbal refused the generated config: ${r.stdout} ${r.stderr}`);
    out.push(Number(ms));
  }
  return out;
}

const dir = await mkdtemp(join(tmpdir(), 'tsbal-bench-config-'));
try {
  const cfg = generatePerlbalConfig(lines);
  const file = join(dir, 'perlbal.conf');
  await writeFile(file, cfg.text);
  const bundle = join(dir, 'worker.mjs');
  await build({ entryPoints: [WORKER], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: bundle, logLevel: 'silent' });

  const rows: Row[] = [await timeWorker(process.execPath, [WORKER, file, String(runs)])];
  // The system Node (20 on Debian), which the shipped tsbal.cjs runs under; npm's PATH would give Node 22.
  if (existsSync('/usr/bin/node')) rows.push(await timeWorker('/usr/bin/node', [bundle, file, String(runs)]));
  if (existsSync(NODE22)) rows.push(await timeWorker(NODE22, [bundle, file, String(runs)]));
  const perlbal = await timePerlbal(file, 3);

  console.log(`\nbench/config: ${cfg.lines} lines (${cfg.services} services, ${cfg.pools} pools), ${runs} parses per runtime, ${cpus()[0]?.model ?? ''}\n`);
  const perlbalMedian = perlbal ? quantile(perlbal, 0.5) : null;
  console.log('| runtime | cold (1st parse) ms | warm median ms | warm p95 ms | warm min ms | cold / Perlbal | target < 200 ms |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const ok = r.coldMs < TARGET_MS && r.warmP95Ms < TARGET_MS ? 'yes' : 'NO';
    const ratio = perlbalMedian ? `${(r.coldMs / perlbalMedian).toFixed(2)}x` : '-';
    console.log(`| ${r.runtime} | ${r.coldMs.toFixed(1)} | ${r.warmMedianMs.toFixed(1)} | ${r.warmP95Ms.toFixed(1)} | ${r.warmMinMs.toFixed(1)} | ${ratio} | ${ok} |`);
  }
  if (perlbal && perlbalMedian !== null) {
    console.log(`| perl (Perlbal 1.80 load_config, ${perlbal.length} fresh runs) | median ${perlbalMedian.toFixed(1)} | | | ${Math.min(...perlbal).toFixed(1)} | 1x | |`);
  }
  await mkdir(RESULTS_DIR, { recursive: true });
  const out = join(RESULTS_DIR, `config-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(out, JSON.stringify({ lines: cfg.lines, services: cfg.services, pools: cfg.pools, runs, rows, perlbalMs: perlbal }, null, 2));
  console.log(`\nJSON: ${out}`);
  if (rows.some((r) => r.coldMs >= TARGET_MS || r.warmP95Ms >= TARGET_MS)) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
