// Live nodefiles: a pool's `nodefile` is watched and a change applied to the running services, as Perlbal re-reads
// it (Perlbal checks lazily, at most every 3 s and by whole-second mtime; tsbal notices within about a second).
// fs.watch on the file's directory (editors replace files by rename) plus a stat poll for filesystems where events
// do not arrive (NFS, some containers); changes are debounced so a file is read once it is written. A file with a bad
// line keeps the running list and logs `file:line: message`; so does one that lists no backend at all (a half
// written file must not drain the whole pool). Backends that leave drain (upstream/members.ts).
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { PerlbalConfig } from '../config/model.ts';
import { parseNodefileText } from '../config/perlbal/nodefile.ts';
import type { ReloadTarget } from './reload.ts';
import { describeChange, setMembers } from './upstream/members.ts';

export interface NodefileTiming {
  /** How often each file is stat'ed in case no fs.watch event comes. */
  pollMs: number;
  /** Quiet time after the last event before the file is read. */
  debounceMs: number;
}

const DEFAULT_TIMING: NodefileTiming = { pollMs: 1000, debounceMs: 200 };

interface Watched {
  path: string;
  pool: string;
  /** mtime, size and inode of the version last read ('' before the first read). */
  signature: string;
  watcher: FSWatcher | null;
  debounce: ReturnType<typeof setTimeout> | null;
}

export interface NodefileWatch {
  /** Watch the nodefiles of `config` (after a reload), dropping the others. */
  sync(config: PerlbalConfig): void;
  close(): void;
}

function signatureOf(path: string): string | null {
  try {
    const s = statSync(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return null;
  }
}

export function watchNodefiles(t: ReloadTarget, timing: NodefileTiming = DEFAULT_TIMING): NodefileWatch {
  const watched = new Map<string, Watched>();
  const log = t.log;

  function apply(w: Watched): void {
    const signature = signatureOf(w.path);
    if (signature === null) {
      if (w.signature !== 'missing') log.warn(`nodefile ${w.path} of pool ${w.pool} is gone; keeping its current backends`);
      w.signature = 'missing';
      return;
    }
    if (signature === w.signature) return;
    w.signature = signature;
    let text: string;
    try {
      text = readFileSync(w.path, 'utf8');
    } catch (error) {
      log.warn(`nodefile ${w.path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)}); keeping the current backends of pool ${w.pool}`);
      return;
    }
    const parsed = parseNodefileText(text);
    const pool = t.config.pools.find((p) => p.name === w.pool);
    if (pool === undefined) return;
    if (parsed.problems.length > 0) {
      for (const p of parsed.problems) log.error(`${w.path}:${p.line}: ${p.message}`);
      log.error(`nodefile ${w.path} not applied: keeping the ${pool.nodes.length} current backends of pool ${w.pool}`);
      return;
    }
    if (parsed.nodes.length === 0) {
      if (pool.nodes.length === 0) return;
      log.warn(`nodefile ${w.path} lists no backends; keeping the ${pool.nodes.length} current ones of pool ${w.pool}`);
      return;
    }
    pool.nodes = parsed.nodes;
    for (const svc of t.services) {
      if (svc.selector !== null || svc.web !== null || svc.opts.pool !== w.pool) continue;
      const change = setMembers(svc, parsed.nodes);
      if (change.added.length + change.removed.length + change.reweighted.length > 0) {
        log.info(`service ${svc.name}: nodefile ${w.path} changed: ${describeChange(change)}`);
      }
    }
  }

  function schedule(w: Watched): void {
    if (w.debounce !== null) clearTimeout(w.debounce);
    w.debounce = setTimeout(() => {
      w.debounce = null;
      apply(w);
    }, timing.debounceMs);
    w.debounce.unref();
  }

  function start(path: string, pool: string): Watched {
    const w: Watched = { path, pool, signature: '', watcher: null, debounce: null };
    try {
      const name = basename(path);
      w.watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
        if (file === null || file === name) schedule(w);
      });
      w.watcher.on('error', () => {
        w.watcher?.close();
        w.watcher = null;
      });
    } catch {
      // The poll below still notices changes.
    }
    return w;
  }

  function stop(w: Watched): void {
    w.watcher?.close();
    if (w.debounce !== null) clearTimeout(w.debounce);
  }

  function sync(config: PerlbalConfig): void {
    const wanted = new Map<string, string>();
    for (const p of config.pools) if (p.nodefile !== null) wanted.set(`${p.name}\u0000${p.nodefile}`, p.name);
    for (const [k, w] of watched) {
      if (!wanted.has(k)) {
        stop(w);
        watched.delete(k);
      }
    }
    for (const [k, pool] of wanted) {
      if (watched.has(k)) continue;
      const w = start(k.split('\u0000')[1]!, pool);
      watched.set(k, w);
      // Read it once more now: it may have changed since the config was read (the listeners are up before this
      // runs, so an edit can land in between). An unchanged list applies as no change, silently.
      schedule(w);
    }
  }

  const poll = setInterval(() => {
    for (const w of watched.values()) if (w.debounce === null && signatureOf(w.path) !== w.signature) schedule(w);
  }, timing.pollMs);
  poll.unref();
  sync(t.config);

  return {
    sync,
    close() {
      clearInterval(poll);
      for (const w of watched.values()) stop(w);
      watched.clear();
    },
  };
}
