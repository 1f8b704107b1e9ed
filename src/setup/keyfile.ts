// `tsbal setup --auth-key-file F`: the shared key from a file (or standard input) instead of the command line, so it
// stays out of shell history and `ps`. Pure: the caller reads the file.
import { readAuthKeys } from '../config/authkeys.ts';

export type AuthMethodChoice = 'sha1' | 'md5';

/** The join line pipes the key in with printf (a shell builtin, so never in `ps`) and names standard input. */
export const STDIN_KEY_FILE = '/dev/stdin';

export type KeyFromFile = { ok: true; key: string; method: AuthMethodChoice | null } | { ok: false; error: string };

/**
 * The key in a `--auth-key-file`: either a file holding just the key (one word; blank lines and `#` comments
 * skipped), or a heartbeat authkeys file, whose active key and method are taken.
 */
export function keyFromFileText(text: string, path: string): KeyFromFile {
  const where = `--auth-key-file ${path}`;
  if (/^\s*auth\s+\d+/m.test(text)) {
    const parsed = readAuthKeys(text, path);
    const error = parsed.diagnostics.find((d) => d.severity === 'error');
    if (error !== undefined) return { ok: false, error: `${where}: line ${error.line}: ${error.message}` };
    const active = parsed.value.keys.find((k) => k.index === parsed.value.activeIndex);
    if (active?.method === 'crc') return { ok: false, error: `${where}: the active key is crc, which authenticates nothing; use sha1` };
    if (active === undefined || active.key === '') return { ok: false, error: `${where}: an authkeys file without an active key` };
    return { ok: true, key: active.key, method: active.method };
  }
  const words = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (words.length === 0) return { ok: false, error: `${where}: empty (expected the key, one word on one line)` };
  if (words.length > 1 || /\s/.test(words[0]!)) return { ok: false, error: `${where}: expected one word (the key) on one line, or an authkeys file` };
  return { ok: true, key: words[0]!, method: null };
}

