// `tsbal setup --root <tmp>` as a real process, then `tsbal check` on what it wrote. Never touches the host's /etc.
import { afterEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY, runCommand, runTsbal, type RunResult } from '../harness/cli.ts';

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
    expect(r.stdout).toContain("SECRET: the line above holds the cluster's sha1 key, printed only this once");
    expect(r.stdout).toContain('not applied  net.ipv4.ip_nonlocal_bind (--root;');
    const c = await check(root);
    expect(c.code, show(c)).toBe(0);
    expect(c.stdout).toContain('resources  lb1: VIP 198.18.0.99/24 on eth0 (IPaddr)');
    expect(c.stdout).toContain('pool    backends    random        198.18.0.11:8080, 198.18.0.12:80');
  }, 30_000);

  test('the join line lb1 prints sets lb2 up with the same key, the key never on tsbal\'s command line', async () => {
    const root1 = tmpRoot();
    const root2 = tmpRoot();
    const first = await setup(root1, '--peer-ip', '198.18.0.3');
    expect(first.code, show(first)).toBe(0);
    const key = /^1 sha1 ([0-9a-f]{64})$/m.exec(readFileSync(join(root1, 'etc/ha.d/authkeys'), 'utf8'))![1]!;
    const joins = first.stdout.split('\n').filter((l) => l.includes('| tsbal setup '));
    expect(joins).toHaveLength(1);
    const line = joins[0]!;
    // The key is printed once, inside the printf; tsbal itself reads it from stdin (so ps never shows it).
    expect(first.stdout.split(key).length - 1).toBe(1);
    expect(line).toStartWith(` printf '%s\\n' ${key} | tsbal setup --node lb2 --peer lb1 --vip 198.18.0.99/24 --iface eth0 --peer-ip LB1_ADDRESS `);
    expect(line.slice(line.indexOf('| tsbal'))).not.toContain(key);
    // Paste it on "lb2", as an admin would, with tsbal being this build and the files going to a second tree.
    const shell = `tsbal() { "$TSBAL_RUNTIME" "$TSBAL_ENTRY" "$@"; }\n${line.replace('LB1_ADDRESS', '198.18.0.2')} --root ${root2}\n`;
    const second = await runCommand('bash', ['-c', shell], { env: { ...process.env, TSBAL_RUNTIME: process.execPath, TSBAL_ENTRY: CLI_ENTRY }, timeoutMs: 20_000 });
    expect(second.code, show(second)).toBe(0);
    expect(second.stdout).not.toContain('SECRET');
    const same = ['etc/ha.d/authkeys', 'etc/ha.d/haresources', 'etc/perlbal/perlbal.conf'];
    for (const f of same) expect(readFileSync(join(root2, f), 'utf8'), f).toBe(readFileSync(join(root1, f), 'utf8'));
    expect(readFileSync(join(root2, 'etc/ha.d/ha.cf'), 'utf8')).toContain('\nucast eth0 198.18.0.2\n');
    expect(readFileSync(join(root2, 'etc/ha.d/nodeinfo'), 'utf8')).toBe('lb2\n');
    expect(mode(join(root2, 'etc/ha.d/authkeys'))).toBe('600');
  }, 40_000);

  test('--auth-key-file takes the key from a file: the key alone, or a copied authkeys', async () => {
    const root = tmpRoot();
    const keyFile = join(root, 'cluster.key');
    writeFileSync(keyFile, 'FromAFile\n', { mode: 0o600 });
    const r = await setup(root, '--auth-key-file', keyFile);
    expect(r.code, show(r)).toBe(0);
    expect(readFileSync(join(root, 'etc/ha.d/authkeys'), 'utf8')).toEndWith('\nauth 1\n1 sha1 FromAFile\n');
    expect(r.stdout).not.toContain('FromAFile');
    const other = tmpRoot();
    const copied = await setup(other, '--auth-key-file', join(root, 'etc/ha.d/authkeys'));
    expect(copied.code, show(copied)).toBe(0);
    expect(readFileSync(join(other, 'etc/ha.d/authkeys'), 'utf8')).toBe(readFileSync(join(root, 'etc/ha.d/authkeys'), 'utf8'));
    const missing = await setup(tmpRoot(), '--auth-key-file', join(root, 'nope'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`--auth-key-file ${join(root, 'nope')}: cannot read: ENOENT`);
  }, 40_000);

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

  test("a kept perlbal.conf that serves nothing on the VIP (Debian's example) stops setup, which says how to proceed", async () => {
    const root = tmpRoot();
    const conf = join(root, 'etc/perlbal/perlbal.conf');
    mkdirSync(join(root, 'etc/perlbal'), { recursive: true });
    const debian = 'SERVER pidfile = /var/run/perlbal.pid\nCREATE SERVICE docs\n  SET listen = 0.0.0.0:8080\n  SET role = web_server\n  SET docroot = /usr/share/doc/\nENABLE docs\n';
    writeFileSync(conf, debian);
    const kept = await setup(root);
    expect(kept.code, show(kept)).toBe(1);
    expect(kept.stderr).toContain('/etc/perlbal/perlbal.conf: kept as it is (it exists with other content), it has no enabled service on 198.18.0.99:80, so the cluster will not serve 198.18.0.99:80 (it has docs on 0.0.0.0:8080)');
    expect(kept.stderr).toContain('The cluster will not serve http://198.18.0.99/ with the kept perlbal.conf. To proceed, either:');
    expect(kept.stderr).toContain('run the same command with --force perlbal.conf');
    expect(kept.stderr).toContain('tsbal setup --adopt');
    expect(kept.stderr).toContain('nothing was written');
    expect(existsSync(join(root, 'etc/ha.d'))).toBe(false);

    const forced = await setup(root, '--force', 'perlbal.conf');
    expect(forced.code, show(forced)).toBe(0);
    const backup = /old one saved as (\S+\.bak\.\d{8}T\d{6}Z)\)/.exec(forced.stdout)?.[1];
    expect(backup, forced.stdout).toStartWith(`${conf}.bak.`);
    expect(readFileSync(backup!, 'utf8')).toBe(debian);
    expect(readFileSync(conf, 'utf8')).toContain('SET listen          = 198.18.0.99:80');
  }, 30_000);

  test('--force NAME replaces that file only and keeps a hand-tuned one; no backup is ever overwritten', async () => {
    const root = tmpRoot();
    expect((await setup(root)).code).toBe(0);
    const conf = join(root, 'etc/perlbal/perlbal.conf');
    const authkeys = join(root, 'etc/ha.d/authkeys');
    const tuned = readFileSync(conf, 'utf8').replace('persist_client  = on', 'persist_client  = off');
    writeFileSync(conf, tuned);
    const original = readFileSync(authkeys, 'utf8');
    // A tuned file that still serves the VIP is kept, and the run says which --force would replace it.
    const again = await setup(root);
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toContain(`kept      ${conf}: exists with other content; kept (--force perlbal.conf replaces it`);
    expect(again.stdout).toContain('nothing written: 1 file kept with content of its own (--force perlbal.conf replaces it, keeping a .bak)');

    const first = await setup(root, '--auth-key', 'Second', '--force', 'authkeys');
    expect(first.code, show(first)).toBe(0);
    expect(readFileSync(conf, 'utf8')).toBe(tuned);
    expect(readFileSync(authkeys, 'utf8')).toEndWith('\n1 sha1 Second\n');
    const third = await setup(root, '--auth-key', 'Third', '--force=authkeys');
    expect(third.code, show(third)).toBe(0);
    // Two backups, the first one intact, even within the same second.
    const backups = readdirSync(join(root, 'etc/ha.d')).filter((f) => f.startsWith('authkeys.bak.')).sort();
    expect(backups).toHaveLength(2);
    const texts = backups.map((f) => readFileSync(join(root, 'etc/ha.d', f), 'utf8'));
    expect(new Set(texts)).toEqual(new Set([original, readFileSync(authkeys, 'utf8').replace('Third', 'Second')]));
    for (const f of backups) expect(mode(join(root, 'etc/ha.d', f)), f).toBe('600');
    expect(readFileSync(conf, 'utf8')).toBe(tuned);
  }, 30_000);

  test('never overwrites an existing key without --force; --auth-key with --force authkeys replaces it', async () => {
    const root = tmpRoot();
    const authkeys = join(root, 'etc/ha.d/authkeys');
    mkdirSync(join(root, 'etc/ha.d'), { recursive: true });
    writeFileSync(authkeys, 'auth 2\n2 sha1 SharedFromLb1\n', { mode: 0o600 });
    const r = await setup(root, '--auth-key', 'Other');
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain('--auth-key differs from the key in the existing file, which is kept (--force authkeys replaces it)');
    expect(readFileSync(authkeys, 'utf8')).toBe('auth 2\n2 sha1 SharedFromLb1\n');
    const forced = await setup(root, '--auth-key', 'Other', '--force');
    expect(forced.code, show(forced)).toBe(0);
    expect(readFileSync(authkeys, 'utf8')).toEndWith('\nauth 1\n1 sha1 Other\n');
    expect(mode(authkeys)).toBe('600');
  }, 30_000);

  test('--force with a name setup does not write is a usage error', async () => {
    const r = await setup(tmpRoot(), '--force', 'authkey');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--force authkey: not a file setup writes (one of 60-tsbal.conf, ha.cf, authkeys');
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
    // It prints the exact command to start tsbal now (rc.local runs only at boot); the join line for the peer follows.
    const out = first.stdout.trimEnd().split('\n');
    const at = out.findIndex((line) => line.startsWith('start it now'));
    expect(out.slice(at, at + 2)).toEqual([
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
