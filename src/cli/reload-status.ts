// How `tsbal reload` learns the outcome of the SIGHUP it sent: the running `tsbal run` keeps a small JSON file in its
// state dir, named by the pid that takes the signal (the supervisor's under --supervise), and rewrites it when a
// reload round starts and ends. `tsbal reload` reads the round number, signals, and waits for a later round to end.
// A file, not a socket: it also works for a proxy without the HA engine, and it is written atomically (rename).
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type ReloadStatus =
  | { round: number; state: 'started'; at: number }
  | { round: number; state: 'running'; at: number }
  | { round: number; state: 'ok'; at: number; summary: string }
  | { round: number; state: 'failed'; at: number; errors: string[] };

const PREFIX = 'reload-status.';

export const reloadStatusPath = (stateDir: string, pid: number): string => join(stateDir, `${PREFIX}${pid}.json`);

export function readReloadStatus(path: string): ReloadStatus | null {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as ReloadStatus;
    return typeof parsed.round === 'number' && typeof parsed.state === 'string' ? parsed : null;
  } catch {
    return null;
  }
}

/** Writes the status (temp file + rename, so a reader never sees half of it). Throws on I/O errors. */
export function writeReloadStatus(path: string, status: ReloadStatus): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(status)}\n`, { mode: 0o644 });
  renameSync(tmp, path);
}

/** Creates the state dir if needed and removes the files of processes that are gone (a crash leaves its file). */
export function prepareReloadStatusDir(stateDir: string): void {
  mkdirSync(stateDir, { recursive: true });
  for (const name of readdirSync(stateDir)) {
    const m = /^reload-status\.(\d+)\.json$/.exec(name);
    if (m === null) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(stateDir, name), { force: true });
    }
  }
}

export type ReloadOutcome = { kind: 'ok'; summary: string } | { kind: 'failed'; errors: string[] } | { kind: 'unknown'; why: string };

/** Pure: what a status read after the signal means, for a signal sent when the file said `before`. */
export function outcomeAfter(before: ReloadStatus | null, now: ReloadStatus | null): ReloadOutcome | null {
  if (now === null) return null;
  // A new engine (a supervised one restarted, which ignores SIGHUP while it starts) read the config as it is now.
  if (now.state === 'started' && before !== null && now.at > before.at) return { kind: 'ok', summary: 'the engine started again meanwhile and read the current configuration' };
  const done = before === null ? 0 : before.round;
  if (now.round <= done) return null;
  if (now.state === 'ok') return { kind: 'ok', summary: now.summary };
  if (now.state === 'failed') return { kind: 'failed', errors: now.errors };
  return null;
}

/** Polls the status file until a round later than `before` has ended, or the time is up. */
export async function waitForReloadOutcome(path: string, before: ReloadStatus | null, timeoutMs: number): Promise<ReloadOutcome> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const outcome = outcomeAfter(before, readReloadStatus(path));
    if (outcome !== null) return outcome;
    if (Date.now() >= deadline) {
      const last = readReloadStatus(path);
      return {
        kind: 'unknown',
        why:
          last === null
            ? `no outcome reported in ${path} (is the process's --state-dir another one? pass the same --state-dir)`
            : `no reload finished within ${timeoutMs / 1000} s (last: round ${last.round}, ${last.state})`,
      };
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
