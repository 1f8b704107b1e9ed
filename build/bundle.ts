// esbuild: src/cli/main.ts -> dist/tsbal.cjs, one CommonJS file that runs on Node >= 20, Bun and Deno, and is the
// input of both single-executable builds (pkg SEA and bun --compile), so every form runs the same code.
//
// Worker entries (`src/**/<name>.worker.ts`) are bundled first and embedded in the program as strings under
// `__TSBAL_WORKERS__`: a single-file program has no worker file on disk to hand to `new Worker(path)`, while
// `new Worker(code, { eval: true })` works in every form (see src/runtime/worker.ts).
import { build, type BuildOptions } from 'esbuild';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isMain, REPO_ROOT, writeFileAtomic } from './common.ts';

export const WORKER_SUFFIX = '.worker.ts';

export interface BundleResult {
  outfile: string;
  bytes: number;
  /** sha256 of the bundle: the input key of every binary made from it. */
  sha256: string;
  /** Worker names embedded, e.g. `runtime/probe` for src/runtime/probe.worker.ts. */
  workers: string[];
}

const shared: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: false,
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
  // Only the TypeScript-source branch of src/runtime/worker.ts reads import.meta.url, and it never runs in a
  // bundle; defining it keeps esbuild from warning that import.meta is empty in CommonJS.
  define: { 'import.meta.url': 'undefined' },
};

/** Worker names under `srcDir`, sorted: `a/b` for `a/b.worker.ts`. */
export function findWorkers(srcDir: string): string[] {
  return fs
    .readdirSync(srcDir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith(WORKER_SUFFIX))
    .map((file) => file.slice(0, -WORKER_SUFFIX.length).split(path.sep).join('/'))
    .sort();
}

async function bundleWorker(srcDir: string, name: string): Promise<string> {
  const result = await build({
    ...shared,
    entryPoints: [path.join(srcDir, `${name}${WORKER_SUFFIX}`)],
    write: false,
    // A worker that starts another worker finds none embedded and gets a clear error instead of a file lookup.
    define: { ...shared.define, __TSBAL_WORKERS__: '{}' },
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error(`esbuild produced no output for worker ${name}`);
  return file.text;
}

export async function bundleProgram(
  options: { entry?: string; outfile?: string; srcDir?: string } = {},
): Promise<BundleResult> {
  const srcDir = options.srcDir ?? path.join(REPO_ROOT, 'src');
  const entry = options.entry ?? path.join(srcDir, 'cli/main.ts');
  const outfile = options.outfile ?? path.join(REPO_ROOT, 'dist/tsbal.cjs');
  const workers = findWorkers(srcDir);
  const embedded: Record<string, string> = {};
  for (const name of workers) embedded[name] = await bundleWorker(srcDir, name);
  const result = await build({
    ...shared,
    entryPoints: [entry],
    outfile,
    write: false,
    define: { ...shared.define, __TSBAL_WORKERS__: JSON.stringify(embedded) },
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error(`esbuild produced no output for ${entry}`);
  // Written whole and renamed into place: a test or demo may be running the previous bundle.
  writeFileAtomic(outfile, file.contents, 0o755);
  const sha256 = createHash('sha256').update(file.contents).digest('hex');
  return { outfile, bytes: file.contents.length, sha256, workers };
}

if (isMain(import.meta.url)) {
  await bundleProgram();
}
