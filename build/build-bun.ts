// `npm run build:bun`: dist/tsbal-bun, the Bun-compiled equivalent of dist/tsbal. It compiles dist/tsbal.cjs (not
// the TypeScript source) so both binaries run exactly the same bundle, embedded workers included.
//
// Options: --outdir DIR (default dist), --target bun-linux-arm64 (or any `bun build --target`; the output is then
// tsbal-bun-<target minus "bun-">). Bun fetches a foreign target's runtime from the npm registry.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bundleProgram } from './bundle.ts';
import { formatBytes, isMain, mustRun, REPO_ROOT, report, tempPathFor } from './common.ts';
import { isUpToDate, recordBuilt, writeSums } from './outputs.ts';

// --bytecode stores precompiled bytecode for the bundle: `tsbal --version` starts in about half the time.
const BUN_FLAGS = ['--compile', '--bytecode', '--format=cjs'];

function bunBin(): string {
  return path.join(REPO_ROOT, 'node_modules/.bin/bun');
}

async function bunVersion(): Promise<string> {
  return (await mustRun(bunBin(), ['--version'])).stdout.trim();
}

export function bunBinaryName(target: string | undefined): string {
  return target ? `tsbal-bun-${target.replace(/^bun-/, '')}` : 'tsbal-bun';
}

export async function buildBun(outDir: string, target?: string): Promise<void> {
  const started = Date.now();
  fs.mkdirSync(outDir, { recursive: true });
  const bundle = await bundleProgram({ outfile: path.join(outDir, 'tsbal.cjs') });
  const name = bunBinaryName(target);
  const output = path.join(outDir, name);
  const targetFlags = target ? [`--target=${target}`] : [];
  const key = `bun|${bundle.sha256}|bun ${await bunVersion()}|${[...BUN_FLAGS, ...targetFlags].join(' ')}`;
  if (isUpToDate(outDir, name, key)) {
    report(name, 'up to date', started);
  } else {
    const temp = tempPathFor(output);
    try {
      await mustRun(bunBin(), ['build', ...BUN_FLAGS, ...targetFlags, bundle.outfile, '--outfile', temp]);
      fs.chmodSync(temp, 0o755);
      fs.renameSync(temp, output);
    } finally {
      fs.rmSync(temp, { force: true });
    }
    recordBuilt(outDir, name, key, bundle.sha256);
    report(name, `${formatBytes(fs.statSync(output).size)}, bun build ${BUN_FLAGS.join(' ')}`, started);
  }
  await writeSums(outDir);
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { outdir: { type: 'string' }, target: { type: 'string' } } });
  try {
    await buildBun(path.resolve(values.outdir ?? path.join(REPO_ROOT, 'dist')), values.target);
  } catch (error) {
    console.error(`build:bun failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
