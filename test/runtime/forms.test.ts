// Smoke runs of every runtime and form tsbal ships in: Node 20 and 22 (the bundle), Bun and Deno (source and
// bundle), the Node SEA binary and the Bun binary with an empty environment and no node on PATH, and the arm64
// SEA binary under qemu-user.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import pkg from '../../package.json' with { type: 'json' };
import { runCommand } from '../harness/cli.ts';
import { dist, ensureDist } from '../harness/dist.ts';
import { makeTempDir, removeDir } from '../harness/procs.ts';
import { httpGet, programs, startDemo, stripAnsi } from './programs.ts';

const emptyDir = makeTempDir('empty-path');
afterAll(() => removeDir(emptyDir));
beforeAll(() => ensureDist(), 180_000);

for (const program of programs(dist, emptyDir)) {
  const ms = (fast: number): number => (program.slow ? fast * 4 : fast);
  const run = (args: string[], prefix: string[] = []) => {
    const [command, ...before] = prefix.length > 0 ? prefix : [program.command, ...program.args];
    return runCommand(command!, [...before, ...args], { env: program.env, timeoutMs: ms(15_000) });
  };

  describe(program.label, () => {
    test('--version prints "tsbal <version from package.json>"', async () => {
      const result = await run(['--version']);
      expect({ code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({
        code: 0,
        stdout: `tsbal ${pkg.version}\n`,
        stderr: '',
      });
    }, ms(20_000));

    test('--help lists the version and demo commands', async () => {
      const result = await run(['--help']);
      expect(result.code).toBe(0);
      const help = stripAnsi(result.stdout);
      expect(help).toContain('USAGE');
      expect(help).toMatch(/^\s*version\s+Print the tsbal version/m);
      expect(help).toMatch(/^\s*demo\s+Run two built-in backends/m);
    }, ms(20_000));

    test(`version --verbose reports ${program.form} on ${program.runtime}, a re-run line that starts tsbal again, and working worker threads`, async () => {
      const result = await run(['version', '--verbose']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const lines = result.stdout.split('\n');
      expect(lines[0]).toBe(`tsbal ${pkg.version}`);
      expect(lines).toContain(`form: ${program.form}`);
      expect(lines.find((line) => line.startsWith('runtime: '))).toStartWith(
        `runtime: ${program.runtime} ${program.runtimeVersion ?? ''}`,
      );
      expect(lines.find((line) => line.startsWith('worker threads: '))).toStartWith(
        `worker threads: ok (${program.workers}, `,
      );
      const rerun = lines.find((line) => line.startsWith('re-run: '))?.slice('re-run: '.length) ?? '';
      expect(rerun).not.toMatch(/['"\\]/); // no quoting needed for these paths, so splitting on spaces is exact
      const again = await run(['--version'], [...program.runPrefix, ...rerun.split(' ')]);
      expect({ rerun, code: again.code, stdout: again.stdout }).toEqual({
        rerun,
        code: 0,
        stdout: `tsbal ${pkg.version}\n`,
      });
    }, ms(30_000));

    test('demo serves a request through its balancer and exits 0 on SIGTERM', async () => {
      const demo = await startDemo(program, ms(15_000));
      let exit;
      try {
        const response = await httpGet(demo.url, ms(5_000));
        expect({ status: response.status, body: response.body }).toEqual({
          status: 200,
          body: expect.stringMatching(/^hello from backend[12] \(request 1, GET \/\)\n$/),
        });
      } finally {
        exit = await demo.stop();
      }
      expect({ exit, output: demo.output() }).toEqual({ exit: { code: 0, signal: null }, output: demo.output() });
    }, ms(30_000));
  });
}
