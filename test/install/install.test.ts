// install.sh for real: dist/ served over HTTP on 127.0.0.1, installs into temp prefixes (never this machine's
// /usr/local/bin), a non-root user via setpriv, and machines that differ from this one through PATH (no curl or
// wget, a uname that reports another architecture, a dpkg-query that reports missing packages).
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import fs from 'node:fs';
import path from 'node:path';
import { copyInstaller } from '../../build/build.ts';
import pkg from '../../package.json' with { type: 'json' };
import { runCommand } from '../harness/cli.ts';
import { dist, ensureDist } from '../harness/dist.ts';
import { makeTempDir, removeDir } from '../harness/procs.ts';
import { copyRelease, corrupt, type ReleaseServer, serveRelease } from './release.ts';
import { makeToolbox, STANDARD_PATH, unameReporting } from './toolbox.ts';

const NOBODY = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'];
const VERSION_LINE = `tsbal ${pkg.version}`;

let work = '';
let server: ReleaseServer;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  await ensureDist();
  work = makeTempDir('install');
  const release = path.join(work, 'release');
  copyRelease(dist.dir, release);
  server = await serveRelease(release);
}, 180_000);

afterAll(async () => {
  await server?.close();
  removeDir(work);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

let counter = 0;
/** A fresh directory under the test's temp dir. */
function fresh(label: string): string {
  counter += 1;
  const dir = path.join(work, `${label}-${counter}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

async function serverFor(setup: (dir: string) => void): Promise<ReleaseServer> {
  const dir = fresh('release');
  copyRelease(dist.dir, dir);
  setup(dir);
  const own = await serveRelease(dir);
  cleanups.push(() => own.close());
  return own;
}

interface InstallRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs dist/install.sh (or `curl … | sh` with `pipe`) with only the environment given, plus a private TMPDIR. */
async function install(env: Record<string, string>, options: { pipe?: string; asNobody?: boolean } = {}) {
  const tmp = fresh('tmp');
  fs.chmodSync(tmp, 0o1777);
  const fullEnv = { PATH: STANDARD_PATH, HOME: tmp, TMPDIR: tmp, TSBAL_NO_DEPS: '1', ...env };
  for (const [key, value] of Object.entries(fullEnv)) if (value === '') delete fullEnv[key as keyof typeof fullEnv];
  const shellArgs = options.pipe ? ['-c', `curl -fsSL ${options.pipe}/install.sh | sh`] : [dist.installer];
  const [command, args] = options.asNobody ? ['setpriv', [...NOBODY, 'sh', ...shellArgs]] : ['sh', shellArgs];
  const result: InstallRun = await runCommand(command as string, args as string[], { env: fullEnv, timeoutMs: 60_000 });
  const leftovers = fs.readdirSync(tmp);
  return { ...result, leftovers };
}

/** Files in a bin dir: only `tsbal` after a good install, nothing (or the old tsbal) after a refused one. */
const listing = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);
const sameBytes = (a: string, b: string): boolean => fs.readFileSync(a).equals(fs.readFileSync(b));

describe('install.sh', () => {
  test('curl <url>/install.sh | sh installs the verified binary into $TSBAL_PREFIX/bin and prints the next step', async () => {
    const prefix = fresh('prefix');
    const before = server.requests.length;
    const result = await install({ TSBAL_BASE_URL: server.url, TSBAL_PREFIX: prefix }, { pipe: server.url });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(server.requests.slice(before)).toEqual(['/install.sh', '/SHA256SUMS', '/tsbal-linux-x64']);
    const installed = path.join(prefix, 'bin', 'tsbal');
    expect(listing(path.join(prefix, 'bin'))).toEqual(['tsbal']);
    expect(sameBytes(installed, dist.seaX64)).toBe(true);
    expect(fs.statSync(installed).mode & 0o777).toBe(0o755);
    expect(result.stdout).toContain(`installed ${VERSION_LINE} to ${installed}`);
    expect(result.stdout).toContain('setup --node lb1 --peer lb2 --vip <VIP>/<BITS> --iface eth0 --backend <IP:PORT>');
    expect(result.leftovers).toEqual([]);
    const run = await runCommand(installed, ['--version'], { env: {} });
    expect(run.stdout).toBe(`${VERSION_LINE}\n`);
  }, 60_000);

  test('downloads with wget when curl is missing', async () => {
    const prefix = fresh('prefix');
    const PATH = makeToolbox(fresh('bin'), { without: ['curl'] });
    const before = server.requests.length;
    const result = await install({ PATH, TSBAL_BASE_URL: `${server.url}/`, TSBAL_PREFIX: prefix });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(server.requests.slice(before)).toEqual(['/SHA256SUMS', '/tsbal-linux-x64']);
    expect(sameBytes(path.join(prefix, 'bin', 'tsbal'), dist.seaX64)).toBe(true);
  }, 60_000);

  test('TSBAL_BINARY installs offline (no curl or wget), checked against the SHA256SUMS beside it', async () => {
    const prefix = fresh('prefix');
    const PATH = makeToolbox(fresh('bin'), { without: ['curl', 'wget'] });
    const result = await install({ PATH, TSBAL_BINARY: dist.seaX64, TSBAL_PREFIX: prefix });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toContain('checksum ok (tsbal-linux-x64)');
    expect(sameBytes(path.join(prefix, 'bin', 'tsbal'), dist.seaX64)).toBe(true);
  }, 60_000);

  test('TSBAL_BINARY that does not match the SHA256SUMS beside it is refused', async () => {
    const prefix = fresh('prefix');
    const release = fresh('release');
    copyRelease(dist.dir, release);
    corrupt(release, 'tsbal-linux-x64');
    const result = await install({ TSBAL_BINARY: path.join(release, 'tsbal-linux-x64'), TSBAL_PREFIX: prefix });
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining('checksum mismatch'),
    });
    expect(listing(path.join(prefix, 'bin'))).toEqual([]);
  }, 60_000);

  test('a corrupted download is refused and the tsbal already installed stays as it was', async () => {
    const bad = await serverFor((dir) => corrupt(dir, 'tsbal-linux-x64'));
    const prefix = fresh('prefix');
    const old = path.join(prefix, 'bin', 'tsbal');
    fs.mkdirSync(path.dirname(old));
    fs.writeFileSync(old, '#!/bin/sh\necho tsbal 0.0.1\n', { mode: 0o755 });
    const result = await install({ TSBAL_BASE_URL: bad.url, TSBAL_PREFIX: prefix });
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining(`checksum mismatch for ${bad.url}/tsbal-linux-x64`),
    });
    expect(result.stderr).toContain('nothing was installed');
    expect(listing(path.dirname(old))).toEqual(['tsbal']);
    expect(fs.readFileSync(old, 'utf8')).toBe('#!/bin/sh\necho tsbal 0.0.1\n');
    expect(result.leftovers).toEqual([]);
  }, 60_000);

  test('a download cut off half-way installs nothing and leaves no temp file', async () => {
    const cut = await serverFor(() => {});
    cut.truncate('tsbal-linux-x64');
    const prefix = fresh('prefix');
    const result = await install({ TSBAL_BASE_URL: cut.url, TSBAL_PREFIX: prefix });
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining(`download failed: ${cut.url}/tsbal-linux-x64`),
    });
    expect(listing(path.join(prefix, 'bin'))).toEqual([]);
    expect(result.leftovers).toEqual([]);
  }, 60_000);

  test('an unknown architecture is refused before anything is downloaded', async () => {
    const PATH = makeToolbox(fresh('bin'), { scripts: { uname: unameReporting('mips64') } });
    const prefix = fresh('prefix');
    const before = server.requests.length;
    const result = await install({ PATH, TSBAL_BASE_URL: server.url, TSBAL_PREFIX: prefix });
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 1,
      stderr: "tsbal-install: error: unsupported architecture 'mips64': tsbal is built for x86_64 (amd64) and aarch64 (arm64)\n",
    });
    expect(server.requests.slice(before)).toEqual([]);
    expect(listing(path.join(prefix, 'bin'))).toEqual([]);
  });

  test('on aarch64 it fetches and verifies tsbal-linux-arm64, then refuses it here because it cannot run', async () => {
    const PATH = makeToolbox(fresh('bin'), { scripts: { uname: unameReporting('aarch64') } });
    const prefix = fresh('prefix');
    const before = server.requests.length;
    const result = await install({ PATH, TSBAL_BASE_URL: server.url, TSBAL_PREFIX: prefix });
    expect(server.requests.slice(before)).toEqual(['/SHA256SUMS', '/tsbal-linux-arm64']);
    expect(result.stdout).toContain('checksum ok (tsbal-linux-arm64)');
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining('the tsbal-linux-arm64 binary does not run on this machine'),
    });
    expect(listing(path.join(prefix, 'bin'))).toEqual([]);
  }, 60_000);

  test('without curl or wget it says so, and how to install offline', async () => {
    const PATH = makeToolbox(fresh('bin'), { without: ['curl', 'wget'] });
    const prefix = fresh('prefix');
    const result = await install({ PATH, TSBAL_BASE_URL: server.url, TSBAL_PREFIX: prefix });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('neither curl nor wget is installed');
    expect(result.stderr).toContain('TSBAL_BINARY=/path/to/tsbal-linux-x64');
    expect(listing(path.join(prefix, 'bin'))).toEqual([]);
  });

  test('with the release URL baked in by the build, curl <url>/install.sh | sh needs no TSBAL_BASE_URL', async () => {
    const release = await serverFor(() => {});
    copyInstaller(release.dir, release.url);
    const prefix = fresh('prefix');
    const result = await install({ TSBAL_PREFIX: prefix }, { pipe: release.url });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(release.requests).toEqual(['/install.sh', '/SHA256SUMS', '/tsbal-linux-x64']);
    expect(sameBytes(path.join(prefix, 'bin', 'tsbal'), dist.seaX64)).toBe(true);
  }, 60_000);

  test('without TSBAL_BASE_URL it says what to set', async () => {
    const result = await install({ TSBAL_PREFIX: fresh('prefix') });
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining('set TSBAL_BASE_URL to the release directory'),
    });
  });

  test('a non-root user installing into /usr/local/bin is refused before any download, and nothing is written', async () => {
    const systemBin = '/usr/local/bin';
    const canWrite = await runCommand('setpriv', [...NOBODY, 'test', '-w', systemBin]);
    expect(canWrite.code).toBe(1); // precondition: nobody cannot write there, so this test cannot touch it
    const before = { files: listing(systemBin), requests: server.requests.length };
    const result = await install({ TSBAL_BASE_URL: server.url }, { asNobody: true });
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining(`cannot install into ${systemBin} as nobody`),
    });
    expect(result.stderr).toContain('TSBAL_PREFIX=$HOME/.local');
    expect({ files: listing(systemBin), requests: server.requests.length }).toEqual(before);
  });

  test('a non-root user installs into a prefix of their own with curl | sh', async () => {
    const prefix = fresh('prefix');
    fs.chownSync(prefix, 65534, 65534);
    const result = await install(
      { TSBAL_BASE_URL: server.url, TSBAL_PREFIX: prefix },
      { pipe: server.url, asNobody: true },
    );
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const installed = path.join(prefix, 'bin', 'tsbal');
    expect(fs.statSync(installed).uid).toBe(65534);
    expect(sameBytes(installed, dist.seaX64)).toBe(true);
  }, 60_000);
});

describe('install.sh and Debian packages', () => {
  // apt-get is replaced by a script that records its arguments: the real one would change this machine.
  const recordingAptGet = (log: string): string => `echo "$*" >> ${log}`;

  test('as root with apt, installs iproute2 and iputils-arping when dpkg reports them missing', async () => {
    const log = path.join(fresh('apt'), 'apt-get.log');
    const PATH = makeToolbox(fresh('bin'), {
      scripts: { 'apt-get': recordingAptGet(log), 'dpkg-query': 'echo "unknown ok not-installed"' },
    });
    const result = await install({ PATH, TSBAL_BASE_URL: server.url, TSBAL_PREFIX: fresh('prefix'), TSBAL_NO_DEPS: '' });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(fs.readFileSync(log, 'utf8')).toBe(
      'update -qq\ninstall -y -qq --no-install-recommends iproute2 iputils-arping\n',
    );
  }, 60_000);

  test('leaves apt alone when the packages are installed', async () => {
    const installed = await runCommand('dpkg-query', ['-W', '-f=${Status}\n', 'iproute2', 'iputils-arping']);
    expect(installed.stdout).toBe('install ok installed\ninstall ok installed\n'); // scripts/setup.sh installs them
    const log = path.join(fresh('apt'), 'apt-get.log');
    const PATH = makeToolbox(fresh('bin'), { scripts: { 'apt-get': recordingAptGet(log) } });
    const result = await install({ PATH, TSBAL_BASE_URL: server.url, TSBAL_PREFIX: fresh('prefix'), TSBAL_NO_DEPS: '' });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(fs.existsSync(log)).toBe(false);
  }, 60_000);

  test('reports an apt-get failure after installing the binary, with exit status 1', async () => {
    const PATH = makeToolbox(fresh('bin'), {
      scripts: { 'apt-get': 'exit 100', 'dpkg-query': 'echo "unknown ok not-installed"' },
    });
    const prefix = fresh('prefix');
    const result = await install({ PATH, TSBAL_BASE_URL: server.url, TSBAL_PREFIX: prefix, TSBAL_NO_DEPS: '' });
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining('tsbal is installed, but apt-get could not install iproute2 iputils-arping'),
    });
    expect(sameBytes(path.join(prefix, 'bin', 'tsbal'), dist.seaX64)).toBe(true);
  }, 60_000);
});

describe('scripts are POSIX sh', () => {
  test('shellcheck -s sh finds nothing in install.sh, scripts/setup.sh and .ci/run', async () => {
    const result = await runCommand('shellcheck', ['-s', 'sh', 'install.sh', 'scripts/setup.sh', '.ci/run']);
    expect({ code: result.code, output: result.stdout + result.stderr }).toEqual({ code: 0, output: '' });
  });
});
