import { describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../harness/cli.ts';

// The kept-alive request path is optimised by V8 for the map of the connection's ForwardContext. A field added
// after construction (as the forwarding-line caches once were, on a connection's first request) gives every new
// connection's context another map than the warmed-up ones: "wrong map" deopts of writeBackendRequestHead,
// startExchange and readHead whenever connections arrive after warm-up. Maps are V8's, so this runs under Node.
describe('ForwardContext shape', () => {
  test('a context keeps the map of a fresh one after its caches fill, and a copy has it too', () => {
    const r = spawnSync(
      path.join(REPO_ROOT, 'node_modules/.bin/node'),
      ['--experimental-strip-types', '--no-warnings', '--allow-natives-syntax', path.join(import.meta.dir, 'fixtures/forward-context-maps.ts')],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout.trim())).toEqual({ cacheFilled: true, afterRequests: true, copied: true });
  });
});
