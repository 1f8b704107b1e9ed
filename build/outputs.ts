// Bookkeeping for dist/: which outputs are up to date (so `npm test`, which builds first, only rebakes a
// 120 MB binary when its input changed) and SHA256SUMS over the release files.
import fs from 'node:fs';
import path from 'node:path';
import { sha256File, writeFileAtomic } from './common.ts';

const STAMPS = '.build-stamps.json';
const SUMS_CACHE = '.sums-cache.json';
export const SUMS_FILE = 'SHA256SUMS';

interface FileIdentity {
  size: number;
  mtimeMs: number;
  ino: number;
}

function identity(file: string): FileIdentity | null {
  try {
    const stat = fs.statSync(file);
    return stat.isFile() ? { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino } : null;
  } catch {
    return null;
  }
}

function sameIdentity(a: FileIdentity | null, b: FileIdentity | undefined): boolean {
  return a !== null && b !== undefined && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

function readJson<T>(file: string, fallback: T): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return fallback;
  }
}

/** Per output: the key it was built for, the hash of the bundle it was made from, and the file as written. */
type Stamps = Record<string, { key: string; input: string; file: FileIdentity }>;

/**
 * True when `outDir/name` was made from inputs summarised by `key` and has not been touched since.
 * `key` covers everything the output depends on (input hash, tool and Node versions, target).
 */
export function isUpToDate(outDir: string, name: string, key: string): boolean {
  const stamp = readJson<Stamps>(path.join(outDir, STAMPS), {})[name];
  return stamp !== undefined && stamp.key === key && sameIdentity(identity(path.join(outDir, name)), stamp.file);
}

export function recordBuilt(outDir: string, name: string, key: string, input: string): void {
  const file = identity(path.join(outDir, name));
  if (!file) throw new Error(`${name} was not written`);
  const stampsFile = path.join(outDir, STAMPS);
  const stamps = readJson<Stamps>(stampsFile, {});
  stamps[name] = { key, input, file };
  writeFileAtomic(stampsFile, JSON.stringify(stamps, null, 2) + '\n');
}

/**
 * Removes binaries made from another bundle than `input` (e.g. dist/tsbal-bun after the source changed and only
 * `npm run build` ran), so dist/ and SHA256SUMS never offer a binary that does not match dist/tsbal.cjs.
 * Returns the names removed.
 */
export function removeStale(outDir: string, input: string): string[] {
  const stampsFile = path.join(outDir, STAMPS);
  const stamps = readJson<Stamps>(stampsFile, {});
  const removed = Object.keys(stamps).filter((name) => stamps[name]?.input !== input);
  if (removed.length === 0) return removed;
  for (const name of removed) {
    fs.rmSync(path.join(outDir, name), { force: true });
    delete stamps[name];
  }
  writeFileAtomic(stampsFile, JSON.stringify(stamps, null, 2) + '\n');
  return removed;
}

type SumsCache = Record<string, string>; // `${ino}:${size}:${mtimeMs}` -> sha256

/**
 * Writes `outDir/SHA256SUMS` (sha256sum's format, so `sha256sum -c SHA256SUMS` checks it) over every regular file
 * in outDir except itself and dotfiles. Hashes of unchanged files come from a cache, since the binaries are large.
 */
export async function writeSums(outDir: string): Promise<string[]> {
  const cacheFile = path.join(outDir, SUMS_CACHE);
  const cache = readJson<SumsCache>(cacheFile, {});
  const nextCache: SumsCache = {};
  const names = fs
    .readdirSync(outDir)
    .filter((name) => !name.startsWith('.') && name !== SUMS_FILE && identity(path.join(outDir, name)) !== null)
    .sort();
  const lines: string[] = [];
  for (const name of names) {
    const file = path.join(outDir, name);
    const id = identity(file);
    if (!id) continue;
    const cacheKey = `${id.ino}:${id.size}:${id.mtimeMs}`;
    const sum = cache[cacheKey] ?? nextCache[cacheKey] ?? (await sha256File(file));
    nextCache[cacheKey] = sum;
    lines.push(`${sum}  ${name}`);
  }
  writeFileAtomic(path.join(outDir, SUMS_FILE), lines.map((line) => `${line}\n`).join(''));
  writeFileAtomic(cacheFile, JSON.stringify(nextCache) + '\n');
  return names;
}
