// Unknown flags and stray arguments are refused before a command runs: citty alone ignores them, so a typo such as
// `tsbal check --confg new.conf` used to check the default /etc/perlbal/perlbal.conf and report it OK.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ArgsDef } from 'citty';
import { argProblems } from '../../src/cli/strict-args.ts';
import { runTsbal } from '../harness/cli.ts';

const def = {
  config: { type: 'string', alias: 'c' },
  daemon: { type: 'boolean' },
  'ha-dir': { type: 'string' },
} as const satisfies ArgsDef;
const withWhich = { ...def, which: { type: 'positional', required: false } } as const satisfies ArgsDef;

describe('argProblems', () => {
  test('accepts known flags in every form citty parses, and the global log flags', () => {
    expect(argProblems(['-c', 'a.conf', '--daemon', '--ha-dir=/x', '--no-daemon', '--config', 'b', '--log-level', 'warn', '--log-format=json'], def)).toEqual([]);
  });
  test('an unknown flag is named with the nearest known one, once (its value is not a second complaint)', () => {
    expect(argProblems(['--confg', 'new.conf'], def)).toEqual(['unknown option --confg (did you mean --config?)']);
    expect(argProblems(['--damon=1', '--zzz'], def)).toEqual(['unknown option --damon (did you mean --daemon?)', 'unknown option --zzz']);
    expect(argProblems(['--no-config'], def)).toEqual(['unknown option --no-config (did you mean --config?)']);
  });
  test('positional arguments beyond those the command takes are refused', () => {
    expect(argProblems(['a.conf'], def)).toEqual(["unexpected argument 'a.conf'"]);
    expect(argProblems(['local'], withWhich)).toEqual([]);
    expect(argProblems(['local', 'x', '--', 'y'], withWhich)).toEqual(["unexpected arguments 'x' 'y'"]);
    expect(argProblems(['--daemon', 'a.conf'], def)).toEqual(["unexpected argument 'a.conf'"]);
  });
});

describe('tsbal with a mistyped flag', () => {
  test('check --confg FILE exits 2 naming --config, instead of checking the default perlbal.conf', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbal-strict-'));
    try {
      const conf = join(dir, 'p.conf');
      writeFileSync(conf, 'CREATE SERVICE s\n  SET role = reverse_proxy\n');
      const r = await runTsbal(['check', '--confg', conf]);
      expect({ code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({
        code: 2,
        stderr: 'tsbal check: unknown option --confg (did you mean --config?)\n(see tsbal check --help)\n',
        stdout: '',
      });
      const sub = await runTsbal(['ha', 'standby', 'local', 'extra']);
      expect({ code: sub.code, stderr: sub.stderr }).toEqual({ code: 2, stderr: "tsbal ha standby: unexpected argument 'extra'\n(see tsbal ha standby --help)\n" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bad --log-level or TSBAL_LOG_FORMAT is exit 2 with one line naming the values, not a stack trace', async () => {
    const level = await runTsbal(['check', '-c', '/nonexistent.conf', '--log-level', 'loud']);
    expect({ code: level.code, stderr: level.stderr }).toEqual({
      code: 2,
      stderr: "tsbal: unknown log level 'loud' (expected one of silent, error, warn, info, debug, trace) (from --log-level/--log-format or TSBAL_LOG_LEVEL/TSBAL_LOG_FORMAT)\n",
    });
    const format = await runTsbal(['check', '-c', '/nonexistent.conf'], { env: { ...process.env, TSBAL_LOG_FORMAT: 'xml' } });
    expect({ code: format.code, stderr: format.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/^tsbal: unknown log format 'xml' \(expected pretty or json\)[^\n]*\n$/) });
  });
});
