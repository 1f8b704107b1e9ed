// Runs @yao-pkg/pkg's simple SEA builder (lib-es5/sea.js, pinned at 6.23.0) for one target, in a process of its own
// because it chdirs into a temp dir while it works. It is called directly rather than through pkg's CLI, which
// has no way to pass sea-config options in simple mode: the build host's binary gets useCodeCache (V8 code cache
// for the bundle: `tsbal --version` starts about a quarter faster). Node documents that a code cache cannot be
// made for another platform, so the other arch's binary is built without it.
//   node build/pkg-sea.ts <input.cjs> <output> <node version> <arch> <useCodeCache: true|false>
import { createRequire } from 'node:module';
import { RUN_V8_FLAGS } from '../src/runtime/v8-flags.ts';

interface SeaTarget {
  nodeRange: string;
  platform: 'linux';
  arch: string;
  output: string;
}
type Sea = (
  entry: string,
  options: { targets: SeaTarget[]; seaConfig: { useCodeCache: boolean; execArgv: readonly string[] } },
) => Promise<void>;

const [input, output, version, arch, codeCache] = process.argv.slice(2);
if (!input || !output || !version || !arch || (codeCache !== 'true' && codeCache !== 'false')) {
  console.error('usage: node build/pkg-sea.ts <input.cjs> <output> <node version> <arch> <true|false>');
  process.exit(2);
}
const require = createRequire(import.meta.url);
// The binary starts with tsbal run's V8 flags (src/runtime/v8-flags.ts). The blob generator runs with them too: V8
// rejects a code cache made under other flags (and says so on every start).
process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS ?? '', ...RUN_V8_FLAGS].join(' ').trim();
const sea = (require('@yao-pkg/pkg/lib-es5/sea.js') as { default: Sea }).default;
await sea(input, {
  targets: [{ nodeRange: `node${version}`, platform: 'linux', arch, output }],
  seaConfig: { useCodeCache: codeCache === 'true', execArgv: RUN_V8_FLAGS },
});
