// A lab host with a filesystem of its own, so what a test installs or configures there (an /etc, /usr/local/bin,
// /var/lib, logs) changes only that host, as on a real machine: a holder process in the host's network namespace
// with its own mount and UTS namespaces, where chosen directories are overlays over the machine's (the machine's
// files seen, writes kept in the host's private upper dir) or private empty directories. Commands run inside with
// nsenter into the holder's mount and UTS namespaces.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab, LabHost } from './netns.ts';
import { execProc, waitFor, type ExecResult, type ProcHandle } from './proc.ts';

export interface HostFilesystem {
  /** Overlaid over the machine's directory: reads see the machine's files, writes stay in `${dir}/<name>-up`. */
  overlays: readonly string[];
  /** Replaced by an empty private directory (`${dir}/<name>`): /run, /var/log. */
  privates: readonly string[];
  /** More shell lines run in the new namespaces before the host is ready (bind mounts over single files...). */
  extra?: readonly string[];
}

export interface HostNs {
  readonly host: LabHost;
  readonly dir: string;
  /** Runs argv inside the host (its mounts, its hostname, its network namespace) to completion. */
  exec(argv: readonly string[], timeoutMs?: number): Promise<ExecResult>;
  /** Starts argv inside the host; the handle's pid is the command's own (nsenter execs it). */
  spawn(argv: readonly string[], label?: string): ProcHandle;
}

/** The name a mounted directory's private files get under the host's dir: `/var/lib` → `var-lib`. */
const slug = (path: string): string => path.replace(/^\//, '').replace(/\//g, '-');

export async function createHostNs(lab: Lab, host: LabHost, dir: string, fs: HostFilesystem): Promise<HostNs> {
  const lines = ['set -e', `hostname ${host}`];
  for (const path of fs.overlays) {
    const up = join(dir, `${slug(path)}-up`);
    const work = join(dir, `${slug(path)}-work`);
    await mkdir(up, { recursive: true });
    await mkdir(work, { recursive: true });
    lines.push(`mount -t overlay overlay -o lowerdir=${path},upperdir=${up},workdir=${work} ${path}`);
  }
  for (const path of fs.privates) {
    const own = join(dir, slug(path));
    await mkdir(own, { recursive: true });
    lines.push(`mount --bind ${own} ${path}`);
  }
  lines.push(...(fs.extra ?? []), 'echo ready', 'exec sleep 900');
  // Bounded: the lab's teardown kills it long before the sleep ends.
  const holder: ProcHandle = lab.spawn(host, ['unshare', '--mount', '--uts', '--propagation', 'private', 'bash', '-c', lines.join('\n')], { label: `host ${host} (mounts)` });
  await waitFor(`host ${host} to mount its files`, () => (holder.stdout().includes('ready') ? true : holder.exit() !== null ? false : undefined), {
    timeoutMs: 10_000,
    describe: async () => `exit ${JSON.stringify(holder.exit())}: ${holder.stdout()}${holder.stderr()}`,
  });
  if (holder.exit() !== null) throw new Error(`host ${host}: ${holder.stderr()}`);
  const enter = ['nsenter', '--target', String(holder.pid), '--mount', '--uts', '--'];
  return {
    host,
    dir,
    exec: (argv, timeoutMs = 60_000) => execProc([...enter.slice(0, -1), '--net', '--', ...argv], { timeoutMs }),
    spawn: (argv, label) => lab.spawn(host, [...enter, ...argv], { label: label ?? `${host}: ${argv.join(' ')}` }),
  };
}
