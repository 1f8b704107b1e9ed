// tsbal from source (the test's own Bun running src/cli/main.ts) as one HA node in a lab namespace:
// `tsbal run -c perlbal.conf --ha-dir DIR --node NAME --state-dir DIR`, the same ha.cf/authkeys/haresources
// bytes a real heartbeat node gets. Until `tsbal run` exists, the node is `tsbal ha run` (the HA engine
// alone) with Debian's perlbal serving the VIP beside it, so the HA behaviour is tested either way.
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_ENTRY } from './cli.ts';
import { crashHost, renderPerlbalConf, writeHaDir, type HaNode, type HaSettings, type LbHost } from './hacluster.ts';
import type { Lab } from './netns.ts';
import { sleep, type ExecResult, type ProcHandle } from './proc.ts';

/** Whether this checkout's CLI has `tsbal run` (proxy and HA engine in one process). */
export const TSBAL_RUN_AVAILABLE: boolean = (() => {
  const result = spawnSync(process.execPath, [CLI_ENTRY, 'run', '--help'], { encoding: 'utf8', timeout: 15_000 });
  // citty answers `<unknown> --help` with the top-level usage and exit 0; a real subcommand's usage names it.
  const usage = `${result.stdout}${result.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
  return result.status === 0 && /USAGE\s+tsbal run\b/.test(usage);
})();

export type HaCommand = 'status' | 'standby' | 'takeover';

export interface TsbalNode extends HaNode {
  readonly impl: 'tsbal';
  readonly dir: string;
  readonly haDir: string;
  readonly stateDir: string;
  /** `tsbal ha <command>` against this node, run inside its namespace. */
  ha(command: HaCommand, extraArgs?: readonly string[]): Promise<ExecResult>;
}

/** `runArgs`: more `tsbal run` flags (e.g. `--supervise`); `perlbalConfText`: instead of the tutorial's perlbal.conf. */
export async function createTsbalNode(
  lab: Lab, baseDir: string, host: LbHost, settings: HaSettings, runArgs: readonly string[] = [], perlbalConfText?: string,
): Promise<TsbalNode> {
  const dir = join(baseDir, host);
  const haDir = join(dir, 'ha.d');
  const stateDir = join(dir, 'state');
  const perlbalConf = join(dir, 'perlbal.conf');
  await mkdir(stateDir, { recursive: true });
  await writeHaDir(haDir, settings, dir);
  await writeFile(perlbalConf, perlbalConfText ?? renderPerlbalConf());
  const nodeArgs = ['--ha-dir', haDir, '--node', host, '--state-dir', stateDir];
  let proc: ProcHandle | null = null;
  let perlbal: ProcHandle | null = null;
  let earlierLogs = '';

  const node: TsbalNode = {
    impl: 'tsbal',
    host,
    dir,
    haDir,
    stateDir,
    async start() {
      if (node.running()) throw new Error(`tsbal on ${host} is already running`);
      if (proc) earlierLogs += `--- previous run (exit ${JSON.stringify(proc.exit())})\n${proc.stdout()}${proc.stderr()}`;
      const command = TSBAL_RUN_AVAILABLE ? ['run', '-c', perlbalConf, ...runArgs] : ['ha', 'run'];
      proc = lab.spawn(host, [process.execPath, CLI_ENTRY, ...command, ...nodeArgs], { label: `tsbal ${host}` });
      if (!TSBAL_RUN_AVAILABLE) {
        perlbal = lab.spawn(host, ['perlbal', `--config=${perlbalConf}`], { label: `perlbal ${host}` });
      }
      // A config or startup error ends the process at once; report it here rather than as a missing VIP later.
      const started = proc;
      await Promise.race([started.exited, sleep(300)]);
      if (started.exit() !== null) {
        throw new Error(`tsbal on ${host} exited at start (${JSON.stringify(started.exit())}):\n${started.stdout()}${started.stderr()}`);
      }
    },
    async stop() {
      const current = proc;
      if (current && current.exit() === null) {
        current.kill('SIGTERM');
        await Promise.race([current.exited, sleep(10_000)]);
      }
      perlbal?.kill('SIGTERM');
      await lab.killAll(host, 'SIGKILL');
    },
    crash: () => crashHost(lab, host),
    running: () => proc !== null && proc.exit() === null,
    // ha.cf names a logfile; if tsbal honours it, its lines are there rather than on stdout.
    log: async () => `${earlierLogs}${proc ? proc.stdout() + proc.stderr() : ''}${await readFile(join(dir, 'ha-log'), 'utf8').catch(() => '')}`,
    ha: (command, extraArgs = []) => lab.exec(host, [process.execPath, CLI_ENTRY, 'ha', command, ...extraArgs, ...nodeArgs], { timeoutMs: 10_000 }),
  };
  return node;
}
