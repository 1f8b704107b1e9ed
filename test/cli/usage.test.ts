// --help into a pipe is plain text (no ANSI escapes), and the top-level help names --version and the global flags.
import { describe, expect, test } from 'bun:test';
import { runTsbal } from '../harness/cli.ts';
import { stripAnsi, wantsColour } from '../../src/cli/usage.ts';

// Without CI/TEST/NO_COLOR, which make citty drop colour on its own: this is a sysadmin's shell piping to less.
function shellEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', ...extra };
  for (const k of ['CI', 'TEST', 'NO_COLOR', 'FORCE_COLOR']) if (!(k in extra)) delete env[k];
  return env;
}

describe('help output', () => {
  test('tsbal --help into a pipe has no escape codes and lists --version, --log-level and --log-format', async () => {
    const r = await runTsbal(['--help'], { env: shellEnv() });
    expect(r.code).toBe(0);
    expect(JSON.stringify(r.stdout.match(/\u001B\[[0-9;]*m/g) ?? [])).toBe('[]');
    expect(r.stdout).toContain('--version');
    expect(r.stdout).toContain('--log-level');
    expect(r.stdout).toContain('--log-format');
    expect(r.stdout).toContain('USAGE tsbal');
  });

  test('tsbal run --help and tsbal ha --help into a pipe have no escape codes', async () => {
    for (const args of [['run', '--help'], ['ha', '--help']]) {
      const r = await runTsbal(args, { env: shellEnv() });
      expect({ args, code: r.code, escapes: (r.stdout.match(/\u001B\[[0-9;]*m/g) ?? []).length }).toEqual({ args, code: 0, escapes: 0 });
      expect(r.stdout).toContain('USAGE');
    }
  });

  test('colour only on a terminal, and never with NO_COLOR set to any value or TERM=dumb', () => {
    expect(wantsColour({ isTTY: true }, {})).toBe(true);
    expect(wantsColour({ isTTY: false }, {})).toBe(false);
    expect(wantsColour({}, {})).toBe(false);
    expect(wantsColour({ isTTY: true }, { NO_COLOR: 'yes' })).toBe(false);
    expect(wantsColour({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
    expect(wantsColour({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(stripAnsi('\u001B[4m\u001B[1mUSAGE\u001B[22m\u001B[24m run')).toBe('USAGE run');
  });
});
