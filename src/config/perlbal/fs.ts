// The file access the perlbal.conf executor needs (INCLUDE, nodefile, docroot, ...), injected so the
// parser stays pure: the real disk for `tsbal run`/`check`, an in-memory tree for tests.
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { posix } from 'node:path';

export type FileKind = 'file' | 'dir' | 'other';

export interface ConfigFs {
  /** Absolute path in, text out; throws an Error with `code` (ENOENT, EACCES, EISDIR...) on failure. */
  readFile(path: string): string;
  /** What is at the path, or null if nothing is. */
  kind(path: string): FileKind | null;
  /** Entry names in a directory, or null when it cannot be listed. */
  readdir(path: string): string[] | null;
  isExecutable(path: string): boolean;
}

export const nodeConfigFs: ConfigFs = {
  readFile: (path) => readFileSync(path, 'utf8'),
  kind: (path) => {
    try {
      const st = statSync(path);
      return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
    } catch {
      return null;
    }
  },
  readdir: (path) => {
    try {
      return readdirSync(path);
    } catch {
      return null;
    }
  },
  isExecutable: (path) => {
    try {
      accessSync(path, constants.X_OK);
      return statSync(path).isFile();
    } catch {
      return false;
    }
  },
};

function fsError(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${path}`), { code });
}

/**
 * An in-memory tree: `files` maps absolute paths to contents; `dirs` lists extra empty directories;
 * `executables` marks files that may be run. Parent directories are implied.
 */
export function memoryConfigFs(files: Record<string, string>, dirs: string[] = [], executables: string[] = []): ConfigFs {
  const dirSet = new Set<string>(['/']);
  const addParents = (p: string) => {
    for (let d = posix.dirname(p); !dirSet.has(d); d = posix.dirname(d)) dirSet.add(d);
  };
  for (const f of Object.keys(files)) addParents(f);
  for (const d of dirs) {
    const n = posix.normalize(d).replace(/(.)\/$/, '$1');
    dirSet.add(n);
    addParents(n);
  }
  return {
    readFile: (path) => {
      const text = files[path];
      if (text !== undefined) return text;
      throw fsError(dirSet.has(path) ? 'EISDIR' : 'ENOENT', path);
    },
    kind: (path) => (files[path] !== undefined ? 'file' : dirSet.has(path) ? 'dir' : null),
    readdir: (path) => {
      if (!dirSet.has(path)) return null;
      const prefix = path === '/' ? '/' : `${path}/`;
      const names = new Set<string>();
      for (const p of [...Object.keys(files), ...dirSet]) {
        if (p !== path && p.startsWith(prefix)) names.add(p.slice(prefix.length).split('/')[0]!);
      }
      return [...names];
    },
    isExecutable: (path) => files[path] !== undefined && executables.includes(path),
  };
}

/** Expands `{a,b}` alternatives (nested too), as Perl's glob does before matching. */
export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) return [pattern];
  let depth = 0;
  const commas: number[] = [];
  for (let i = open; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) {
        const head = pattern.slice(0, open);
        const tail = pattern.slice(i + 1);
        const bounds = [open, ...commas, i];
        const out: string[] = [];
        for (let k = 0; k + 1 < bounds.length; k++) {
          for (const t of expandBraces(head + pattern.slice(bounds[k]! + 1, bounds[k + 1]) + tail)) out.push(t);
        }
        return out;
      }
    } else if (c === ',' && depth === 1) commas.push(i);
  }
  return [pattern];
}

const hasMagic = (s: string): boolean => /[*?[]/.test(s);

function segmentRegex(segment: string): RegExp {
  let re = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close < 0) re += '\\[';
      else {
        let body = segment.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Case-insensitive alphabetical order with a stable tie-break, like Perl's GLOB_ALPHASORT. */
const alphaSort = (a: string, b: string): number => {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? -1 : x > y ? 1 : a < b ? -1 : a > b ? 1 : 0;
};

/**
 * Perl's `glob` for one whitespace-free pattern (absolute, or relative to `cwd`): braces, `*`, `?`, `[...]`,
 * hidden files only when named with a dot. A pattern without wildcards comes back as itself even if
 * nothing is there (GLOB_NOMAGIC), so the caller reports the missing file.
 */
export function globPattern(fs: ConfigFs, pattern: string, cwd: string): string[] {
  const out: string[] = [];
  for (const alt of expandBraces(pattern)) {
    const abs = posix.resolve(cwd, alt);
    if (!hasMagic(alt)) {
      out.push(abs);
      continue;
    }
    let bases = ['/'];
    for (const segment of abs.split('/').filter(Boolean)) {
      const next: string[] = [];
      for (const base of bases) {
        if (!hasMagic(segment)) {
          const p = posix.join(base, segment);
          if (fs.kind(p) !== null) next.push(p);
          continue;
        }
        const re = segmentRegex(segment);
        for (const name of (fs.readdir(base) ?? []).sort(alphaSort)) {
          if (name.startsWith('.') && !segment.startsWith('.')) continue;
          if (re.test(name)) next.push(posix.join(base, name));
        }
      }
      bases = next;
    }
    out.push(...bases.sort(alphaSort));
  }
  return out;
}
