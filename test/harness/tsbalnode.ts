// tsbal from source (the test's own Bun running src/cli/main.ts) as one HA node in a lab namespace:
// `tsbal run -c perlbal.conf --ha-dir DIR --node NAME --state-dir DIR`, the same ha.cf/authkeys/haresources
// bytes a real heartbeat node gets.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_ENTRY } from './cli.ts';
import { crashHost, renderPerlbalConf, writeHaDir, type HaNode, type HaSettings, type LbHost } from './hacluster.ts';
import type { Lab } from './netns.ts';
import { sleep, type ExecResult, type ProcHandle } from './proc.ts';

export type HaCommand = 'status' | 'standby' | 'takeover';

export interface TsbalNode extends HaNode {
  readonly impl: 'tsbal';
  readonly dir: string;
  readonly haDir: string;
  readonly stateDir: string;
  /** `tsbal ha <command>` against this node, run inside its namespace. */
  ha(command: HaCommand): Promise<ExecResult>;
}

export async function createTsbalNode(lab: Lab, baseDir: string, host: LbHost, settings: HaSettings): Promise<TsbalNode> {
  const dir = join(baseDir, host);
  const haDir = join(dir, 'ha.d');
  const stateDir = join(dir, 'state');
  const perlbalConf = join(dir, 'perlbal.conf');
  await mkdir(stateDir, { recursive: true });
  await writeHaDir(haDir, settings, dir);
  await writeFile(perlbalConf, renderPerlbalConf());
  const nodeArgs = ['--ha-dir', haDir, '--node', host, '--state-dir', stateDir];
  let proc: ProcHandle | null = null;
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
      proc = lab.spawn(host, [process.execPath, CLI_ENTRY, 'run', '-c', perlbalConf, ...nodeArgs], { label: `tsbal ${host}` });
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
      await lab.killAll(host, 'SIGKILL');
    },
    crash: () => crashHost(lab, host),
    running: () => proc !== null && proc.exit() === null,
    // ha.cf names a logfile; if tsbal honours it, its lines are there rather than on stdout.
    log: async () => `${earlierLogs}${proc ? proc.stdout() + proc.stderr() : ''}${await readFile(join(dir, 'ha-log'), 'utf8').catch(() => '')}`,
    ha: (command) => lab.exec(host, [process.execPath, CLI_ENTRY, 'ha', command, ...nodeArgs], { timeoutMs: 10_000 }),
  };
  return node;
}
