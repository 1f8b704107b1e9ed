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
  /** Bytes (certificates, OCSP staples); throws like readFile. */
  readBytes(path: string): Buffer;
  /** Permission bits of what the path points at (mode & 0o7777), or null. */
  mode(path: string): number | null;
}

/** The file's text, or the error code (ENOENT, EACCES, ...) when it cannot be read. */
export function tryReadFile(fs: ConfigFs, path: string): { text: string } | { code: string } {
  try {
    return { text: fs.readFile(path) };
  } catch (e) {
    return { code: (e as NodeJS.ErrnoException).code ?? String(e) };
  }
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
  readBytes: (path) => readFileSync(path),
  mode: (path) => {
    try {
      return statSync(path).mode & 0o7777;
    } catch {
      return null;
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
    readBytes: (path) => {
      const text = files[path];
      if (text !== undefined) return Buffer.from(text, 'latin1');
      throw fsError(dirSet.has(path) ? 'EISDIR' : 'ENOENT', path);
    },
    mode: (path) => (files[path] !== undefined ? 0o600 : dirSet.has(path) ? 0o755 : null),
  };
}

/** Most alternatives one INCLUDE pattern may expand to; `{a,b}{c,d}...` grows exponentially. */
export const MAX_BRACE_EXPANSIONS = 256;

/**
 * Expands `{a,b}` alternatives (nested too; `{x}` is just x), as Perl's glob does before matching.
 * Null when the pattern would expand to more than MAX_BRACE_EXPANSIONS alternatives.
 */
export function expandBraces(pattern: string): string[] | null {
  let work = [pattern];
  const done: string[] = [];
  // Iterative, so deeply nested braces cannot overflow the stack.
  while (work.length > 0) {
    const next: string[] = [];
    for (const p of work) {
      const alts = expandFirstBrace(p);
      if (alts === null) done.push(p);
      else next.push(...alts);
      if (done.length + next.length > MAX_BRACE_EXPANSIONS) return null;
    }
    work = next;
  }
  return done;
}

/** The alternatives of the first complete `{...}` group, or null if there is none. */
function expandFirstBrace(pattern: string): string[] | null {
  for (let open = pattern.indexOf('{'); open >= 0; open = pattern.indexOf('{', open + 1)) {
    let depth = 0;
    const commas: number[] = [];
    for (let i = open; i < pattern.length; i++) {
      const c = pattern[i];
      if (c === '{') depth++;
      else if (c === ',' && depth === 1) commas.push(i);
      else if (c === '}' && --depth === 0) {
        const bounds = [open, ...commas, i];
        const head = pattern.slice(0, open);
        const tail = pattern.slice(i + 1);
        const out: string[] = [];
        for (let k = 0; k + 1 < bounds.length; k++) out.push(head + pattern.slice(bounds[k]! + 1, bounds[k + 1]) + tail);
        return out;
      }
    }
  }
  return null;
}

const hasMagic = (s: string): boolean => /[*?[]/.test(s);

/** Matches one `[...]` class at pattern[i] against ch; null when pattern[i] does not start a class. */
function matchClass(pattern: string, i: number, ch: string): { end: number; hit: boolean } | null {
  const close = pattern.indexOf(']', i + 2);
  if (close < 0) return null;
  let body = pattern.slice(i + 1, close);
  const negate = body.startsWith('!') || body.startsWith('^');
  if (negate) body = body.slice(1);
  let hit = false;
  for (let k = 0; k < body.length; k++) {
    if (body[k + 1] === '-' && k + 2 < body.length) {
      if (ch >= body[k]! && ch <= body[k + 2]!) hit = true;
      k += 2;
    } else if (body[k] === ch) hit = true;
  }
  return { end: close + 1, hit: hit !== negate };
}

/**
 * Shell wildcard match of one path segment (`*`, `?`, `[...]`), iterative with one backtrack point,
 * so a pattern like `*a*a*a*b` costs at most pattern x name steps instead of exploding like a regex.
 */
export function wildcardMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    const c = pattern[p];
    if (c === '*') {
      starP = ++p;
      starN = n;
      continue;
    }
    let step = 0;
    if (c === '?') step = 1;
    else if (c === '[') {
      const cls = matchClass(pattern, p, name[n]!);
      if (cls === null) step = name[n] === '[' ? 1 : 0;
      else if (cls.hit) step = cls.end - p;
    } else if (c !== undefined && c === name[n]) step = 1;
    if (step > 0) {
      p += step;
      n++;
      continue;
    }
    if (starP < 0) return false;
    p = starP;
    n = ++starN;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
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
export function globPattern(fs: ConfigFs, pattern: string, cwd: string): string[] | null {
  const alternatives = expandBraces(pattern);
  if (alternatives === null) return null;
  const out: string[] = [];
  for (const alt of alternatives) {
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
        for (const name of (fs.readdir(base) ?? []).sort(alphaSort)) {
          if (name.startsWith('.') && !segment.startsWith('.')) continue;
          if (wildcardMatch(segment, name)) next.push(posix.join(base, name));
        }
      }
      bases = next;
    }
    out.push(...bases.sort(alphaSort));
  }
  return out;
}
