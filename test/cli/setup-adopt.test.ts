// `tsbal setup --adopt` and `--undo` on a --root tree holding the classic recipe as the tutorial leaves it (the
// tutorial's perlbal.conf and /etc/ha.d, an rc.local that starts perlbal): the files are kept byte for byte, the
// rc.local line is turned off and tsbal's hook put in, and --undo puts every byte back. Services are not touched
// under --root; the tests say so too.
import { afterEach, describe, expect, test } from 'bun:test';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTsbal, type RunResult } from '../harness/cli.ts';

const FIX = new URL('../config/fixtures/tutorial/', import.meta.url).pathname;
const RC_LOCAL = '#!/bin/sh -e\n# started by the recipe\nmount -a\n/usr/bin/perlbal --daemon\nexit 0\n';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The tutorial's lb1 under a temp root; returns the root. */
function recipeRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'tsbal-adopt-'));
  dirs.push(root);
  mkdirSync(join(root, 'etc/ha.d'), { recursive: true });
  mkdirSync(join(root, 'etc/perlbal'), { recursive: true });
  for (const f of ['ha.cf', 'authkeys', 'haresources']) copyFileSync(join(FIX, 'ha.d', f), join(root, 'etc/ha.d', f));
  chmodSync(join(root, 'etc/ha.d/authkeys'), 0o600);
  copyFileSync(join(FIX, 'perlbal-section4.conf'), join(root, 'etc/perlbal/perlbal.conf'));
  writeFileSync(join(root, 'etc/rc.local'), RC_LOCAL, { mode: 0o755 });
  return root;
}

/** Every file under root with its bytes and mode: what "exactly as before" means. */
function snapshot(root: string, dir = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(root, dir))) {
    const rel = join(dir, name);
    const st = statSync(join(root, rel));
    if (st.isDirectory()) Object.assign(out, snapshot(root, rel));
    else out[rel] = `${(st.mode & 0o7777).toString(8)} ${readFileSync(join(root, rel), 'utf8')}`;
  }
  return out;
}

const adopt = (root: string, ...extra: string[]): Promise<RunResult> =>
  runTsbal(['setup', '--adopt', '--root', root, '--node', 'lb1.example.com', '--exec', '/usr/local/bin/tsbal', ...extra]);
const show = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe('tsbal setup --adopt --root', () => {
  test('keeps perlbal.conf and /etc/ha.d byte for byte, turns off the rc.local perlbal line, adds tsbal; --undo restores every byte', async () => {
    const root = recipeRoot();
    const before = snapshot(root);
    const r = await adopt(root, '--init', 'rc.local');
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('configuration OK');
    expect(r.stdout).toContain('found        /etc/rc.local: /usr/bin/perlbal --daemon');
    expect(r.stdout).toContain('not applied  /etc/init.d/heartbeat stop (--root)');
    expect(r.stdout).toContain('not applied  /etc/init.d/perlbal stop (--root)');
    expect(r.stdout).toContain('not applied  /usr/local/bin/tsbal run --daemon --pidfile /run/tsbal.pid --log-file /var/log/tsbal.log (--root)');
    const after = snapshot(root);
    for (const f of ['etc/perlbal/perlbal.conf', 'etc/ha.d/ha.cf', 'etc/ha.d/authkeys', 'etc/ha.d/haresources']) expect(after[f], f).toBe(before[f]!);
    const rc = readFileSync(join(root, 'etc/rc.local'), 'utf8');
    expect(rc).toContain('\n# tsbal adopt: /usr/bin/perlbal --daemon\n');
    expect(rc).toContain('\n/usr/local/bin/tsbal run --daemon --pidfile /run/tsbal.pid');
    expect(existsSync(join(root, 'var/lib/tsbal/adopt.json'))).toBe(true);
    expect((statSync(join(root, 'var/lib/tsbal/adopt.json')).mode & 0o777).toString(8)).toBe('600');

    const again = await adopt(root, '--init', 'rc.local');
    expect(again.code, show(again)).toBe(1);
    expect(again.stderr).toContain('this node was adopted already');

    const back = await runTsbal(['setup', '--adopt', '--undo', '--root', root]);
    expect(back.code, show(back)).toBe(0);
    expect(back.stdout).toContain('not applied  /usr/bin/perlbal --daemon (--root)');
    const restored = snapshot(root);
    delete restored['var/lib/tsbal/adopt.json'];
    expect(Object.fromEntries(Object.entries(restored).filter(([f]) => !f.startsWith('var/')))).toEqual(before);
    expect(existsSync(join(root, 'var/lib/tsbal/adopt.json'))).toBe(false);
  }, 30_000);

  test('with systemd, the unit is added and --undo removes it; rc.local without recipe lines is left alone', async () => {
    const root = recipeRoot();
    writeFileSync(join(root, 'etc/rc.local'), '#!/bin/sh -e\nexit 0\n', { mode: 0o755 });
    const before = snapshot(root);
    const r = await adopt(root);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('not applied  systemctl stop heartbeat.service (--root)');
    expect(r.stdout).toContain('not applied  systemctl enable tsbal.service (--root)');
    expect(readFileSync(join(root, 'etc/systemd/system/tsbal.service'), 'utf8')).toContain('\nExecStart=/usr/local/bin/tsbal run\n');
    expect(snapshot(root)['etc/rc.local']).toBe(before['etc/rc.local']!);
    const back = await runTsbal(['setup', '--adopt', '--undo', '--root', root]);
    expect(back.code, show(back)).toBe(0);
    expect(existsSync(join(root, 'etc/systemd/system/tsbal.service'))).toBe(false);
  }, 30_000);

  test('files tsbal would not run stop it before anything changes, with check\'s own messages', async () => {
    const root = recipeRoot();
    const conf = join(root, 'etc/perlbal/perlbal.conf');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('SET role            = reverse_proxy', 'SET role            = reverse_proxi'));
    const before = snapshot(root);
    const r = await adopt(root, '--init', 'rc.local');
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain(`${conf}:9:`);
    expect(r.stderr).toContain('tsbal would not run these files as they are; nothing was changed');
    expect(snapshot(root)).toEqual(before);
  }, 30_000);

  test('flags that describe a cluster are refused with --adopt; --undo without a record says so', async () => {
    const root = recipeRoot();
    const r = await adopt(root, '--vip', '192.0.2.1/24', '--force');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--vip: --adopt keeps the cluster's files as they are");
    expect(r.stderr).toContain('--force: --adopt keeps');
    const u = await runTsbal(['setup', '--adopt', '--undo', '--root', root]);
    expect(u.code).toBe(1);
    expect(u.stderr).toContain('this node was not adopted by tsbal setup');
    const bare = await runTsbal(['setup', '--undo', '--root', root]);
    expect(bare.code).toBe(2);
  }, 30_000);
});
