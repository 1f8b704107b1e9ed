import { afterEach, describe, expect, test } from 'bun:test';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTsbal } from '../harness/cli.ts';
import { localIpv4Addresses, runCheck } from '../../src/cli/check.ts';

const FIX = new URL('../config/fixtures/tutorial/', import.meta.url).pathname;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The tutorial's perlbal.conf (section 8) and /etc/ha.d in a private directory. */
function tutorial(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsbal-check-'));
  dirs.push(dir);
  for (const f of ['ha.cf', 'authkeys', 'haresources']) copyFileSync(join(FIX, 'ha.d', f), join(dir, f));
  chmodSync(join(dir, 'authkeys'), 0o600);
  copyFileSync(join(FIX, 'perlbal-section8.conf'), join(dir, 'perlbal.conf'));
  return dir;
}

describe('tsbal check', () => {
  test('the tutorial passes: exit 0 and a summary of services, pools, nodes, VIP and timings', async () => {
    const dir = tutorial();
    const r = await runTsbal(['check', '-c', join(dir, 'perlbal.conf'), '--ha-dir', dir, '--node', 'lb1.example.com']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('service vhost_selector    selector      listen 192.168.0.99:80  vhosts *.site.com -> site_balancer, *.example.com -> example_balancer');
    expect(r.stdout).toContain('pool    sitefarm          random        192.168.0.102:80, 192.168.0.103:80');
    expect(r.stdout).toContain('nodes      lb1.example.com, lb2.example.com (this node: lb1.example.com)');
    expect(r.stdout).toContain('timing     keepalive 2s, deadtime 10s, warntime 5s, initdead 20s; auto_failback on');
    expect(r.stdout).toContain('resources  lb1.example.com: VIP 192.168.0.99 (IPaddr)');
    expect(r.stdout).toMatch(/configuration OK \(\d+ warnings?\)\n$/);
    expect(r.stderr).toContain("ha.cf:17: warning: directive 'udp' replaced by 'bcast'");
  });

  test('a service tsbal run refuses is an error, with its line; the management console is served', async () => {
    const dir = tutorial();
    const conf = join(dir, 'perlbal.conf');
    writeFileSync(conf, `${readFileSync(conf, 'utf8')}CREATE SERVICE tracker\n  SET role = upload_tracker\n  SET listen = 127.0.0.1:8081\nENABLE tracker\n`);
    const r = await runTsbal(['check', '-c', conf, '--ha-dir', dir, '--node', 'lb1.example.com']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      'perlbal.conf:43: service tracker: role upload_tracker is not served by this version of tsbal run, which refuses to start with it',
    );
    // The selector, its targets and the management console are served.
    expect(r.stderr).not.toContain('mgmt: role');
    expect(r.stderr).not.toContain('vhost_selector: role');
    expect(r.stderr).not.toContain('site_balancer: role');
  });

  test('a haresources script that is neither in resource.d nor /etc/init.d is a warning naming both places', async () => {
    const dir = tutorial();
    writeFileSync(join(dir, 'haresources'), 'lb1.example.com 192.168.0.99 tsbal-no-such-script::arg\n');
    const r = runCheck({ config: join(dir, 'perlbal.conf'), haDir: { path: dir, required: true }, node: 'lb1.example.com', cwd: dir });
    expect(r.ok).toBe(true);
    expect(r.stderr).toContain(
      `${dir}/haresources:1: warning: resource script 'tsbal-no-such-script' not found (or not executable) in ${dir}/resource.d/tsbal-no-such-script or /etc/init.d/tsbal-no-such-script: taking over this group would fail (install it on this node, or fix its name)`,
    );
  });

  test('every error in every file is listed, and the exit code is 1', async () => {
    const dir = tutorial();
    const conf = join(dir, 'perlbal.conf');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('SET persist_backend = on', 'SET persist_bakend = on').replace('LOAD vhosts', 'LOAD vhost'));
    writeFileSync(join(dir, 'haresources'), 'lb3.example.com 192.168.0.99\n');
    chmodSync(join(dir, 'authkeys'), 0o644);
    const r = await runTsbal(['check', '--config', conf, '--ha-dir', dir, '--node', 'lb1.example.com']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const errors = r.stderr.split('\n').filter((l) => l !== '' && !l.includes('warning:'));
    expect(errors).toEqual([
      `${conf}:3: unknown plugin 'vhost' (did you mean Vhosts?)`,
      `${conf}:17: Unknown service parameter 'persist_bakend' (did you mean persist_backend?)`,
      `${conf}:32: Plugin vhosts not loaded; not registered for vhost_selector. (add LOAD Vhosts before this line)`,
      `${conf}:35: unknown command: vhost (LOAD Vhosts first)`,
      `${conf}:36: unknown command: vhost (LOAD Vhosts first)`,
      `${dir}/authkeys: Bad permissions on keyfile [${dir}/authkeys], 600 recommended. (it is 644; run: chmod 600 ${dir}/authkeys)`,
      `${dir}/haresources:1: Bad nodename in haresources [lb3.example.com] (ha.cf nodes: lb1.example.com, lb2.example.com)`,
      `tsbal check: 7 errors in ${conf} and ${dir}`,
    ]);
  });

  test('warns when the VIP is not where any service listens', async () => {
    const dir = tutorial();
    const conf = join(dir, 'perlbal.conf');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('192.168.0.99:80', '127.0.0.1:8080'));
    const r = await runTsbal(['check', '-c', conf, '--ha-dir', dir, '--node', 'lb2.example.com']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${dir}/haresources:1: warning: VIP 192.168.0.99 is served by no enabled service in ${conf}: the cluster moves it, but no client request to it is answered`);
    expect(r.stdout).toMatch(/configuration OK \([1-9] warnings?\)/);
  });

  test("warns about a service on an address that is not this host's, and not about loopback or this host's own", () => {
    const dir = tutorial();
    const empty = mkdtempSync(join(tmpdir(), 'tsbal-check-noha-'));
    dirs.push(empty);
    const conf = join(dir, 'perlbal.conf');
    const own = [...localIpv4Addresses()].find((a) => !a.startsWith('127.'));
    const text = readFileSync(conf, 'utf8');
    // 198.18.0.0/24 lives only inside the test namespaces, never on the host that runs the tests.
    writeFileSync(conf, text.replace('192.168.0.99:80', '198.18.0.77:80'));
    const away = runCheck({ config: conf, haDir: { path: empty, required: false }, cwd: dir });
    expect(away.ok).toBe(true);
    expect(away.stderr.join('\n')).toContain('warning: service vhost_selector listens on 198.18.0.77:80, which is neither an address of this host nor a VIP in haresources');
    for (const address of ['127.0.0.1', ...(own === undefined ? [] : [own])]) {
      writeFileSync(conf, text.replace('192.168.0.99:80', `${address}:80`));
      const here = runCheck({ config: conf, haDir: { path: empty, required: false }, cwd: dir });
      expect(here.stderr.join('\n'), address).not.toContain('neither an address of this host');
    }
  });

  test('a missing perlbal.conf is an error', async () => {
    const dir = tutorial();
    const missing = await runTsbal(['check', '-c', join(dir, 'nope.conf'), '--ha-dir', dir, '--node', 'lb1.example.com']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`${dir}/nope.conf: cannot read config file (ENOENT) (give the path with -c)`);
  });

  test('with no ha.cf where it looks by default, only perlbal.conf is checked', () => {
    const dir = tutorial();
    const empty = mkdtempSync(join(tmpdir(), 'tsbal-check-noha-'));
    dirs.push(empty);
    const out = runCheck({ config: join(dir, 'perlbal.conf'), haDir: { path: empty, required: false }, cwd: dir });
    expect(out.ok).toBe(true);
    expect(out.stdout).toContain(`cluster      (no ${empty}/ha.cf: running without HA)`);
    expect(runCheck({ config: join(dir, 'perlbal.conf'), haDir: { path: empty, required: true }, cwd: dir }).ok).toBe(false);
  });

  test('the summary says how many worker processes tsbal run would start, and why fewer or with a warning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbal-check-workers-'));
    dirs.push(dir);
    const conf = (server: string, pool: string): string => {
      const path = join(dir, 'perlbal.conf');
      writeFileSync(path, `${server}CREATE POOL p\n${pool}  POOL p ADD 127.0.0.1:18081\nCREATE SERVICE web\n  SET listen = 127.0.0.1:18080\n  SET role = reverse_proxy\n  SET pool = p\nENABLE web\n`);
      return path;
    };
    const check = (path: string): string[] => runCheck({ config: path, haDir: { path: dir, required: false }, cwd: dir }).stdout;
    expect(check(conf('SERVER workers = 2\n', ''))).toContain('workers      2 worker processes (SERVER workers = 2)');
    expect(check(conf('SERVER workers = 1\n', ''))).toContain('workers      one process (SERVER workers = 1)');
    expect(check(conf('SERVER workers = 2\n', '  SET max_conns = 4\n'))).toContain(
      'workers      2 worker processes (warning: workers = 2: pool p max_conns hold per worker process (up to 2× in all))',
    );
  });
});
