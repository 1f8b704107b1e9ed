import { defineCommand } from 'citty';
import { probeWorkerThreads } from '../runtime/probe.ts';
import { selfInvocation } from '../runtime/self.ts';
import { VERSION_LINE } from '../version.ts';

/** Quotes for a POSIX shell only where needed, so the re-run line can be pasted. */
function shellWord(word: string): string {
  return /^[\w/.,:=@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

export default defineCommand({
  meta: { name: 'version', description: 'Print the tsbal version' },
  args: {
    verbose: {
      type: 'boolean',
      description: 'also print the runtime, how tsbal starts itself again, and whether worker threads work',
    },
  },
  async run({ args }) {
    console.log(VERSION_LINE);
    if (!args.verbose) return;
    const self = selfInvocation();
    const workers = await probeWorkerThreads();
    console.log(`runtime: ${self.runtime} ${self.runtimeVersion} (${process.platform}-${process.arch})`);
    console.log(`form: ${self.form}`);
    console.log(`re-run: ${[self.command, ...self.args].map(shellWord).join(' ')}`);
    console.log(
      workers.ok
        ? `worker threads: ok (${workers.source}, ${workers.ms} ms)`
        : `worker threads: FAILED (${workers.source}): ${workers.error}`,
    );
    if (!workers.ok) process.exitCode = 1;
  },
});
