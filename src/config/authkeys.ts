// /etc/ha.d/authkeys with heartbeat's rules (hb auth.c parse_authfile):
// `auth N` picks the outbound key and must come before the line that defines key N.
import type { AuthKey, AuthKeys, AuthMethod } from './model.ts';
import { createDiagnostics, splitLines, throwIfErrors, warningsOf, type Parsed } from './diagnostics.ts';
import { didYouMean } from './suggest.ts';

const METHODS: readonly AuthMethod[] = ['sha1', 'md5', 'crc'];
const MAX_INDEX = 15;

/** heartbeat's own refusal, word for word, so it can be searched for. */
export function badPermissionsMessage(file: string): string {
  return `Bad permissions on keyfile [${file}], 600 recommended.`;
}

/** heartbeat refuses the file when group or other may read it (S_IRGRP | S_IROTH); write bits are not checked. */
export function authkeysModeIsSafe(mode: number): boolean {
  return (mode & 0o044) === 0;
}

export function readAuthKeys(text: string, file: string): Parsed<AuthKeys> {
  const d = createDiagnostics();
  const keys = new Map<number, AuthKey>();
  let activeIndex: number | null = null;
  let activeLine = 0;
  let selected = false;
  /** Indexes whose line was rejected, so a missing active key is not reported twice. */
  const rejected = new Set<number>();
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const loc = { file, line: i + 1 };
    const fields = raw.split(/\s+/);
    const first = fields[0]!;
    if (first === 'auth') {
      const n = fields[1];
      if (n === undefined || !/^\d+$/.test(n)) {
        d.error(loc, `Invalid auth line [${raw}]`, 'auth N, where N is a key index from 0 to 15');
        continue;
      }
      if (Number(n) > MAX_INDEX) {
        d.error(loc, `Invalid authnum [${n}]`, 'key indexes go from 0 to 15');
        continue;
      }
      // heartbeat reads `auth %d` and ignores the rest of the line.
      if (fields.length > 2 && !fields[2]!.startsWith('#')) d.warn(loc, `text after 'auth ${n}' is ignored ('${fields.slice(2).join(' ')}')`);
      if (activeIndex !== null) d.warn(loc, `second auth line; it replaces 'auth ${activeIndex}' from line ${activeLine}`);
      activeIndex = Number(n);
      activeLine = loc.line;
      selected = false;
      continue;
    }
    if (!/^\d+$/.test(first)) {
      const hint = first.toLowerCase() === 'auth' ? 'write auth in lowercase' : didYouMean(first, ['auth']);
      d.error(loc, `Auth line [${raw}] is invalid.`, hint ?? 'lines are auth N or INDEX METHOD [KEY]');
      continue;
    }
    const index = Number(first);
    const reject = (message: string, hint: string | undefined) => {
      d.error(loc, message, hint);
      rejected.add(index);
    };
    if (index > MAX_INDEX) {
      reject(`Auth line [${raw}] is invalid.`, `key indexes go from 0 to ${MAX_INDEX}`);
      continue;
    }
    const method = fields[1];
    if (method === undefined) {
      reject(`Auth line [${raw}] is invalid.`, 'INDEX METHOD [KEY], e.g. 1 sha1 SomeLongSecret');
      continue;
    }
    if (!(METHODS as readonly string[]).includes(method)) {
      reject(`Invalid authtype [${method}]`, didYouMean(method, METHODS) ?? 'methods are sha1, md5 and crc');
      continue;
    }
    const key = fields[2];
    if (method === 'crc' && key !== undefined) {
      reject(`Auth method [crc] doesn't use a key`, 'remove the key, or use sha1 with it');
      continue;
    }
    if (method !== 'crc' && key === undefined) {
      reject(`Auth method [${method}] requires a key`, `${index} ${method} SomeLongSecret`);
      continue;
    }
    if (fields.length > 3) {
      d.warn(loc, `text after the key is ignored ('${fields.slice(3).join(' ')}')`, 'keys cannot contain spaces');
    }
    if (keys.has(index)) d.warn(loc, `key ${index} is defined twice; the later line wins`);
    keys.set(index, { index, method: method as AuthMethod, key: key ?? '' });
    if (index === activeIndex) selected = true;
    if (method === 'crc') d.warn(loc, 'crc authenticates nothing: anyone on the network can forge heartbeats', 'use sha1');
  }
  const fileLoc = { file, line: 0 };
  if (activeIndex === null) {
    d.error(fileLoc, `Missing auth directive in keyfile [${file}]`, 'add a first line: auth 1');
  } else if (!selected && !rejected.has(activeIndex)) {
    const hint = keys.has(activeIndex)
      ? `move 'auth ${activeIndex}' (line ${activeLine}) above the line defining key ${activeIndex}`
      : `define it, e.g. ${activeIndex} sha1 SomeLongSecret`;
    d.error({ file, line: activeLine }, `Auth Key [${activeIndex}] not found in keyfile [${file}]`, hint);
  }
  const value: AuthKeys = {
    file,
    activeIndex: activeIndex ?? 0,
    keys: [...keys.values()].sort((a, b) => a.index - b.index),
    warnings: warningsOf(d.list),
  };
  return { value, diagnostics: d.list };
}

/** Parses authkeys text; throws a ConfigError listing every error. The file mode is checked by loadHaDir. */
export function parseAuthKeys(text: string, file: string): AuthKeys {
  const { value, diagnostics } = readAuthKeys(text, file);
  throwIfErrors(diagnostics);
  return value;
}
