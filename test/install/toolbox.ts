// A PATH directory with every command of the system PATH except some (no curl, no wget) and with some replaced
// by small scripts (a `uname` that reports another machine). install.sh then meets a machine that differs from
// this one only in what the test changed.
import fs from 'node:fs';
import path from 'node:path';

const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
export const STANDARD_PATH = SYSTEM_PATH.join(':');

export function makeToolbox(
  dir: string,
  options: { without?: readonly string[]; scripts?: Readonly<Record<string, string>> } = {},
): string {
  fs.mkdirSync(dir, { recursive: true });
  const skip = new Set([...(options.without ?? []), ...Object.keys(options.scripts ?? {})]);
  const added = new Set<string>();
  for (const systemDir of SYSTEM_PATH) {
    let names: string[];
    try {
      names = fs.readdirSync(systemDir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (skip.has(name) || added.has(name)) continue;
      fs.symlinkSync(path.join(systemDir, name), path.join(dir, name));
      added.add(name);
    }
  }
  for (const [name, body] of Object.entries(options.scripts ?? {})) {
    fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
  return dir;
}

/** A `uname` that reports `machine` for -m and defers everything else to the real one. */
export function unameReporting(machine: string): string {
  return `if [ "\${1:-}" = -m ]; then echo ${machine}; else exec /usr/bin/uname "$@"; fi`;
}
