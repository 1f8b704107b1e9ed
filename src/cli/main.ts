#!/usr/bin/env node
// Entry point: `tsbal <command>`. Subcommands are loaded lazily so `tsbal --version` stays fast.
import { defineCommand, runMain } from 'citty';
import { VERSION, VERSION_LINE } from '../version.ts';
import { strictCommand } from './strict-args.ts';
import { showUsage } from './usage.ts';

const main = defineCommand({
  meta: {
    name: 'tsbal',
    version: VERSION,
    description: 'HTTP load balancer and heartbeat-compatible HA in one binary (reads perlbal.conf and /etc/ha.d)',
  },
  subCommands: {
    version: () => import('./version.ts').then((m) => m.default),
    demo: () => import('./demo.ts').then((m) => m.default),
    ha: () => import('./ha.ts').then((m) => m.default),
    anycast: () => import('./anycast.ts').then((m) => m.default),
    check: () => import('./check.ts').then((m) => m.default),
    run: () => import('./run.ts').then((m) => m.default),
    reload: () => import('./reload.ts').then((m) => m.default),
    status: () => import('./status.ts').then((m) => m.default),
    setup: () => import('./setup.ts').then((m) => m.default),
  },
});

export async function cli(argv: string[]): Promise<void> {
  // A worker process of SERVER workers (src/proxy/workers/): its owner started this program again to serve.
  if (process.env.TSBAL_WORKER === '1') {
    (await import('../proxy/workers/worker.ts')).runWorker();
    return;
  }
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    console.log(VERSION_LINE);
    return;
  }
  await runMain(strictCommand(main, 'tsbal'), { rawArgs: argv, showUsage });
}

cli(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
