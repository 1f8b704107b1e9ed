import { describe, expect, test } from 'bun:test';
import { runTsbal } from '../harness/cli.ts';
import pkg from '../../package.json' with { type: 'json' };

describe('tsbal --version', () => {
  test('prints "tsbal <semver>" from package.json', async () => {
    const result = await runTsbal(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`tsbal ${pkg.version}\n`);
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
  });

  test('version subcommand prints the same line', async () => {
    const result = await runTsbal(['version']);
    expect(result.stdout).toBe(`tsbal ${pkg.version}\n`);
  });
});
