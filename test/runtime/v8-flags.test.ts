// planV8Flags decides from process facts alone; the last test re-executes a real Node 22 process with the flags.
import { describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ProcessFacts } from '../../src/runtime/self.ts';
import { planV8Flags, REEXEC_MARKER, RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';
import { REPO_ROOT } from '../harness/cli.ts';

const WANTED = ['--max-semi-space-size=2'];

const node = (over: Partial<ProcessFacts> = {}): ProcessFacts => ({
  execPath: '/usr/bin/node',
  argv: ['/usr/bin/node', '/opt/tsbal/tsbal.cjs', 'run', '-c', '/etc/perlbal/perlbal.conf'],
  execArgv: [],
  versions: { node: '22.23.3' },
  isSea: false,
  ...over,
});

describe('planV8Flags', () => {
  test('a Node script without the flags re-executes itself with them first, then its own flags, script and args', () => {
    expect(planV8Flags(node({ execArgv: ['--trace-warnings'] }), WANTED, {}, true)).toEqual({
      kind: 'reexec',
      command: '/usr/bin/node',
      argv: ['/usr/bin/node', '--max-semi-space-size=2', '--trace-warnings', '/opt/tsbal/tsbal.cjs', 'run', '-c', '/etc/perlbal/perlbal.conf'],
    });
  });

  test('nothing to do when the flags are already on the command line (or baked into the SEA binary)', () => {
    expect(planV8Flags(node({ execArgv: ['--max-semi-space-size=2'] }), WANTED, {}, true)).toEqual({ kind: 'present' });
    expect(planV8Flags(node({ isSea: true, execArgv: ['--max-semi-space-size=2'] }), WANTED, {}, true)).toEqual({ kind: 'present' });
  });

  test('Node without process.execve (20) runs on and says how to pass the flags', () => {
    const plan = planV8Flags(node({ versions: { node: '20.20.2' } }), WANTED, {}, false);
    expect(plan.kind).toBe('skip');
    expect(plan.kind === 'skip' && plan.reason).toContain('node --max-semi-space-size=2');
  });

  test('never re-executes twice, even if the runtime dropped the flags', () => {
    expect(planV8Flags(node(), WANTED, { [REEXEC_MARKER]: '1' }, true).kind).toBe('skip');
  });

  test('leaves Bun, Deno and a SEA binary built without the flags alone', () => {
    expect(planV8Flags(node({ versions: { node: '22.6.0', bun: '1.4.5' } }), WANTED, {}, true).kind).toBe('skip');
    expect(planV8Flags(node({ versions: { node: '20.11.1', deno: '2.9.6' } }), WANTED, {}, true).kind).toBe('skip');
    expect(planV8Flags(node({ isSea: true }), WANTED, {}, true).kind).toBe('skip');
  });
});

test('a Node 22 script re-executes in place (same pid) with RUN_V8_FLAGS and its arguments', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsbal-v8flags-'));
  try {
    const script = path.join(dir, 'probe.ts');
    fs.writeFileSync(
      script,
      `import { ensureRunV8Flags } from ${JSON.stringify(`${REPO_ROOT}src/runtime/v8-flags.ts`)};\n` +
        `const pid = process.env.PROBE_PID ?? String(process.pid);\n` +
        `process.env.PROBE_PID = pid;\n` +
        `const reason = ensureRunV8Flags();\n` +
        `console.log(JSON.stringify({ first: pid, now: process.pid, execArgv: process.execArgv, args: process.argv.slice(2), reason }));\n`,
    );
    const result = spawnSync(`${REPO_ROOT}node_modules/.bin/node`, [script, 'run', '-c', 'x.conf'], { encoding: 'utf8', timeout: 15_000 });
    expect(result.stderr).not.toContain('Error');
    const out = JSON.parse(result.stdout) as { first: string; now: number; execArgv: string[]; args: string[]; reason: string | null };
    expect(out.reason).toBeNull();
    expect(String(out.now)).toBe(out.first);
    expect(out.execArgv).toEqual(expect.arrayContaining([...RUN_V8_FLAGS]));
    expect(out.args).toEqual(['run', '-c', 'x.conf']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
