// `tsbal setup --anycast ... --root <tmp>` as a real process, then `tsbal check` on what it wrote. Never touches the
// host's /etc (nor its interfaces: --root applies nothing).
import { afterEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY, runCommand, runTsbal, type RunResult } from '../harness/cli.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmpRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsbal-anysetup-'));
  dirs.push(dir);
  return dir;
}

const FLAGS = ['--node', 'lb1', '--anycast', '198.18.2.1', '--router', '198.18.0.1', '--router-asn', '65000', '--asn', '65001', '--router-id', '198.18.0.11', '--backend', '198.18.0.21:80', '--backend', '198.18.0.22'];
const setup = (root: string, ...extra: string[]): Promise<RunResult> => runTsbal(['setup', ...FLAGS, '--root', root, ...extra]);
/** Without --node, so the listen addresses are compared with this host's (where 198.18.2.1 is not); no ha.cf: no HA. */
const check = (root: string): Promise<RunResult> => runTsbal(['check', '-c', join(root, 'etc/perlbal/perlbal.conf'), '--frr-conf', join(root, 'etc/frr/frr.conf')]);
const show = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

function files(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else out.push(join(dir, e.name).slice(root.length + 1));
    }
  };
  if (existsSync(root)) walk(root);
  return out.sort();
}

describe('tsbal setup --anycast --root', () => {
  test('writes the node\'s files, prints the router side, and tsbal check passes on them with FRR checked', async () => {
    const root = tmpRoot();
    const r = await setup(root);
    expect(r.code, show(r)).toBe(0);
    expect(files(root)).toEqual([
      'etc/frr/daemons', 'etc/frr/frr.conf', 'etc/perlbal/perlbal.conf', 'etc/sysctl.d/60-tsbal.conf',
      'etc/systemd/network/tsbal-vip0.netdev', 'etc/systemd/network/tsbal-vip0.network', 'etc/systemd/system/tsbal.service',
    ]);
    expect(readFileSync(join(root, 'etc/systemd/system/tsbal.service'), 'utf8')).toContain('\nExecStopPost=-/sbin/ip addr del 198.18.2.1/32 dev vip0\n');
    expect(readFileSync(join(root, 'etc/systemd/system/tsbal.service'), 'utf8')).toMatch(/\nExecStopPost=-.* anycast withdraw --vip 198\.18\.2\.1\/32 --dev vip0\n/);
    expect(r.stdout).toContain('On the router (ASN 65000), for lb1 (198.18.0.11, ASN 65001)');
    expect(r.stdout).toContain('   neighbor 198.18.0.11 peer-group TSBAL');
    expect(r.stdout).toContain('maximum-paths 8');
    expect(r.stdout).toContain('net.ipv4.fib_multipath_hash_policy=1');
    const c = await check(root);
    expect(c.code, show(c)).toBe(0);
    expect(c.stdout).toContain(`anycast      198.18.2.1/32 on vip0, announced by FRR (${join(root, 'etc/frr/frr.conf')})`);
    // The VIP is tsbal's to add: not "an address this host does not have".
    expect(c.stderr).not.toContain('neither an address of this host');
  }, 40_000);

  test('--dry-run writes nothing; a second run changes nothing; check names frr.conf\'s line when it drifts', async () => {
    const root = tmpRoot();
    const dry = await setup(root, '--dry-run');
    expect(dry.code, show(dry)).toBe(0);
    expect(dry.stdout).toContain(`would create  ${root}/etc/frr/frr.conf (mode 644)`);
    expect(dry.stdout).toContain('    | ip prefix-list TSBAL-VIP seq 5 permit 198.18.2.1/32');
    expect(dry.stdout).toContain('dry run: nothing was written');
    expect(files(root)).toEqual([]);
    expect((await setup(root)).code).toBe(0);
    const again = await setup(root);
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toContain('nothing to change: this node is already set up with these flags');
    expect(again.stdout).not.toContain('created');

    const frr = join(root, 'etc/frr/frr.conf');
    writeFileSync(frr, readFileSync(frr, 'utf8').replace('permit 198.18.2.1/32', 'permit 198.18.2.7/32'));
    const c = await check(root);
    expect(c.code, show(c)).toBe(1);
    expect(c.stderr).toContain(`${frr}:9: prefix-list TSBAL-VIP permits 198.18.2.7/32: only anycast_vip 198.18.2.1/32 (perlbal.conf) may be announced`);
    // Setup keeps the edited file and refuses to go on with it; --force frr.conf puts its own back, keeping a copy.
    const kept = await setup(root);
    expect(kept.code, show(kept)).toBe(1);
    expect(kept.stderr).toContain('--force frr.conf');
    const forced = await setup(root, '--force', 'frr.conf');
    expect(forced.code, show(forced)).toBe(0);
    expect(files(root).filter((f) => f.startsWith('etc/frr/frr.conf.bak.'))).toHaveLength(1);
    expect((await check(root)).code).toBe(0);
  }, 60_000);

  test("the other nodes' line sets lb2 up with the same affinity key, piped in, and printed only once", async () => {
    const root1 = tmpRoot();
    const root2 = tmpRoot();
    const first = await setup(root1);
    expect(first.code, show(first)).toBe(0);
    const conf1 = readFileSync(join(root1, 'etc/perlbal/perlbal.conf'), 'utf8');
    const key = /SET sticky_secret {3}= ([0-9a-f]{64})\n/.exec(conf1)![1]!;
    expect(first.stdout.split(key).length - 1).toBe(1);
    const line = first.stdout.split('\n').find((l) => l.includes('| tsbal setup '))!;
    expect(line.slice(line.indexOf('| tsbal'))).not.toContain(key);
    // On "lb2": this build as tsbal, its own router-id, the files in a second tree.
    const shell = `tsbal() { "$TSBAL_RUNTIME" "$TSBAL_ENTRY" "$@"; }\n${line.replace('--node NODE', '--node lb2')} --router-id 198.18.0.12 --root ${root2}\n`;
    const second = await runCommand('bash', ['-c', shell], { env: { ...process.env, TSBAL_RUNTIME: process.execPath, TSBAL_ENTRY: CLI_ENTRY }, timeoutMs: 20_000 });
    expect(second.code, show(second)).toBe(0);
    expect(second.stdout).not.toContain('SECRET');
    const conf2 = readFileSync(join(root2, 'etc/perlbal/perlbal.conf'), 'utf8');
    expect(conf2).toBe(conf1.replace('anycast node lb1', 'anycast node lb2'));
    expect(readFileSync(join(root2, 'etc/frr/frr.conf'), 'utf8')).toContain(' bgp router-id 198.18.0.12\n');
    // A dry run shows the file without the key.
    const dry = await setup(root2, '--dry-run', '--force', 'perlbal.conf', '--sticky', 'source');
    expect(dry.stdout).toContain('SET sticky_secret   = <secret>');
    expect(dry.stdout).not.toContain(key);
  }, 60_000);

  test('check: a --frr-conf that is missing is an error; one beside a perlbal.conf without anycast_vip is not checked, and says so', async () => {
    const root = tmpRoot();
    expect((await setup(root)).code).toBe(0);
    const conf = join(root, 'etc/perlbal/perlbal.conf');
    const missing = await runTsbal(['check', '-c', conf, '--frr-conf', join(root, 'nope.conf')]);
    expect(missing.code, show(missing)).toBe(1);
    expect(missing.stderr).toContain(`${join(root, 'nope.conf')}: cannot read (ENOENT): nothing checks that FRR announces anycast_vip 198.18.2.1/32`);
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^SERVER anycast_.*\n/gm, ''));
    const plain = await runTsbal(['check', '-c', conf, '--frr-conf', join(root, 'etc/frr/frr.conf')]);
    expect(plain.code, show(plain)).toBe(0);
    expect(plain.stderr).toContain(`${join(root, 'etc/frr/frr.conf')}: warning: not checked: perlbal.conf has no SERVER anycast_vip`);
  }, 30_000);

  test('heartbeat flags are refused with --anycast, and rc.local too (no cleanup on a crash without systemd)', async () => {
    const r = await setup(tmpRoot(), '--peer', 'lb2', '--init', 'rc.local');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--peer: not used with --anycast');
    expect(r.stderr).toContain('--init rc.local: anycast mode needs systemd');
  }, 30_000);
});
