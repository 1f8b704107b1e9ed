// `tsbal setup --root <tmp>` as a real process, then `tsbal check` on what it wrote. Never touches the host's /etc.
import { afterEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, runTsbal, type RunResult } from '../harness/cli.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmpRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsbal-setup-'));
  dirs.push(dir);
  return dir;
}

const FLAGS = ['--node', 'lb1', '--peer', 'lb2', '--vip', '198.18.0.99/24', '--iface', 'eth0', '--backend', '198.18.0.11:8080', '--backend', '198.18.0.12'];

const setup = (root: string, ...extra: string[]): Promise<RunResult> => runTsbal(['setup', ...FLAGS, '--root', root, ...extra]);
const check = (root: string): Promise<RunResult> =>
  runTsbal(['check', '-c', join(root, 'etc/perlbal/perlbal.conf'), '--ha-dir', join(root, 'etc/ha.d'), '--node', 'lb1']);
const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);
const show = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe('tsbal setup --root', () => {
  test('writes every file of the recipe, authkeys at 600, and tsbal check passes on them', async () => {
    const root = tmpRoot();
    const r = await setup(root);
    expect(r.code, show(r)).toBe(0);
    for (const f of ['etc/sysctl.d/60-tsbal.conf', 'etc/ha.d/ha.cf', 'etc/ha.d/haresources', 'etc/perlbal/perlbal.conf', 'etc/systemd/system/tsbal.service']) {
      expect(mode(join(root, f)), f).toBe('644');
    }
    expect(mode(join(root, 'etc/ha.d/authkeys'))).toBe('600');
    expect(readFileSync(join(root, 'etc/ha.d/authkeys'), 'utf8')).toMatch(/\nauth 1\n1 sha1 [0-9a-f]{64}\n$/);
    expect(readFileSync(join(root, 'etc/sysctl.d/60-tsbal.conf'), 'utf8')).toContain('\nnet.ipv4.ip_nonlocal_bind = 1\n');
    expect(r.stdout).toContain('scp -p /etc/ha.d/authkeys root@lb2:/etc/ha.d/authkeys');
    expect(r.stdout).toContain('not applied  net.ipv4.ip_nonlocal_bind (--root;');
    const c = await check(root);
    expect(c.code, show(c)).toBe(0);
    expect(c.stdout).toContain('resources  lb1: VIP 198.18.0.99/24 on eth0 (IPaddr)');
    expect(c.stdout).toContain('pool    backends    random        198.18.0.11:8080, 198.18.0.12:80');
  }, 30_000);

  test('a second run changes nothing and says so', async () => {
    const root = tmpRoot();
    expect((await setup(root)).code).toBe(0);
    const key = readFileSync(join(root, 'etc/ha.d/authkeys'), 'utf8');
    const second = await setup(root);
    expect(second.code, show(second)).toBe(0);
    expect(second.stdout).toContain('nothing to change: this node is already set up with these flags');
    expect(second.stdout).not.toMatch(/^(created|replaced)/m);
    expect(readFileSync(join(root, 'etc/ha.d/authkeys'), 'utf8')).toBe(key);
    expect(existsSync(join(root, 'etc/ha.d/authkeys.bak'))).toBe(false);
  }, 30_000);

  test('refuses to overwrite a file with other content; --force replaces it and keeps a .bak', async () => {
    const root = tmpRoot();
    const conf = join(root, 'etc/perlbal/perlbal.conf');
    mkdirSync(join(root, 'etc/perlbal'), { recursive: true });
    writeFileSync(conf, '# my own\n');
    const kept = await setup(root);
    expect(kept.code, show(kept)).toBe(0);
    expect(kept.stdout).toContain(`kept      ${conf}: exists with other content; kept (run with --force`);
    expect(readFileSync(conf, 'utf8')).toBe('# my own\n');
    // Run again: nothing is written, but the node is not "set up with these flags" while its own file is kept.
    const again = await setup(root);
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toContain('nothing written: 1 file kept with content of its own (--force replaces it, saving a .bak)');
    expect(again.stdout).not.toContain('already set up with these flags');

    const forced = await setup(root, '--force', '--port', '8080');
    expect(forced.code, show(forced)).toBe(0);
    expect(forced.stdout).toContain(`replaced  ${conf} (old one saved as ${conf}.bak)`);
    expect(readFileSync(`${conf}.bak`, 'utf8')).toBe('# my own\n');
    expect(readFileSync(conf, 'utf8')).toContain('SET listen          = 198.18.0.99:8080');
    // --force without --auth-key keeps the cluster's key: authkeys is unchanged, not rewritten.
    expect(forced.stdout).toContain(`unchanged ${join(root, 'etc/ha.d/authkeys')}`);
  }, 30_000);

  test('never overwrites an existing key; --auth-key with --force replaces it', async () => {
    const root = tmpRoot();
    const authkeys = join(root, 'etc/ha.d/authkeys');
    mkdirSync(join(root, 'etc/ha.d'), { recursive: true });
    writeFileSync(authkeys, 'auth 2\n2 sha1 SharedFromLb1\n', { mode: 0o600 });
    const r = await setup(root, '--auth-key', 'Other');
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain('--auth-key differs from the key in the existing file, which is kept');
    expect(readFileSync(authkeys, 'utf8')).toBe('auth 2\n2 sha1 SharedFromLb1\n');
    const forced = await setup(root, '--auth-key', 'Other', '--force');
    expect(forced.code, show(forced)).toBe(0);
    expect(readFileSync(authkeys, 'utf8')).toEndWith('\nauth 1\n1 sha1 Other\n');
    expect(mode(authkeys)).toBe('600');
    expect(mode(`${authkeys}.bak`)).toBe('600');
  }, 30_000);

  test('the unit passes systemd-analyze verify and starts the --exec path', async () => {
    const root = tmpRoot();
    expect((await setup(root, '--exec', '/bin/true')).code).toBe(0);
    const unit = join(root, 'etc/systemd/system/tsbal.service');
    expect(readFileSync(unit, 'utf8')).toContain('\nExecStart=/bin/true run\n');
    const verify = await runCommand('systemd-analyze', ['verify', unit], { timeoutMs: 20_000 });
    expect({ code: verify.code, stderr: verify.stderr }).toEqual({ code: 0, stderr: '' });
  }, 30_000);

  test('--dry-run prints the files without the key and writes nothing', async () => {
    const root = tmpRoot();
    const r = await setup(root, '--dry-run');
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain(`would create  ${join(root, 'etc/ha.d/authkeys')} (mode 600)`);
    expect(r.stdout).toContain('    | 1 sha1 <secret>');
    expect(r.stdout).toContain('    |   POOL backends ADD 198.18.0.12:80');
    expect(r.stdout).toContain('dry run: nothing was written');
    expect(existsSync(join(root, 'etc'))).toBe(false);
  }, 30_000);

  test('--init rc.local adds one marked block, never two', async () => {
    const root = tmpRoot();
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc/rc.local'), '#!/bin/sh -e\necho mine\nexit 0\n', { mode: 0o755 });
    const first = await setup(root, '--init', 'rc.local', '--exec', '/usr/local/bin/tsbal');
    expect(first.code).toBe(0);
    // It ends with the exact command to start tsbal now: rc.local runs only at boot.
    expect(first.stdout.trimEnd().split('\n').slice(-2)).toEqual([
      'start it now (/etc/rc.local runs the same line at boot):',
      '  /usr/local/bin/tsbal run --daemon --pidfile /run/tsbal.pid --log-file /var/log/tsbal.log',
    ]);
    const second = await setup(root, '--init', 'rc.local', '--exec', '/usr/local/bin/tsbal');
    expect(second.stdout).toContain('nothing to change');
    const text = readFileSync(join(root, 'etc/rc.local'), 'utf8');
    expect(text.match(/# BEGIN tsbal/g)?.length).toBe(1);
    expect(text).toMatch(/^#!\/bin\/sh -e\necho mine\n# BEGIN tsbal .*\n.* run --daemon --pidfile \/run\/tsbal\.pid --log-file \/var\/log\/tsbal\.log \|\| echo .*\n# END tsbal\n\nexit 0\n$/);
    expect(mode(join(root, 'etc/rc.local'))).toBe('755');
    expect(existsSync(join(root, 'etc/systemd'))).toBe(false);
  }, 30_000);

  test('bad flags: exit 2, every problem listed, nothing written', async () => {
    const root = tmpRoot();
    const r = await runTsbal(['setup', '--node', 'lb1', '--vip', '198.18.0.300/24', '--root', root]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--peer is required (e.g. --peer lb2)');
    expect(r.stderr).toContain('--vip 198.18.0.300/24: not an IPv4 address with an optional /prefix');
    expect(r.stderr).toContain('--backend is required');
    expect(existsSync(join(root, 'etc'))).toBe(false);
  }, 30_000);

  test('a config the parsers reject is reported as file:line and nothing is written (all or nothing)', async () => {
    const root = tmpRoot();
    const r = await setup(root, '--keepalive', '4', '--deadtime', '5');
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('/etc/ha.d/ha.cf:6: Dead time [5000] is too small compared to keepalive [4000]');
    expect(r.stderr).toContain('nothing was written');
    expect(existsSync(join(root, 'etc'))).toBe(false);
  }, 30_000);
});
