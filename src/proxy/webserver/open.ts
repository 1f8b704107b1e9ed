// Opening a file a web_server serves: never blocking on a FIFO, and proved inside the docroot after every symlink
// (the path of the open descriptor, so a symlink swapped after a check changes nothing).
import { close, constants, fstat, open, readlink, realpath, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { isInside } from './path.ts';

const openAsync = promisify(open);
const fstatAsync = promisify(fstat);
const closeAsync = promisify(close);
/** O_NONBLOCK: opening a FIFO in the docroot must not park a thread-pool thread forever (regular files ignore it). */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

export type Opened = { kind: 'ok'; fd: number; st: Stats } | { kind: 'error'; status: 403 | 404 | 500; why: string };

export const bytes = (latin1: string): Buffer => Buffer.from(latin1, 'latin1');

function errnoStatus(e: unknown): 403 | 404 | 500 {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG' || code === 'ELOOP') return 404;
  if (code === 'EACCES' || code === 'EPERM') return 403;
  return 500;
}

export function realpathBytes(path: string): Promise<string> {
  return new Promise((resolve, reject) =>
    realpath(bytes(path), { encoding: 'buffer' }, (err, p) => (err === null ? resolve(p.toString('latin1')) : reject(err))),
  );
}

/** Where the open file really is: /proc/self/fd on Linux (no race with a symlink swapped after the check), else realpath. */
function openedPath(fd: number, path: string): Promise<string> {
  return new Promise((resolve, reject) =>
    readlink(`/proc/self/fd/${fd}`, { encoding: 'buffer' }, (err, p) => {
      if (err === null) resolve(p.toString('latin1'));
      else realpathBytes(path).then(resolve, reject);
    }),
  );
}

export async function openInside(root: string, path: string): Promise<Opened> {
  let fd: number;
  try {
    fd = await openAsync(bytes(path), OPEN_FLAGS);
  } catch (e) {
    return { kind: 'error', status: errnoStatus(e), why: (e as Error).message };
  }
  try {
    const real = await openedPath(fd, path);
    if (!isInside(root, real)) {
      await closeAsync(fd);
      return { kind: 'error', status: 403, why: `resolves outside the docroot (${real})` };
    }
    return { kind: 'ok', fd, st: await fstatAsync(fd) };
  } catch (e) {
    close(fd, () => {});
    return { kind: 'error', status: errnoStatus(e), why: (e as Error).message };
  }
}

