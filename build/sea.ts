// Node single executable applications with @yao-pkg/pkg's SEA mode, without network access beyond the npm registry.
//
// pkg 6.23 in SEA mode needs a Node >= 22 host and a Node base binary per target, which it downloads from
// nodejs.org into ~/.pkg-cache/sea/ unless that cache already holds it. We seed the cache from the npm packages
// `node-linux-<arch>`: the host's comes with `npm ci` (an optionalDependency), the other arch is fetched with
// `npm pack` and checked against the integrity package-lock.json records. pkg then runs under the host package's
// node, which is the same release as the targets, so the SEA blob it generates matches the binaries it is baked
// into (pkg refuses a host/target patch-version skew, and would try to download a matching generator).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { copyFileAtomic, mustRun, REPO_ROOT, tempPathFor } from './common.ts';

export type Arch = 'x64' | 'arm64';
export const ARCHES: readonly Arch[] = ['x64', 'arm64'];

export function isArch(value: string): value is Arch {
  return (ARCHES as readonly string[]).includes(value);
}

export function hostArch(): Arch {
  const arch = process.arch;
  if (!isArch(arch)) throw new Error(`cannot build on a ${arch} host: tsbal builds on linux x64 or arm64`);
  return arch;
}

function nodePackageDir(arch: Arch): string {
  return path.join(REPO_ROOT, 'node_modules', `node-linux-${arch}`);
}

/** The Node binary of an installed node-linux-<arch> package, or null when npm skipped it (other CPU). */
function installedNode(arch: Arch): string | null {
  const file = path.join(nodePackageDir(arch), 'bin', 'node');
  return fs.existsSync(file) ? file : null;
}

/** The Node that runs pkg: the host's node-linux-<arch> package. */
export function hostNode(): string {
  const node = installedNode(hostArch());
  if (!node) {
    throw new Error(`node_modules/node-linux-${hostArch()} is missing: run \`npm ci\` (it provides Node 22 for pkg)`);
  }
  return node;
}

/** The Node release baked into the binaries: the version of the host's node-linux-<arch> package. */
export function nodeVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(nodePackageDir(hostArch()), 'package.json'), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

export function pkgVersion(): string {
  const file = path.join(REPO_ROOT, 'node_modules/@yao-pkg/pkg/package.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
}

export interface SeaCachePaths {
  /** `node-v22.23.3-linux-x64` */
  name: string;
  archive: string;
  archiveOk: string;
  node: string;
  nodeOk: string;
}

/**
 * Where pkg 6.23 looks for a base binary (lib-es5/sea.js, getNodejsExecutable and extract): the archive
 * `~/.pkg-cache/sea/node-v<version>-linux-<arch>.tar.gz` and the binary unpacked beside it at
 * `node-v<version>-linux-<arch>/bin/node`, each trusted only with an empty `.ok` sentinel next to it.
 */
export function seaCachePaths(version: string, arch: Arch, home = os.homedir()): SeaCachePaths {
  const dir = path.join(home, '.pkg-cache', 'sea');
  const name = `node-v${version}-linux-${arch}`;
  const archive = path.join(dir, `${name}.tar.gz`);
  const node = path.join(dir, name, 'bin', 'node');
  return { name, archive, archiveOk: `${archive}.ok`, node, nodeOk: `${node}.ok` };
}

function lockedIntegrity(packageName: string): string | null {
  const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages?: Record<string, { integrity?: string }>;
  };
  return lock.packages?.[`node_modules/${packageName}`]?.integrity ?? null;
}

/** Fetches node-linux-<arch>@<version> with `npm pack` (npm's cache makes a second run offline) into `workDir`. */
async function packedNode(arch: Arch, version: string, workDir: string): Promise<string> {
  const spec = `node-linux-${arch}@${version}`;
  let packed;
  try {
    packed = await mustRun('npm', ['pack', spec, '--json', '--prefer-offline', '--pack-destination', workDir], {
      cwd: workDir,
    });
  } catch (error) {
    throw new Error(
      `cannot fetch ${spec} from the npm registry for the ${arch} binary ` +
        `(set TSBAL_BUILD_ARCHES=${hostArch()} to build only this host's binary): ${(error as Error).message}`,
    );
  }
  const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; integrity: string }>;
  if (!info) throw new Error(`npm pack ${spec} reported nothing`);
  const expected = lockedIntegrity(`node-linux-${arch}`);
  if (expected === null) throw new Error(`package-lock.json has no integrity for node-linux-${arch}`);
  if (info.integrity !== expected) {
    throw new Error(`npm pack ${spec}: integrity ${info.integrity} does not match package-lock.json's ${expected}`);
  }
  await mustRun('tar', ['-xzf', path.join(workDir, info.filename), '-C', workDir, 'package/bin/node']);
  return path.join(workDir, 'package', 'bin', 'node');
}

function isSeeded(paths: SeaCachePaths, expectedNodeSize: number | null): boolean {
  const present = [paths.archive, paths.archiveOk, paths.node, paths.nodeOk].every((file) => fs.existsSync(file));
  return present && (expectedNodeSize === null || fs.statSync(paths.node).size === expectedNodeSize);
}

/**
 * Makes pkg find the base binary for `arch` in its cache so it never downloads. Every file is written beside its
 * final name and renamed into place, sentinels last, so a concurrent build (another worktree) or an interrupted one
 * never lets pkg see a partial file.
 */
export async function seedSeaCache(arch: Arch, version: string): Promise<'cached' | 'seeded'> {
  const paths = seaCachePaths(version, arch);
  const local = installedNode(arch);
  if (isSeeded(paths, local ? fs.statSync(local).size : null)) return 'cached';

  const cacheDir = path.dirname(paths.archive);
  fs.mkdirSync(cacheDir, { recursive: true });
  const workDir = fs.mkdtempSync(path.join(cacheDir, `.tsbal-seed-${arch}-`));
  try {
    const source = local ?? (await packedNode(arch, version, workDir));
    // The archive holds `node-v<version>-linux-<arch>/bin/node` as nodejs.org's does, so pkg can re-extract it
    // if the unpacked binary is ever removed.
    const stagedNode = path.join(workDir, paths.name, 'bin', 'node');
    fs.mkdirSync(path.dirname(stagedNode), { recursive: true });
    fs.copyFileSync(source, stagedNode);
    fs.chmodSync(stagedNode, 0o755);
    const stagedArchive = path.join(workDir, 'archive.tar.gz');
    await mustRun('tar', [
      '--use-compress-program=gzip -1',
      '-cf',
      stagedArchive,
      '-C',
      workDir,
      path.join(paths.name, 'bin', 'node'),
    ]);
    fs.renameSync(stagedArchive, paths.archive);
    fs.writeFileSync(paths.archiveOk, '');
    fs.mkdirSync(path.dirname(paths.node), { recursive: true });
    copyFileAtomic(stagedNode, paths.node, 0o755);
    fs.writeFileSync(paths.nodeOk, '');
    return 'seeded';
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * Bakes `input` (a CommonJS bundle) into a Node SEA binary for linux-<arch> at `output`: pkg's simple SEA mode, where
 * the bundle is the SEA main script as is, with no virtual filesystem bootstrap in front of it (build/pkg-sea.ts).
 */
export async function buildSea(input: string, output: string, arch: Arch, version: string): Promise<void> {
  const pkgSea = path.join(REPO_ROOT, 'build/pkg-sea.ts');
  const temp = tempPathFor(output);
  const codeCache = arch === hostArch();
  try {
    await mustRun(hostNode(), [pkgSea, input, temp, version, arch, String(codeCache)]);
    // pkg writes the 120 MB binary in one write, which leaves it in the page cache as huge folios; a process
    // started from it then maps whole folios of the executable on every fault: +18 MiB of RSS (file pages) at
    // wrk -c256 for the same bytes (bench/proxy/rss.ts). A chunked copy caches it the way an installed (downloaded
    // or copied) binary is, so the build measures what users run.
    copyFileAtomic(temp, output, 0o755);
  } finally {
    fs.rmSync(temp, { force: true });
  }
}
