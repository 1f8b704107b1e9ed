import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { findRouterId, parseAnycastArgs, type AnycastOptions, type RawAnycastArgs } from '../../src/setup/anycast-options.ts';
import { anycastPlannedPaths, planAnycastSetup } from '../../src/setup/anycast-plan.ts';
import { netdevPath, networkPath, renderAnycastPerlbalConf, renderNetdev } from '../../src/setup/anycast-render.ts';
import { FRR_CONF, FRR_DAEMONS, isStockFrrConf, mergeFrrDaemons, renderFrrConf, routerSideLines } from '../../src/setup/frr.ts';
import { planIsNoop, type ExistingFile, type FileAction } from '../../src/setup/plan.ts';
import { PERLBAL_CONF, SYSCTL_FILE, SYSTEMD_UNIT, renderSystemdUnit } from '../../src/setup/render.ts';
import { readPerlbalConfig } from '../../src/config/perlbal.ts';
import { anycastSettings } from '../../src/config/anycast.ts';

const BASE: RawAnycastArgs = { node: 'lb1', anycast: '198.18.2.1', router: ['198.18.0.1'], 'router-asn': '65000', asn: '65001', backend: ['198.18.0.21:80', '198.18.0.22'] };
const ADDRESSES = [
  { address: '127.0.0.1', cidr: '127.0.0.1/8', family: 'IPv4' },
  { address: '198.18.2.1', cidr: '198.18.2.1/32', family: 'IPv4' },
  { address: '198.18.0.11', cidr: '198.18.0.11/24', family: 'IPv4' },
];

function parse(extra: Record<string, unknown> = {}) {
  return parseAnycastArgs({ ...BASE, ...extra }, { addresses: ADDRESSES, liveInit: 'systemd' });
}
function options(extra: Record<string, unknown> = {}): AnycastOptions {
  const r = parse(extra);
  if (!r.ok) throw new Error(`expected valid flags, got: ${r.errors.join('; ')}`);
  return r.value;
}
const errorsOf = (extra: Record<string, unknown>): string[] => {
  const r = parse(extra);
  return r.ok ? [] : r.errors;
};

const KEY = 'k'.repeat(64);
const NOW = new Date('2026-12-07T13:04:27.123Z');
const STAMP = '.bak.20261207T130427Z';
const plan = (o: AnycastOptions, existing: Map<string, ExistingFile | null> = new Map()) => planAnycastSetup(o, { exec: ['/usr/local/bin/tsbal'], existing, now: NOW, randomKey: KEY });
const kinds = (actions: readonly FileAction[]): Record<string, string> => Object.fromEntries(actions.map((a) => [a.file.path, a.kind]));
const written = (actions: readonly FileAction[]) => new Map(actions.map((a) => [a.file.path, { content: a.file.content, mode: a.file.mode }]));

describe('setup --anycast flags', () => {
  test('the issue\'s command line: router-id is this host\'s address on the router\'s subnet, never the VIP', () => {
    const o = options();
    expect(o).toMatchObject({ node: 'lb1', anycast: '198.18.2.1', dev: 'vip0', devKind: 'dummy', routers: ['198.18.0.1'], routerAsn: 65000, asn: 65001, routerId: '198.18.0.11', init: 'systemd', apply: true });
    expect(findRouterId('198.18.0.1', '198.18.0.11', ADDRESSES)).toBeNull();
    expect(options({ root: '/tmp/x' }).apply).toBe(false);
  });

  test('every problem at once: heartbeat flags, a VIP with a subnet, a bad ASN, rc.local', () => {
    expect(errorsOf({ peer: 'lb2', anycast: '198.18.2.0/24', asn: '0', init: 'rc.local' })).toEqual([
      '--peer: not used with --anycast (an anycast node has no heartbeat peer; the router spreads clients over the nodes)',
      '--anycast 198.18.2.0/24: an anycast VIP is one address, announced as /32 (write 198.18.2.0 or 198.18.2.0/32)',
      '--asn 0: not an AS number (1 to 4294967295; private: 64512-65534, 4200000000-4294967294)',
      '--init rc.local: anycast mode needs systemd, whose ExecStopPost takes the VIP away when tsbal dies (use --init systemd, or none to write no unit)',
    ]);
  });

  test("--asn equal to --router-asn is refused: the nodes peer over eBGP (the router side printed is eBGP's)", () => {
    expect(errorsOf({ asn: '65000' })).toEqual([
      "--asn 65000: the router's own AS (--router-asn); the nodes peer over eBGP, so give them another one (e.g. --asn 65001, the same on every node)",
    ]);
    expect(errorsOf({ asn: '65001', 'router-asn': '65001' })[0]).toContain('(e.g. --asn 65002,');
  });

  test('without an address on the router\'s subnet, --router-id is asked for; a missing --router and --backend are named', () => {
    expect(errorsOf({ router: ['10.0.0.1'] })).toEqual([
      "--router-id is required: this host has no IPv4 address on 10.0.0.1's subnet to use (give this node's own address, e.g. --router-id 198.18.0.11)",
    ]);
    expect(options({ router: ['10.0.0.1'], 'router-id': '10.0.0.5' }).routerId).toBe('10.0.0.5');
    const missing = errorsOf({ router: undefined, backend: undefined });
    expect(missing.some((e) => e.startsWith('--backend is required'))).toBe(true);
    expect(missing.some((e) => e.startsWith('--router is required'))).toBe(true);
  });

  test('an IPv6 VIP is accepted as a /128, and --force names only files anycast setup writes', () => {
    expect(options({ anycast: '2001:db8::1/128' }).anycast).toBe('2001:db8::1');
    expect(errorsOf({ force: ['ha.cf'] })[0]).toStartWith('--force ha.cf: not a file anycast setup writes');
    expect(options({ force: ['frr.conf,tsbal-vip0.netdev'] }).force).toEqual({ kind: 'files', names: new Set(['frr.conf', 'tsbal-vip0.netdev']) });
  });
});

describe('setup --anycast files', () => {
  test('perlbal.conf: the SERVER anycast lines and the balancer on the VIP, as tsbal run reads them', () => {
    const text = renderAnycastPerlbalConf(options(), KEY);
    const parsed = readPerlbalConfig(text, { file: PERLBAL_CONF });
    expect(parsed.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(anycastSettings(parsed.value)).toMatchObject({ vip: '198.18.2.1/32', dev: 'vip0', require: 'all' });
    expect(parsed.value.services.find((s) => s.name === 'balancer')!.options.sticky_secret).toBe(KEY);
    expect(parsed.value.services.find((s) => s.name === 'balancer')!.listen).toEqual({ host: '198.18.2.1', port: 80 });
  });

  test('frr.conf: the VIP only, through the route-map, to the router with BFD 100 ms x 3 and timers 3/9', () => {
    const text = renderFrrConf(options());
    for (const line of [
      'ip prefix-list TSBAL-VIP seq 5 permit 198.18.2.1/32', ' match ip address prefix-list TSBAL-VIP', ' match interface vip0',
      '  detect-multiplier 3', '  receive-interval 100', '  transmit-interval 100', 'router bgp 65001', ' bgp router-id 198.18.0.11',
      ' no bgp ebgp-requires-policy', ' neighbor 198.18.0.1 remote-as 65000', ' neighbor 198.18.0.1 timers 3 9', ' neighbor 198.18.0.1 bfd',
      '  redistribute connected route-map TSBAL-VIP-ONLY',
    ]) expect(text.split('\n')).toContain(line);
    const v6 = renderFrrConf(options({ anycast: '2001:db8::1', router: ['2001:db8::ff'], 'router-id': '198.18.0.11' }));
    expect(v6).toContain('ipv6 prefix-list TSBAL-VIP seq 5 permit 2001:db8::1/128\n');
    expect(v6).toContain(' address-family ipv6 unicast\n  redistribute connected route-map TSBAL-VIP-ONLY\n  neighbor 2001:db8::ff activate\n');
  });

  test("daemons: FRR's package file gets bgpd and bfdd on, every other line as it was; none at all gets a minimal one", () => {
    const stock = readFileSync('/etc/frr/daemons', 'utf8');
    const merged = mergeFrrDaemons(stock);
    expect(merged).toContain('\nbgpd=yes\n');
    expect(merged).toContain('\nbfdd=yes\n');
    expect(merged.split('\n').length).toBe(stock.split('\n').length + (stock.endsWith('\n') ? 0 : 1));
    expect(merged.replace('bgpd=yes', 'bgpd=no').replace('bfdd=yes', 'bfdd=no')).toBe(stock.endsWith('\n') ? stock : `${stock}\n`);
    expect(mergeFrrDaemons(merged)).toBe(merged);
    expect(mergeFrrDaemons(null)).toContain('bgpd=yes\nbfdd=yes\nvtysh_enable=yes\n');
  });

  test("the package's frr.conf is stock (replaceable); one with a router in it is the admin's", () => {
    expect(isStockFrrConf(readFileSync('/etc/frr/frr.conf', 'utf8'))).toBe(true);
    expect(isStockFrrConf('frr version 8.4.4\nfrr defaults traditional\nhostname lb1\nlog syslog informational\nservice integrated-vtysh-config\n!\nline vty\n!\nend\n')).toBe(true);
    expect(isStockFrrConf('log syslog informational\nrouter ospf\n')).toBe(false);
  });

  test('the unit takes the VIP off the device after every stop, a crash included; the heartbeat unit has no such line', () => {
    const unit = renderSystemdUnit(['/usr/local/bin/tsbal'], { prefix: '198.18.2.1/32', dev: 'vip0' });
    expect(unit).toContain('\nExecStopPost=-/usr/local/bin/tsbal anycast withdraw --vip 198.18.2.1/32 --dev vip0\nExecStopPost=-/sbin/ip addr del 198.18.2.1/32 dev vip0\n');
    expect(unit).toContain('\nRestart=on-failure\n');
    expect(unit).toContain('\nAfter=network-online.target systemd-networkd.service frr.service\n');
    expect(renderSystemdUnit(['/usr/local/bin/tsbal'])).not.toContain('ExecStopPost');
    expect(renderNetdev(options({ 'anycast-dev-kind': 'ifb' }))).toContain('\n[NetDev]\nName=vip0\nKind=ifb\n');
  });

  test('the router side names the node as neighbour, maximum-paths, L4 hashing and resilient hashing', () => {
    const text = routerSideLines(options(), '198.18.0.11').join('\n');
    for (const s of ['router bgp 65000', 'neighbor TSBAL remote-as 65001', 'neighbor 198.18.0.11 peer-group TSBAL', 'maximum-paths 8', 'net.ipv4.fib_multipath_hash_policy=1', 'resilient']) {
      expect(text).toContain(s);
    }
  });
});

describe('setup --anycast plan', () => {
  test('the affinity key: given, else the one in perlbal.conf (even with --force), else new; perlbal.conf 600 with it', () => {
    const first = plan(options());
    expect(first.sticky).toEqual({ secret: KEY, source: 'generated' });
    const conf = first.actions.find((a) => a.file.path === PERLBAL_CONF)!.file;
    expect(conf.mode).toBe(0o600);
    expect(conf.content).toContain(`\n  SET sticky_secret   = ${KEY}\n`);
    const again = planAnycastSetup(options({ force: [''] }), { exec: ['/usr/local/bin/tsbal'], existing: written(first.actions), now: NOW, randomKey: 'other' });
    expect(again.sticky).toEqual({ secret: KEY, source: 'existing' });
    expect(kinds(again.actions)[PERLBAL_CONF]).toBe('unchanged');
    const given = parseAnycastArgs({ ...BASE, 'sticky-secret-file': '/k' }, { addresses: ADDRESSES, liveInit: 'systemd', readSecretFile: () => '# the key\nSharedKey42\n' });
    expect(given.ok && plan(given.value).sticky).toEqual({ secret: 'SharedKey42', source: 'flag' });
    const off = plan(options({ sticky: 'off' }));
    expect(off.sticky).toBeNull();
    expect(off.actions.find((a) => a.file.path === PERLBAL_CONF)!.file).toMatchObject({ mode: 0o644, secret: false });
  });


  test('on an empty disk it creates every file; the second plan over them changes nothing', () => {
    const o = options();
    const first = plan(o);
    expect(first.errors).toEqual([]);
    expect(first.actions.map((a) => a.file.path)).toEqual(anycastPlannedPaths(o));
    expect(new Set(Object.values(kinds(first.actions)))).toEqual(new Set(['create']));
    expect(Object.keys(kinds(first.actions))).toEqual([SYSCTL_FILE, PERLBAL_CONF, FRR_DAEMONS, FRR_CONF, netdevPath(o), networkPath(o), SYSTEMD_UNIT]);
    const second = plan(o, written(first.actions));
    expect(planIsNoop(second)).toBe(true);
    expect(new Set(Object.values(kinds(second.actions)))).toEqual(new Set(['unchanged']));
  });

  test("FRR's package files are taken over without --force (with a backup): daemons edited, a stock frr.conf replaced", () => {
    const existing = new Map([
      [FRR_DAEMONS, { content: readFileSync('/etc/frr/daemons', 'utf8'), mode: 0o640 }],
      [FRR_CONF, { content: readFileSync('/etc/frr/frr.conf', 'utf8'), mode: 0o640 }],
    ]);
    const p = plan(options(), existing);
    expect(p.errors).toEqual([]);
    expect(p.actions.find((a) => a.file.path === FRR_DAEMONS)).toMatchObject({ kind: 'replace', backup: `${FRR_DAEMONS}${STAMP}` });
    expect(p.actions.find((a) => a.file.path === FRR_CONF)).toMatchObject({ kind: 'replace', backup: `${FRR_CONF}${STAMP}` });
  });

  test("an admin's frr.conf that announces another prefix is kept, and stops setup with the file's line and the way out", () => {
    const mine = 'router bgp 65001\n neighbor 198.18.0.1 remote-as 65000\n address-family ipv4 unicast\n  redistribute connected\n';
    const p = plan(options(), new Map([[FRR_CONF, { content: mine, mode: 0o640 }]]));
    expect(kinds(p.actions)[FRR_CONF]).toBe('keep');
    expect(p.errors).toContain("/etc/frr/frr.conf:4: redistribute connected without a route-map announces every connected route (this node's own subnets too), not only the VIP (redistribute connected route-map <a route-map that permits only 198.18.2.1/32>)");
    expect(p.advice[1]).toContain('--force frr.conf');
    const forced = plan(options({ force: ['frr.conf'] }), new Map([[FRR_CONF, { content: mine, mode: 0o640 }]]));
    expect(forced.errors).toEqual([]);
    expect(kinds(forced.actions)[FRR_CONF]).toBe('replace');
  });

  test('an IPv6 VIP plans cleanly: perlbal.conf listens on [VIP]:80, which the parser takes', () => {
    const p = plan(options({ anycast: '2001:db8::1', router: ['2001:db8::ff'], 'router-id': '198.18.0.11' }));
    expect(p.errors).toEqual([]);
    const conf = p.actions.find((a) => 'file' in a && a.file.path === PERLBAL_CONF);
    expect(conf !== undefined && 'file' in conf ? conf.file.content : '').toMatch(/\n {2}SET listen +?= \[2001:db8::1\]:80\n/);
  });

  test('a kept perlbal.conf with another anycast VIP is an error, not a silent mismatch with frr.conf', () => {
    const other = renderAnycastPerlbalConf(options({ anycast: '198.18.2.9' }), KEY);
    const p = plan(options(), new Map([[PERLBAL_CONF, { content: other, mode: 0o644 }]]));
    expect(p.errors).toContain('/etc/perlbal/perlbal.conf: kept as it is (it exists with other content), its anycast_vip is 198.18.2.9/32, not 198.18.2.1/32');
  });
});
