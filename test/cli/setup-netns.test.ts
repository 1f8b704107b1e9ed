// `tsbal setup --apply` sets net.ipv4.ip_nonlocal_bind for real, inside a network namespace of its own: the sysctl is
// per network namespace, so the host's value is untouched. Files still go to a temporary --root.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY, runCommand, type RunResult } from '../harness/cli.ts';

const NS = `tsbalsetup-${process.pid}-${randomBytes(3).toString('hex')}`;
const HOST_VALUE_FILE = '/proc/sys/net/ipv4/ip_nonlocal_bind';
let root = '';
let hostBefore = '';

const inNs = (...argv: string[]): Promise<RunResult> => runCommand('ip', ['netns', 'exec', NS, ...argv]);
const show = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

beforeAll(async () => {
  hostBefore = readFileSync(HOST_VALUE_FILE, 'utf8');
  root = mkdtempSync(join(tmpdir(), 'tsbal-setup-netns-'));
  const add = await runCommand('ip', ['netns', 'add', NS]);
  if (add.code !== 0) throw new Error(`ip netns add ${NS}: ${add.stderr}`);
});

afterAll(async () => {
  await runCommand('ip', ['netns', 'delete', NS]);
  rmSync(root, { recursive: true, force: true });
});

describe('tsbal setup applying the sysctl', () => {
  test('sets ip_nonlocal_bind=1 in its network namespace only, and the second run finds it already set', async () => {
    const before = await inNs('cat', HOST_VALUE_FILE);
    expect(before.stdout.trim()).toBe('0');
    const flags = ['--node', 'lb1', '--peer', 'lb2', '--vip', '198.18.0.99/24', '--iface', 'eth0', '--backend', '198.18.0.11', '--init', 'none'];
    const first = await inNs(process.execPath, CLI_ENTRY, 'setup', ...flags, '--root', root, '--apply');
    expect(first.code, show(first)).toBe(0);
    expect(first.stdout).toContain('applied      net.ipv4.ip_nonlocal_bind = 1');
    expect((await inNs('cat', HOST_VALUE_FILE)).stdout.trim()).toBe('1');
    expect(readFileSync(HOST_VALUE_FILE, 'utf8')).toBe(hostBefore);

    const second = await inNs(process.execPath, CLI_ENTRY, 'setup', ...flags, '--root', root, '--apply');
    expect(second.code, show(second)).toBe(0);
    expect(second.stdout).toContain('unchanged    net.ipv4.ip_nonlocal_bind = 1 (already)');
    expect(second.stdout).toContain('nothing to change');
  }, 30_000);

  test('--anycast --apply makes the VIP\'s interface now (ifb here), up and without addresses; the second run finds it', async () => {
    const anyRoot = mkdtempSync(join(tmpdir(), 'tsbal-setup-netns-any-'));
    try {
      await inNs('ip', 'link', 'set', 'lo', 'up');
      const flags = ['--node', 'lb1', '--anycast', '198.18.2.1', '--router', '198.18.0.1', '--router-asn', '65000', '--asn', '65001', '--router-id', '198.18.0.11',
        '--backend', '198.18.0.21', '--anycast-dev-kind', 'ifb', '--init', 'systemd', '--root', anyRoot, '--apply'];
      const first = await inNs(process.execPath, CLI_ENTRY, 'setup', ...flags);
      expect(first.code, show(first)).toBe(0);
      expect(first.stdout).toContain('created      vip0 (ip link add vip0 type ifb; up)');
      const link = await inNs('ip', '-o', 'addr', 'show', 'dev', 'vip0');
      expect(link.code, show(link)).toBe(0);
      expect(link.stdout).not.toContain('inet ');
      expect((await inNs('ip', '-o', 'link', 'show', 'dev', 'vip0')).stdout).toContain(',UP');
      const second = await inNs(process.execPath, CLI_ENTRY, 'setup', ...flags);
      expect(second.code, show(second)).toBe(0);
      expect(second.stdout).toContain('unchanged    vip0 (exists; set up)');
      expect(second.stdout).toContain('nothing to change');
      // The unit's backstop ExecStopPost, run as systemd would (its `-` only means a failure is ignored): the VIP goes.
      const unit = readFileSync(join(anyRoot, 'etc/systemd/system/tsbal.service'), 'utf8');
      const backstop = /^ExecStopPost=-(\/sbin\/ip addr del .*)$/m.exec(unit)![1]!.split(' ');
      await inNs('ip', 'addr', 'add', '198.18.2.1/32', 'dev', 'vip0');
      expect((await inNs('ip', '-o', 'addr', 'show', 'dev', 'vip0')).stdout).toContain('inet 198.18.2.1/32');
      const stop = await inNs(...backstop);
      expect(stop.code, show(stop)).toBe(0);
      expect((await inNs('ip', '-o', 'addr', 'show', 'dev', 'vip0')).stdout).not.toContain('inet ');
    } finally {
      rmSync(anyRoot, { recursive: true, force: true });
    }
  }, 30_000);
});
