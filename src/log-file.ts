// `--log-file PATH`: log entries appended to a file, one line each, for `tsbal run --daemon` (whose stdout and stderr
// are gone) and rc.local setups without journald. Reopened on SIGHUP, so logrotate can rename the file and signal
// us (no copytruncate, no lost lines).
import { closeSync, openSync, writeSync } from 'node:fs';

/**
 * Where `tsbal run --daemon` logs when no --log-file is given (a detached process has no terminal, and silence hides
 * outages), and what setup's rc.local block passes.
 */
export const DEFAULT_DAEMON_LOG_FILE = '/var/log/tsbal.log';

/** Created owner read-write, group read (adm reads /var/log), nobody else: entries name backends and clients. */
export const LOG_FILE_MODE = 0o640;

export interface LogFile {
  readonly path: string;
  /** Appends text (whole lines). Synchronous: the line is in the file before a crash or exit that follows it. */
  write(text: string): void;
  /** Closes and opens the path again: after logrotate renamed it, new lines go to a new file. */
  reopen(): void;
  close(): void;
}

function openAppend(path: string): number {
  return openSync(path, 'a', LOG_FILE_MODE);
}

/** Opens (creating) `path` for appending; throws the open error (ENOENT, EACCES, EISDIR) for the caller to report. */
export function openLogFile(path: string): LogFile {
  let fd: number | null = openAppend(path);
  return {
    path,
    write(text) {
      if (fd === null) return;
      try {
        writeSync(fd, text);
      } catch {
        // A full disk must not take the proxy down with it; the line is lost.
      }
    },
    reopen() {
      // Open the new file before closing the old one: if the open fails, lines keep going to the old file.
      const next = openAppend(path);
      if (fd !== null) closeSync(fd);
      fd = next;
    },
    close() {
      if (fd !== null) closeSync(fd);
      fd = null;
    },
  };
}
