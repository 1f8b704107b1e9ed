// esbuild: src/cli/main.ts -> dist/tsbal.cjs, one CommonJS file that runs on Node >= 20, Bun and Deno,
// and is the input for the single-executable builds.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/tsbal.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: false,
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
});
