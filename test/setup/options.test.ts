import { describe, expect, test } from 'bun:test';
import { forceFlags, forces, parseSetupArgs, repeatedFlag, type RawSetupArgs } from '../../src/setup/options.ts';
import { BASE, options } from './helpers.ts';

function errorsOf(raw: RawSetupArgs): string[] {
  const r = parseSetupArgs(raw, { liveInit: 'systemd' });
  return r.ok ? [] : r.errors;
}

describe('setup flags', () => {
  test('the minimal flags give the tutorial defaults: port 80, mgmt 60000, keepalive 2, deadtime 10, auto_failback on', () => {
    const o = options();
    expect(o).toMatchObject({ node: 'lb1', peer: 'lb2', primary: 'lb1', vip: { ip: '198.18.0.99', cidr: 24 }, port: 80, mgmtPort: 60000 });
    expect(o).toMatchObject({ keepalive: '2', deadtime: '10', autoFailback: true, authMethod: null, authKey: null, peerIp: null });
    expect(o).toMatchObject({ root: '/', init: 'rc.local', apply: true, force: { kind: 'files', names: new Set() }, dryRun: false });
  });

  test('the default home node is the same whichever node runs setup, so haresources matches on both', () => {
    expect(options({ node: 'lb2', peer: 'lb1' }).primary).toBe('lb1');
    expect(options({ node: 'LB1', peer: 'lb2', primary: 'lb2' }).primary).toBe('lb2');
  });

  test('--sticky is cookie, source or off (cookie by default); --health-path must be a path', () => {
    expect(errorsOf({ ...BASE, sticky: 'cookies' })).toEqual(['--sticky cookies: expected cookie, source, off']);
    expect(errorsOf({ ...BASE, 'health-path': 'health' })).toEqual(['--health-path health: expected a path starting with / (no spaces), e.g. /health']);
    expect(errorsOf({ ...BASE, sticky: 'off', 'health-path': '/status?full' })).toEqual([]);
  });

  test('backends may be repeated or comma-separated; a bare IP means port 80', () => {
    expect(options({ backend: ['198.18.0.11', '198.18.0.12:81,198.18.0.13:82'] }).backends).toEqual(['198.18.0.11:80', '198.18.0.12:81', '198.18.0.13:82']);
  });

  test('a repeated flag keeps every value, in both spellings, up to --', () => {
    expect(repeatedFlag(['--backend', 'a', '--port', '80', '--backend=b', '--', '--backend', 'c'], 'backend')).toEqual(['a', 'b']);
  });

  test('--root stages files: no live apply, and the systemd unit unless --init says otherwise', () => {
    expect(options({ root: '/tmp/x' })).toMatchObject({ root: '/tmp/x', apply: false, init: 'systemd' });
    expect(options({ root: '/tmp/x', apply: true, init: 'none' })).toMatchObject({ apply: true, init: 'none' });
    expect(options({ apply: false })).toMatchObject({ apply: false });
  });

  test('every missing required flag is reported at once, each with an example', () => {
    const errors = errorsOf({});
    expect(errors).toEqual([
      '--node is required (e.g. --node lb1)',
      '--peer is required (e.g. --peer lb2)',
      '--vip is required: the virtual IP clients connect to, with its prefix (e.g. --vip 192.0.2.10/24)',
      '--iface is required: the interface that carries the VIP and the heartbeats (e.g. --iface eth0)',
      '--backend is required: each backend as IP[:PORT], repeated or comma-separated',
    ]);
  });

  test('bad values name the flag and the value', () => {
    expect(errorsOf({ ...BASE, vip: '198.18.0.99/255.255.255.0' })).toEqual(["--vip 198.18.0.99/255.255.255.0: '255.255.255.0' is not a prefix length (0 to 32); write the netmask as /24"]);
    expect(errorsOf({ ...BASE, backend: 'web1:80' })[0]).toStartWith('--backend web1:80: not IP[:PORT]');
    expect(errorsOf({ ...BASE, port: '70000' })).toEqual(['--port 70000: not a TCP port (1 to 65535)']);
    expect(errorsOf({ ...BASE, keepalive: '2 s' })).toEqual(['--keepalive 2 s: not a heartbeat time (seconds, or e.g. 500ms)']);
    expect(errorsOf({ ...BASE, peer: 'lb1' })).toEqual(['--peer lb1: the peer must be the other node, not this one']);
    expect(errorsOf({ ...BASE, primary: 'lb3' })).toEqual(['--primary lb3: must be --node (lb1) or --peer (lb2)']);
    expect(errorsOf({ ...BASE, 'auth-key': 'two words' })[0]).toStartWith('--auth-key: must be one token');
    expect(errorsOf({ ...BASE, init: 'upstart' })).toEqual(['--init upstart: expected systemd, rc.local, none']);
  });

  test('crc is refused: it authenticates nothing', () => {
    expect(errorsOf({ ...BASE, auth: 'crc' })).toContain('--auth crc authenticates nothing (anyone on the network can forge heartbeats); use sha1');
  });
});

describe('--force', () => {
  test('bare means every file; names (repeated, comma-separated, or as paths) mean those files only', () => {
    expect(forceFlags(['--node', 'lb1', '--force', '--dry-run'])).toEqual(['']);
    expect(forceFlags(['--force', 'authkeys', '--force=ha.cf,perlbal.conf', '--force'])).toEqual(['authkeys', 'ha.cf,perlbal.conf', '']);
    expect(options({ force: [''] }).force).toEqual({ kind: 'all' });
    const some = options({ force: ['authkeys', '/etc/perlbal/perlbal.conf,ha.cf'] }).force;
    expect(some).toEqual({ kind: 'files', names: new Set(['authkeys', 'perlbal.conf', 'ha.cf']) });
    expect(forces(some, '/etc/ha.d/authkeys')).toBe(true);
    expect(forces(some, '/etc/ha.d/haresources')).toBe(false);
    expect(forces({ kind: 'all' }, '/etc/ha.d/haresources')).toBe(true);
  });

  test('a name setup does not write is refused, with the list', () => {
    expect(errorsOf({ ...BASE, force: ['authkey'] })).toEqual([
      '--force authkey: not a file setup writes (one of 60-tsbal.conf, ha.cf, authkeys, haresources, nodeinfo, perlbal.conf, tsbal.service; --force alone means all of them)',
    ]);
    expect(errorsOf({ ...BASE, force: ['rc.local'] })[0]).toStartWith('--force rc.local: not a file setup writes');
  });
});
