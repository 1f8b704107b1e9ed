// describeSelf decides from process facts alone; forms.test.ts checks the same decisions in the real processes.
import { describe, expect, test } from 'bun:test';
import { describeSelf, type ProcessFacts } from '../../src/runtime/self.ts';

const node = (over: Partial<ProcessFacts> = {}): ProcessFacts => ({
  execPath: '/usr/bin/node',
  argv: ['/usr/bin/node', '/opt/tsbal/tsbal.cjs', 'run'],
  execArgv: [],
  versions: { node: '20.20.2' },
  isSea: false,
  ...over,
});

describe('describeSelf', () => {
  test('a Node script re-runs as node + its execArgv + the script', () => {
    expect(describeSelf(node({ execArgv: ['--max-old-space-size=512'] }))).toEqual({
      runtime: 'node',
      runtimeVersion: '20.20.2',
      form: 'node-script',
      command: '/usr/bin/node',
      args: ['--max-old-space-size=512', '/opt/tsbal/tsbal.cjs'],
    });
  });

  test('drops inspector flags so a re-executed child does not take the parent debugger port', () => {
    const self = describeSelf(node({ execArgv: ['--inspect=9229', '--inspect-brk', '--trace-warnings'] }));
    expect(self.args).toEqual(['--trace-warnings', '/opt/tsbal/tsbal.cjs']);
  });

  test('a Node SEA binary re-runs as just the executable', () => {
    const facts = node({
      execPath: '/usr/local/bin/tsbal',
      argv: ['/usr/local/bin/tsbal', 'tsbal', 'run'],
      versions: { node: '22.23.3' },
      isSea: true,
    });
    expect(describeSelf(facts)).toEqual({
      runtime: 'node',
      runtimeVersion: '22.23.3',
      form: 'node-sea',
      command: '/usr/local/bin/tsbal',
      args: [],
    });
  });

  test('Bun running a script re-runs as bun + the script', () => {
    const facts = node({
      execPath: '/usr/bin/bun',
      argv: ['/usr/bin/bun', '/src/cli/main.ts', 'demo'],
      versions: { node: '24.3.0', bun: '1.4.5' },
    });
    expect(describeSelf(facts)).toMatchObject({ form: 'bun-script', command: '/usr/bin/bun', args: ['/src/cli/main.ts'] });
  });

  test('a Bun-compiled binary (entry in /$bunfs/) re-runs as just the executable', () => {
    const facts = node({
      execPath: '/usr/local/bin/tsbal',
      argv: ['bun', '/$bunfs/root/tsbal-bun', 'run'],
      versions: { node: '24.3.0', bun: '1.4.5' },
    });
    expect(describeSelf(facts)).toEqual({
      runtime: 'bun',
      runtimeVersion: '1.4.5',
      form: 'bun-binary',
      command: '/usr/local/bin/tsbal',
      args: [],
    });
  });

  test('Deno re-runs as deno run -A + the script (it does not expose its permission flags)', () => {
    const facts = node({
      execPath: '/usr/bin/deno',
      argv: ['/usr/bin/deno', '/opt/tsbal/tsbal.cjs'],
      versions: { node: '24.2.0', deno: '2.9.6' },
    });
    expect(describeSelf(facts)).toEqual({
      runtime: 'deno',
      runtimeVersion: '2.9.6',
      form: 'deno-script',
      command: '/usr/bin/deno',
      args: ['run', '-A', '/opt/tsbal/tsbal.cjs'],
    });
  });

  test('a script form without a script path is an error, not a command that starts something else', () => {
    expect(() => describeSelf(node({ argv: ['/usr/bin/node'] }))).toThrow(/no script path/);
  });
});
