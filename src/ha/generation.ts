// The heartbeat generation (`hg`): persisted in the state dir and increased on every start, so a peer never sees
// an old generation from us again (it would drop us as a replay, or restart itself on an equal one after a death).
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const GENERATION_FILE = 'hb_generation';
/** Where a real heartbeat keeps it; read once when a node migrates from heartbeat to tsbal. */
export const HEARTBEAT_GENERATION_FILE = '/var/lib/heartbeat/hb_generation';

function readGeneration(path: string): number | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read the generation file ${path}: ${(error as Error).message}`);
  }
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${path}: not a generation number: ${JSON.stringify(text.slice(0, 40))}`);
  return n;
}

/**
 * Returns this start's generation and persists it (fsync + rename) before any packet goes out. With
 * `hbgenmethod time` it is the clock, but never below the last one plus one.
 */
export function nextGeneration(stateDir: string, method: 'file' | 'time', nowSec: number, heartbeatFile = HEARTBEAT_GENERATION_FILE): number {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, GENERATION_FILE);
  const previous = Math.max(readGeneration(path) ?? -1, readGeneration(heartbeatFile) ?? -1);
  const generation = method === 'time' || previous < 0 ? Math.max(nowSec, previous + 1) : previous + 1;
  // heartbeat's format: 15 characters, right-aligned, newline.
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${String(generation).padStart(15)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return generation;
}
