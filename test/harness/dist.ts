// The built release directory (dist/) for tests that run the bundle and the binaries. `npm test` builds first;
// ensureDist() runs the same (incremental, so normally a no-op) build once per test process, so
// `bun test test/runtime` works on its own too.
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, runCommand } from './cli.ts';

export const DIST_DIR = path.join(REPO_ROOT, 'dist');
export const NODE22 = path.join(REPO_ROOT, 'node_modules/.bin/node');
export const BUN = path.join(REPO_ROOT, 'node_modules/.bin/bun');
export const DENO = path.join(REPO_ROOT, 'node_modules/.bin/deno');
/**
 * The oldest Node tsbal supports, 20: the system's /usr/bin/node, or, where that is not Node 20 (Debian 12 ships
 * 18), the node-linux-<arch>@20 that scripts/setup.sh unpacks into node_modules/.cache/node20.
 */
const FETCHED_NODE20 = path.join(REPO_ROOT, 'node_modules/.cache/node20/bin/node');
export const NODE20 = fs.existsSync(FETCHED_NODE20) ? FETCHED_NODE20 : '/usr/bin/node';
/** qemu-user and Debian's arm64 cross libraries (scripts/setup.sh installs them) run the arm64 binary here. */
export const QEMU_ARM64 = { command: '/usr/bin/qemu-aarch64', args: ['-L', '/usr/aarch64-linux-gnu'] };

export interface Dist {
  dir: string;
  bundle: string;
  /** The build host's Node SEA binary. */
  sea: string;
  seaX64: string;
  seaArm64: string;
  bun: string;
  sums: string;
  installer: string;
}

export const dist: Dist = {
  dir: DIST_DIR,
  bundle: path.join(DIST_DIR, 'tsbal.cjs'),
  sea: path.join(DIST_DIR, 'tsbal'),
  seaX64: path.join(DIST_DIR, 'tsbal-linux-x64'),
  seaArm64: path.join(DIST_DIR, 'tsbal-linux-arm64'),
  bun: path.join(DIST_DIR, 'tsbal-bun'),
  sums: path.join(DIST_DIR, 'SHA256SUMS'),
  installer: path.join(DIST_DIR, 'install.sh'),
};

let built: Promise<Dist> | null = null;

async function build(): Promise<Dist> {
  for (const script of ['build/build.ts', 'build/build-bun.ts']) {
    const result = await runCommand(NODE22, [script], { timeoutMs: 170_000 });
    if (result.code !== 0) throw new Error(`node ${script} failed (${result.code}):\n${result.stdout}${result.stderr}`);
  }
  for (const file of Object.values(dist)) {
    if (!fs.existsSync(file)) throw new Error(`the build did not produce ${file}`);
  }
  return dist;
}

/** Builds dist/ (once per test process) and returns its paths. Give the calling hook a 180 s timeout. */
export function ensureDist(): Promise<Dist> {
  built ??= build();
  return built;
}

/** Environment variables that change tsbal's output, removed so a developer's shell does not leak into tests. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('TSBAL_') && key !== 'NODE_OPTIONS') env[key] = value;
  }
  return { ...env, DENO_NO_UPDATE_CHECK: '1', ...extra };
}
