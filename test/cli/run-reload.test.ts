// The SIGHUP handler of `tsbal run` (run-reload.ts) over a real proxy and real files: what it logs for a good config,
// a bad one and a changed ha.cf, and how signals that arrive during a reload are folded.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConsola } from 'consola';
import { loadConfig } from '../../src/cli/run.ts';
import { reloadOnSignal } from '../../src/cli/run-reload.ts';
import { startProxy, type ProxyHandle } from '../../src/proxy/index.ts';
import { quietLog, rawBackend, type RawBackend } from '../proxy/helpers.ts';

let dir: string;
let backend: RawBackend;
let proxy: ProxyHandle;
const confPath = (): string => join(dir, 'perlbal.conf');

function writeConf(extra = ''): void {
  writeFileSync(
    confPath(),
    `CREATE POOL p\n  POOL p ADD 127.0.0.1:${backend.port}\nCREATE SERVICE web\n  SET listen = 127.0.0.1:0\n  SET role = reverse_proxy\n  SET pool = p\n${extra}ENABLE web\n`,
  );
}

function capture(): { lines: string[]; log: ReturnType<typeof createConsola> } {
  const lines: string[] = [];
  const log = createConsola({ level: 5, reporters: [{ log: (o) => lines.push(`${o.type}: ${o.args.join(' ')}`) }] });
  return { lines, log };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsbal-run-reload-'));
  backend = await rawBackend('b');
  writeConf();
  proxy = await startProxy(loadConfig(confPath()), { log: quietLog });
});
afterAll(async () => {
  await proxy.close({ graceful: false });
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('SIGHUP handler', () => {
  test('a config error is logged as file:line, then loudly as FAILED, and the proxy keeps its config', async () => {
    const { lines, log } = capture();
    const reload = reloadOnSignal({ configPath: confPath(), proxy, load: loadConfig, haDir: null, log });
    writeConf('  SET persist_client = maybe\n');
    await reload('SIGHUP');
    const opts = proxy.services[0]!.opts;
    expect(lines).toEqual([
      `info: SIGHUP: reloading ${confPath()}`,
      expect.stringMatching(new RegExp(`^error: ${confPath().replace(/\./g, '\\.')}:7: `)),
      `error: reload FAILED: still running the previous configuration, unchanged (fix ${confPath()} and send SIGHUP again)`,
    ]);
    expect(proxy.services[0]!.opts).toBe(opts);
  });

  test('a changed ha.cf is reported as needing a restart; the proxy part still applies', async () => {
    const haDir = mkdtempSync(join(dir, 'ha.d-'));
    writeFileSync(join(haDir, 'ha.cf'), 'keepalive 1\n');
    const { lines, log } = capture();
    writeConf();
    const reload = reloadOnSignal({ configPath: confPath(), proxy, load: loadConfig, haDir, log });
    writeFileSync(join(haDir, 'ha.cf'), 'keepalive 2\n');
    writeConf('  SET max_retries = 7\n');
    await reload('SIGHUP');
    expect(lines.slice(1)).toEqual([
      `info: reload OK (${confPath()}): services ~web (max_retries); listeners kept 1`,
      `warn: reload: ha.cf in ${haDir} changed since start; the HA engine runs on with what it started with: restart tsbal to apply HA changes`,
    ]);
    expect(proxy.services[0]!.opts.maxRetries).toBe(7);
  });

  test('signals that arrive during a reload make one more reload, however many they are', async () => {
    const { lines, log } = capture();
    writeConf();
    const reload = reloadOnSignal({ configPath: confPath(), proxy, load: loadConfig, haDir: null, log });
    await Promise.all([reload('SIGHUP'), reload('SIGHUP'), reload('SIGHUP'), reload('SIGHUP')]);
    expect(lines.filter((l) => l.includes('reloading')).length).toBe(2);
    expect(lines.filter((l) => l.startsWith('info: reload OK')).length).toBe(2);
  });
});
