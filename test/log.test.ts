// The pretty log format off a terminal (journald, a log file, --daemon): one line per entry, as a real child process
// with a piped stderr and none of the variables (NODE_ENV=test, CI) that make consola pick its basic reporter anyway.
import { expect, test } from 'bun:test';
import { fileURLToPath } from 'node:url';
import { runCommand } from './harness/cli.ts';

const LOG_TS = fileURLToPath(new URL('../src/log.ts', import.meta.url));

test('off a terminal, a warning is one [warn] line with its tag: no blank lines around it, no icons', async () => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['NODE_ENV', 'CI', 'TEST', 'BUN_ENV']) delete env[name];
  const script = `import { log } from ${JSON.stringify(LOG_TS)};\nlog.withTag('proxy').info('started');\nlog.withTag('proxy').warn('backend 127.0.0.1:1 down');\nlog.error('bad');\n`;
  const r = await runCommand(process.execPath, ['-e', script], { env });
  // consola writes info to stdout, warnings and errors to stderr.
  expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
    code: 0,
    stdout: '[info] [proxy] started\n',
    stderr: '[warn] [proxy] backend 127.0.0.1:1 down\n[error] bad\n',
  });
});
