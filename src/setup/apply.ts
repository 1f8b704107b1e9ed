// The I/O of `tsbal setup`: read what is there, write what the plan says (atomically, with modes and backups), set the
// live sysctl, and enable the systemd unit. Every failure is a SetupError of `path: message`.
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, constants, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ExistingFile, ExistingFiles, FileAction } from './plan.ts';

export class SetupError extends Error {}

const NONLOCAL_BIND = '/proc/sys/net/ipv4/ip_nonlocal_bind';

function fail(path: string, what: string, error: unknown): never {
  const e = error as NodeJS.ErrnoException;
  throw new SetupError(`${path}: ${what}: ${e.code ?? ''}${e.code ? ' ' : ''}${e.message.replace(/^\w+: /, '')}`);
}

/** Where a target path lands: itself on a live system, under the staging directory with --root. */
export function underRoot(root: string, path: string): string {
  return root === '/' ? path : join(root, path);
}

export function readExisting(root: string, paths: readonly string[]): ExistingFiles {
  const out = new Map<string, ExistingFile | null>();
  for (const path of paths) {
    const real = underRoot(root, path);
    try {
      const mode = statSync(real).mode;
      out.set(path, { content: readFileSync(real, 'utf8'), mode: mode & 0o7777 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') out.set(path, null);
      else fail(real, 'cannot read', error);
    }
  }
  return out;
}

/** Write beside the target and rename over it, so a reader sees the old file or the new one, never half of one. */
export function writeAtomically(path: string, content: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.tsbal-setup.${process.pid}`;
  try {
    // Created with the final mode (chmod again past the umask) before the secret is written into it.
    const fd = openSync(tmp, 'w', mode);
    try {
      chmodSync(tmp, mode);
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    fail(path, 'cannot write', error);
  }
}

/** The backup's name, or the first of `NAME.1`, `NAME.2`... that is free: an earlier backup is never overwritten. */
function freeBackupPath(root: string, backup: string): string {
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? backup : `${backup}.${n}`;
    if (!existsSync(underRoot(root, candidate))) return candidate;
  }
}

/** Carries out one action; returns it as done (a replace names the backup it really wrote). */
export function applyAction(root: string, action: FileAction): FileAction {
  const path = underRoot(root, action.file.path);
  switch (action.kind) {
    case 'create':
      writeAtomically(path, action.file.content, action.file.mode);
      return action;
    case 'replace': {
      const backupPath = freeBackupPath(root, action.backup);
      const backup = underRoot(root, backupPath);
      try {
        // COPYFILE_EXCL: even a backup that appeared since the check above is not overwritten.
        copyFileSync(path, backup, constants.COPYFILE_EXCL);
        chmodSync(backup, statSync(path).mode & 0o7777);
      } catch (error) {
        fail(backup, 'cannot back up', error);
      }
      writeAtomically(path, action.file.content, action.file.mode);
      return { ...action, backup: backupPath };
    }
    case 'chmod':
      try {
        chmodSync(path, action.file.mode);
      } catch (error) {
        fail(path, 'cannot chmod', error);
      }
      return action;
    case 'unchanged':
    case 'keep':
      return action;
  }
}

export type SysctlOutcome = 'set' | 'already';

/**
 * net.ipv4.ip_nonlocal_bind (or net.ipv6's, `family` 6) is per network namespace: this sets it for the namespace
 * tsbal runs in.
 */
export function applyNonlocalBind(family: 4 | 6 = 4): SysctlOutcome {
  const path = family === 6 ? NONLOCAL_BIND.replace('ipv4', 'ipv6') : NONLOCAL_BIND;
  try {
    if (readFileSync(path, 'utf8').trim() === '1') return 'already';
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, '1\n');
    } finally {
      closeSync(fd);
    }
    return 'set';
  } catch (error) {
    fail(path, `cannot set net.ipv${family}.ip_nonlocal_bind=1`, error);
  }
}

/** sd_booted(): the test systemd itself uses. */
export function systemdIsRunning(): boolean {
  return existsSync('/run/systemd/system');
}

export type SystemdOutcome = 'enabled' | 'already-enabled' | 'not-running';

function systemctl(args: string[]): { ok: boolean; output: string } {
  const r = spawnSync('systemctl', args, { encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, output: `${r.stderr ?? ''}${r.stdout ?? ''}`.trim() || (r.error?.message ?? `exit ${r.status}`) };
}

export function enableSystemdUnit(unit: string, unitChanged: boolean): SystemdOutcome {
  if (!systemdIsRunning()) return 'not-running';
  if (unitChanged) {
    const reload = systemctl(['daemon-reload']);
    if (!reload.ok) throw new SetupError(`systemctl daemon-reload: ${reload.output}`);
  }
  if (systemctl(['is-enabled', '--quiet', unit]).ok) return 'already-enabled';
  const enable = systemctl(['enable', unit]);
  if (!enable.ok) throw new SetupError(`systemctl enable ${unit}: ${enable.output}`);
  return 'enabled';
}
