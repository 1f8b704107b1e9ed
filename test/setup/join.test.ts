import { describe, expect, test } from 'bun:test';
import { joinAdvice, joinCommand, ownAddress } from '../../src/setup/join.ts';
import { keyFromFileText } from '../../src/setup/keyfile.ts';
import { parseSetupArgs, type RawSetupArgs } from '../../src/setup/options.ts';
import { BASE, options } from './helpers.ts';

const AUTH = { method: 'sha1' as const, key: 'k3y', source: 'generated' as const };

/** The flags of a join line, as the peer's setup will parse them (the key read from the printf on stdin). */
function peerFlags(line: string): RawSetupArgs & Record<string, string> {
  const m = /^ printf '%s\\n' (\S+) \| tsbal setup (.*)$/.exec(line);
  if (m === null) throw new Error(`not a join line: ${line}`);
  const words = m[2]!.split(' ');
  const out: Record<string, string> = {};
  for (let i = 0; i < words.length; i += 2) out[words[i]!.slice(2)] = words[i + 1]!;
  return out;
}

describe('the join line', () => {
  test('carries --sticky and --health-path when they differ from the defaults, so both nodes serve alike', () => {
    const line = joinCommand(options({ sticky: 'source', 'health-path': '/health' }), AUTH, null);
    expect(line).toContain(' --sticky source --health-path /health ');
    expect(joinCommand(options(), AUTH, null)).not.toMatch(/--sticky|--health-path/);
    const peer = parseSetupArgs({ ...peerFlags(line), 'auth-key-file': '/dev/stdin' }, { liveInit: 'systemd', readKeyFile: () => 'k3y\n' });
    expect(peer.ok && peer.value.sticky === 'source' && peer.value.healthPath === '/health').toBe(true);
  });

  test('swaps --node and --peer and carries every flag both nodes must agree on, the key on stdin', () => {
    const o = options({ port: '8080', keepalive: '500ms', deadtime: '3', ping: ['198.18.0.1'], 'auto-failback': 'off', backend: ['198.18.0.11:80', '198.18.0.12:81'] });
    const line = joinCommand(o, AUTH, null);
    expect(line).toBe(
      " printf '%s\\n' k3y | tsbal setup --node lb2 --peer lb1 --vip 198.18.0.99/24 --iface eth0 --backend 198.18.0.11:80,198.18.0.12:81 " +
        '--port 8080 --keepalive 500ms --deadtime 3 --ping 198.18.0.1 --auto-failback off --auth-key-file /dev/stdin',
    );
    // What the peer parses from it describes the same cluster from the other side.
    const peer = parseSetupArgs({ ...peerFlags(line), 'auth-key-file': '/dev/stdin' }, { liveInit: 'systemd', readKeyFile: () => 'k3y\n' });
    expect(peer.ok).toBe(true);
    if (!peer.ok) return;
    const { node, peer: otherNode, primary, ...shared } = peer.value;
    const { node: n0, peer: p0, primary: pr0, ...mine } = o;
    expect({ node, otherNode, primary }).toEqual({ node: 'lb2', otherNode: 'lb1', primary: 'lb1' });
    expect({ ...shared, authKey: null, init: 'rc.local' }).toEqual({ ...mine, authKey: null });
    expect(peer.value.authKey).toBe('k3y');
    expect([n0, p0, pr0]).toEqual(['lb1', 'lb2', 'lb1']);
  });

  test('with ucast, --peer-ip points back at this node; unknown, it is a placeholder the advice names', () => {
    const o = options({ 'peer-ip': '198.18.0.3' });
    expect(joinCommand(o, AUTH, '198.18.0.2')).toContain(' --peer-ip 198.18.0.2 ');
    expect(joinCommand(o, AUTH, null)).toContain(' --peer-ip LB1_ADDRESS ');
    expect(joinAdvice(o, AUTH, null, '/etc/ha.d/authkeys').lines).toContain("  Replace LB1_ADDRESS with lb1's address on eth0 (lb2 sends its heartbeats there).");
  });

  test('an explicit home node and md5 are carried; a key with shell characters is quoted', () => {
    const line = joinCommand(options({ primary: 'lb2' }), { method: 'md5', key: "a'b$c", source: 'flag' }, null);
    expect(line).toStartWith(` printf '%s\\n' 'a'\\''b$c' | tsbal setup --node lb2 --peer lb1 --primary lb2 `);
    expect(line).toContain(' --auth md5 --auth-key-file /dev/stdin');
  });

  test('the advice marks the key as a secret and says where it stays', () => {
    const lines = joinAdvice(options(), AUTH, null, '/etc/ha.d/authkeys').lines.join('\n');
    expect(lines).toContain("SECRET: the line above holds the cluster's sha1 key, printed only this once");
    expect(lines).toContain('It stays in /etc/ha.d/authkeys (mode 600) here.');
  });
});

describe("this node's address for the peer's --peer-ip", () => {
  const v4 = (address: string) => ({ address, family: 'IPv4', internal: false });
  test('skips the VIP this node may hold, and picks the address nearest the peer', () => {
    const ifs = { eth0: [v4('198.18.0.99'), v4('10.9.0.2'), v4('198.18.0.2'), { address: 'fe80::1', family: 'IPv6', internal: false }] };
    expect(ownAddress('eth0', ifs, '198.18.0.99', '198.18.0.3')).toBe('198.18.0.2');
    expect(ownAddress('eth0', ifs, '198.18.0.99', '10.9.0.7')).toBe('10.9.0.2');
    expect(ownAddress('eth0', ifs, '198.18.0.99', null)).toBe('10.9.0.2');
    expect(ownAddress('eth1', ifs, '198.18.0.99', null)).toBeNull();
    expect(ownAddress('eth0', { eth0: [v4('198.18.0.99')] }, '198.18.0.99', null)).toBeNull();
  });
});

describe('--auth-key-file', () => {
  test('a file with the key alone: comments and blank lines skipped, the method left to --auth', () => {
    expect(keyFromFileText('# cluster key\n\n  s3cret  \n', '/root/k')).toEqual({ ok: true, key: 's3cret', method: null });
  });

  test('an authkeys file: its active key and method', () => {
    expect(keyFromFileText('auth 2\n1 sha1 old\n2 md5 current\n', '/tmp/authkeys')).toEqual({ ok: true, key: 'current', method: 'md5' });
    expect(keyFromFileText('auth 1\n1 crc\n', '/tmp/authkeys')).toEqual({ ok: false, error: '--auth-key-file /tmp/authkeys: the active key is crc, which authenticates nothing; use sha1' });
  });

  test('an empty file or two words is refused with the file named', () => {
    expect(keyFromFileText('\n', '/dev/stdin')).toEqual({ ok: false, error: '--auth-key-file /dev/stdin: empty (expected the key, one word on one line)' });
    expect(keyFromFileText('two words\n', '/k')).toEqual({ ok: false, error: '--auth-key-file /k: expected one word (the key) on one line, or an authkeys file' });
  });

  test('setup flags: the file gives the key and method; with --auth-key too, or unreadable, it is an error', () => {
    const read = (text: string) => ({ liveInit: 'systemd' as const, readKeyFile: () => text });
    const ok = parseSetupArgs({ ...BASE, 'auth-key-file': '/k' }, read('auth 1\n1 md5 abc\n'));
    expect(ok.ok && [ok.value.authKey, ok.value.authMethod]).toEqual(['abc', 'md5']);
    const both = parseSetupArgs({ ...BASE, 'auth-key-file': '/k', 'auth-key': 'x' }, read('abc\n'));
    expect(both).toEqual({ ok: false, errors: ['--auth-key and --auth-key-file: give the key one way, not both'] });
    const clash = parseSetupArgs({ ...BASE, 'auth-key-file': '/k', auth: 'sha1' }, read('auth 1\n1 md5 abc\n'));
    expect(clash).toEqual({ ok: false, errors: ['--auth sha1: --auth-key-file /k is an authkeys file with a md5 key'] });
    const missing = parseSetupArgs({ ...BASE, 'auth-key-file': '/nope' }, {
      liveInit: 'systemd',
      readKeyFile: () => {
        throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
      },
    });
    expect(missing).toEqual({ ok: false, errors: ['--auth-key-file /nope: cannot read: ENOENT'] });
  });
});
