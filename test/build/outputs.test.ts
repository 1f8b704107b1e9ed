import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import fs from 'node:fs';
import path from 'node:path';
import { isUpToDate, recordBuilt, removeStale, SUMS_FILE, writeSums } from '../../build/outputs.ts';
import { runCommand } from '../harness/cli.ts';
import { makeTempDir, removeDir } from '../harness/procs.ts';

let dir = '';
beforeEach(() => {
  dir = makeTempDir('outputs');
});
afterEach(() => removeDir(dir));

const write = (name: string, content: string): void => fs.writeFileSync(path.join(dir, name), content);

describe('isUpToDate / recordBuilt', () => {
  test('an output counts as up to date only for the key it was recorded with', () => {
    write('tsbal-linux-x64', 'binary');
    expect(isUpToDate(dir, 'tsbal-linux-x64', 'k1')).toBe(false);
    recordBuilt(dir, 'tsbal-linux-x64', 'k1', 'bundle-a');
    expect(isUpToDate(dir, 'tsbal-linux-x64', 'k1')).toBe(true);
    expect(isUpToDate(dir, 'tsbal-linux-x64', 'k2')).toBe(false);
  });

  test('an output rewritten or removed since it was recorded is rebuilt', () => {
    write('tsbal-linux-x64', 'binary');
    recordBuilt(dir, 'tsbal-linux-x64', 'k1', 'bundle-a');
    fs.rmSync(path.join(dir, 'tsbal-linux-x64'));
    write('tsbal-linux-x64', 'other binary');
    expect(isUpToDate(dir, 'tsbal-linux-x64', 'k1')).toBe(false);
    fs.rmSync(path.join(dir, 'tsbal-linux-x64'));
    expect(isUpToDate(dir, 'tsbal-linux-x64', 'k1')).toBe(false);
  });
});

describe('removeStale', () => {
  test('removes binaries made from another bundle and keeps those made from this one', () => {
    write('tsbal-linux-x64', 'new');
    write('tsbal-bun', 'old');
    recordBuilt(dir, 'tsbal-linux-x64', 'k', 'bundle-b');
    recordBuilt(dir, 'tsbal-bun', 'k', 'bundle-a');
    expect(removeStale(dir, 'bundle-b')).toEqual(['tsbal-bun']);
    expect(fs.readdirSync(dir).filter((name) => !name.startsWith('.'))).toEqual(['tsbal-linux-x64']);
    expect(isUpToDate(dir, 'tsbal-linux-x64', 'k')).toBe(true);
  });
});

describe('writeSums', () => {
  test('writes sha256sum-format lines for every file but dotfiles and itself, which sha256sum -c accepts', async () => {
    write('tsbal.cjs', 'bundle');
    write('install.sh', '#!/bin/sh\n');
    write('.build-stamps.json', '{}');
    expect(await writeSums(dir)).toEqual(['install.sh', 'tsbal.cjs']);
    const sums = fs.readFileSync(path.join(dir, SUMS_FILE), 'utf8');
    expect(sums).toMatch(/^[0-9a-f]{64} {2}install\.sh\n[0-9a-f]{64} {2}tsbal\.cjs\n$/);
    const check = await runCommand('sha256sum', ['-c', SUMS_FILE], { cwd: dir });
    expect({ code: check.code, out: check.stdout }).toEqual({ code: 0, out: 'install.sh: OK\ntsbal.cjs: OK\n' });
  });

  test('a file changed since the last run gets its new hash, not the cached one', async () => {
    write('tsbal.cjs', 'one');
    await writeSums(dir);
    fs.rmSync(path.join(dir, 'tsbal.cjs'));
    write('tsbal.cjs', 'two, longer');
    await writeSums(dir);
    const check = await runCommand('sha256sum', ['-c', SUMS_FILE], { cwd: dir });
    expect({ code: check.code, out: check.stdout }).toEqual({ code: 0, out: 'tsbal.cjs: OK\n' });
  });
});
