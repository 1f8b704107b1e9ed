import { describe, expect, test } from 'bun:test';
import { authkeysModeIsSafe, parseAuthKeys } from '../../src/config/authkeys.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';
import { expectConfigError } from './helpers.ts';

const F = '/etc/ha.d/authkeys';

describe('parseAuthKeys', () => {
  test('loads the tutorial authkeys: auth 3 with an md5 key', () => {
    expect(parseAuthKeys('auth 3\n3 md5 somerandomstring\n', F)).toEqual({
      file: F,
      activeIndex: 3,
      keys: [{ index: 3, method: 'md5', key: 'somerandomstring' }],
      warnings: [],
    });
  });

  test('several keys, comments and blank lines; crc takes no key and is flagged', () => {
    const keys = parseAuthKeys('# keys\nauth 1\n\n1 sha1 Secret#1\n2 md5 other\n3 crc\n', F);
    expect(keys.activeIndex).toBe(1);
    expect(keys.keys.map((k) => [k.index, k.method, k.key])).toEqual([[1, 'sha1', 'Secret#1'], [2, 'md5', 'other'], [3, 'crc', '']]);
    expect(keys.warnings?.map(formatDiagnostic)).toEqual([
      `${F}:6: warning: crc authenticates nothing: anyone on the network can forge heartbeats (use sha1)`,
    ]);
  });

  test('index 0 is accepted (the code allows 0-15)', () => {
    expect(parseAuthKeys('auth 0\n0 sha1 k\n', F).activeIndex).toBe(0);
  });

  test('file mode: group or other read bits refuse the file; write bits do not', () => {
    expect(authkeysModeIsSafe(0o600)).toBe(true);
    expect(authkeysModeIsSafe(0o602)).toBe(true);
    expect(authkeysModeIsSafe(0o400)).toBe(true);
    expect(authkeysModeIsSafe(0o640)).toBe(false);
    expect(authkeysModeIsSafe(0o644)).toBe(false);
    expect(authkeysModeIsSafe(0o604)).toBe(false);
  });
});

describe('authkeys errors (golden)', () => {
  test('auth after the key it selects is heartbeat\'s "not found"', () => {
    expectConfigError(() => parseAuthKeys('1 sha1 abc\nauth 1\n', F), [
      `${F}:2: Auth Key [1] not found in keyfile [${F}] (move 'auth 1' (line 2) above the line defining key 1)`,
    ]);
  });

  test('every bad line is listed', () => {
    const text = ['auth x', '1 sha256 k', '2 md5', '3 crc key', 'Auth 1', '16 sha1 k', 'junk', '4'].join('\n');
    expectConfigError(() => parseAuthKeys(text, F), [
      `${F}:1: Invalid auth line [auth x] (auth N, where N is a key index from 0 to 15)`,
      `${F}:2: Invalid authtype [sha256] (methods are sha1, md5 and crc)`,
      `${F}:3: Auth method [md5] requires a key (2 md5 SomeLongSecret)`,
      `${F}:4: Auth method [crc] doesn't use a key (remove the key, or use sha1 with it)`,
      `${F}:5: Auth line [Auth 1] is invalid. (write auth in lowercase)`,
      `${F}:6: Auth line [16 sha1 k] is invalid. (key indexes go from 0 to 15)`,
      `${F}:7: Auth line [junk] is invalid. (lines are auth N or INDEX METHOD [KEY])`,
      `${F}:8: Auth line [4] is invalid. (INDEX METHOD [KEY], e.g. 1 sha1 SomeLongSecret)`,
      `${F}: Missing auth directive in keyfile [${F}] (add a first line: auth 1)`,
    ]);
  });

  test('a near-miss method name gets a suggestion', () => {
    expectConfigError(() => parseAuthKeys('auth 1\n1 shal k\n', F), [`${F}:2: Invalid authtype [shal] (did you mean sha1?)`]);
  });

  test('auth naming an undefined key', () => {
    expectConfigError(() => parseAuthKeys('auth 2\n1 sha1 k\n', F), [
      `${F}:1: Auth Key [2] not found in keyfile [${F}] (define it, e.g. 2 sha1 SomeLongSecret)`,
    ]);
  });
});
