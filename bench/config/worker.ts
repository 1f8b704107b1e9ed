// Times parsePerlbalConfig on one file, in whatever runtime runs this (Bun directly, Node via a bundle).
// Prints one JSON line: {"runtime":..., "ms":[...]}.
import { readFileSync } from 'node:fs';
import { parsePerlbalConfig } from '../../src/config/perlbal.ts';

const [file, runsArg] = process.argv.slice(2);
if (!file) throw new Error('usage: worker.ts FILE [RUNS]');
const text = readFileSync(file, 'utf8');
const runs = Number(runsArg ?? 20);
const ms: number[] = [];
let services = 0;
for (let i = 0; i < runs; i++) {
  const started = performance.now();
  services = parsePerlbalConfig(text, { file }).services.length;
  ms.push(performance.now() - started);
}
const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined' ? `bun ${process.versions.bun}` : `node ${process.versions.node}`;
console.log(JSON.stringify({ runtime, services, ms }));
