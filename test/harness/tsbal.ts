// tsbal as a daemon: `tsbal run -c perlbal.conf` in the foreground, from source under the test's Bun, from the
// bundle under the system Node (`dist/tsbal.cjs`, what benchmarks measure), or from a built executable.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { CLI_ENTRY, REPO_ROOT } from './cli.ts';
import { type PerlbalConfProxy, reverseProxyConfFor, startWithConf } from './perlbal.ts';
import type { ReverseProxySpec } from './perlbalconf.ts';
import { RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';

export type TsbalBuild =
  | { kind: 'source' }
  | { kind: 'dist'; node?: string }
  | { kind: 'binary'; path: string };

export const DIST_BUNDLE = `${REPO_ROOT}dist/tsbal.cjs`;

/**
 * Null once this build of tsbal has a `run` subcommand (the proxy engine has landed), else why not: `tsbal run
 * --help` must print run's own usage. Tests that need it are `test.todo` until then.
 */
export function tsbalRunMissing(build: TsbalBuild = { kind: 'source' }): string | null {
  if (build.kind === 'dist' && !fs.existsSync(DIST_BUNDLE)) return `${DIST_BUNDLE} does not exist (npm run build)`;
  if (build.kind === 'binary' && !fs.existsSync(build.path)) return `${build.path} does not exist`;
  const { command: cmd, args } = command(build);
  const result = spawnSync(cmd, [...args, 'run', '--help'], { timeout: 15_000, encoding: 'utf8' });
  if (result.error) return `${cmd} run --help: ${result.error.message}`;
  // citty answers `--help` for an unknown command with the root usage and exit 0: look for run's own usage line,
  // whatever the program calls itself and however its terminal styling is encoded.
  const text = `${result.stdout}${result.stderr}`.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
  if (result.status === 0 && /^\s*USAGE\s+\S+\s+run\b/m.test(text)) return null;
  const firstLines = text.trim().split('\n').slice(0, 3).join(' | ');
  return `${cmd} run --help exited ${result.status ?? result.signal} without run's usage: ${firstLines}`;
}

export function tsbalRunExists(build: TsbalBuild = { kind: 'source' }): boolean {
  return tsbalRunMissing(build) === null;
}

/**
 * TSBAL_TEST_BIN=dist/tsbal-bun (or any built executable) runs every `tsbal run` of the tests through that file
 * instead of the build the test names: how a slice of the suite is run against a shipped binary.
 */
const TEST_BIN = process.env.TSBAL_TEST_BIN ? fs.realpathSync(process.env.TSBAL_TEST_BIN) : null;

function command(build: TsbalBuild): { command: string; args: string[] } {
  if (TEST_BIN !== null) return { command: TEST_BIN, args: [] };
  switch (build.kind) {
    case 'source':
      return { command: process.execPath, args: [CLI_ENTRY] };
    case 'dist':
      // The flags the SEA binary has baked in and Node >= 22.15 re-executes with (Node 20 cannot): measure what ships.
      return { command: build.node ?? '/usr/bin/node', args: [...RUN_V8_FLAGS, DIST_BUNDLE] };
    case 'binary':
      return { command: build.path, args: [] };
  }
}

export function launchTsbal(build: TsbalBuild) {
  return (confPath: string): { command: string; args: string[]; env: NodeJS.ProcessEnv } => {
    const { command: cmd, args } = command(build);
    return { command: cmd, args: [...args, 'run', '-c', confPath], env: { ...process.env } };
  };
}

/**
 * tsbal as one process unless its config says otherwise (TSBAL_WORKERS=1, the default a SERVER workers line
 * overrides): what these daemons are compared with is one process too, Perlbal exchange by exchange and connection
 * by connection (verify probes, max_backend_uses, `states`, queues), and HAProxy nbthread 1 in bench/proxy. Worker
 * processes are tested in test/proxy/workers/ and benched in bench/proxy/workers.ts.
 */
export function launchSingleTsbal(build: TsbalBuild): ReturnType<typeof launchTsbal> {
  const launch = launchTsbal(build);
  return (confPath) => {
    const l = launch(confPath);
    return { ...l, env: { ...l.env, TSBAL_WORKERS: '1' } };
  };
}

export function startTsbalWithConf(
  portCount: number,
  conf: Parameters<typeof startWithConf>[2],
  build: TsbalBuild = { kind: 'source' },
): Promise<PerlbalConfProxy> {
  return startWithConf('tsbal', portCount, conf, launchSingleTsbal(build));
}

export function startTsbal(spec: ReverseProxySpec, build: TsbalBuild = { kind: 'source' }): Promise<PerlbalConfProxy> {
  return startTsbalWithConf(2, reverseProxyConfFor(spec), build);
}
