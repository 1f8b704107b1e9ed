import { describe, expect, test } from 'bun:test';
import { checkFrrAgainstVip, checkFrrDaemons, parseFrrConf, usesBfd } from '../../src/config/frr.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';
import { parseAnycastArgs } from '../../src/setup/anycast-options.ts';
import { renderFrrConf } from '../../src/setup/frr.ts';

const FILE = '/etc/frr/frr.conf';
const VIP = '198.18.2.1/32';

function written(anycast = '198.18.2.1'): string {
  const r = parseAnycastArgs(
    { node: 'lb1', anycast, router: ['198.18.0.1'], 'router-asn': '65000', asn: '65001', 'router-id': '198.18.0.11', backend: '198.18.0.21' },
    { addresses: [], liveInit: 'systemd' },
  );
  if (!r.ok) throw new Error(r.errors.join('; '));
  return renderFrrConf(r.value);
}

const lines = (text: string, vip = VIP): string[] => checkFrrAgainstVip(text, FILE, vip).map(formatDiagnostic);

/** The reference note's minimal LB config, hand-written (no indentation of `exit`, other names). */
const REFERENCE = `ip prefix-list VIP seq 5 permit 198.18.2.1/32
route-map VIP-ONLY permit 10
 match ip address prefix-list VIP
bfd
 profile fast
  detect-multiplier 3
router bgp 65001
 bgp router-id 198.18.0.11
 no bgp ebgp-requires-policy
 neighbor 198.18.0.1 remote-as 65000
 neighbor 198.18.0.1 timers 3 9
 neighbor 198.18.0.1 bfd
 address-family ipv4 unicast
  redistribute connected route-map VIP-ONLY
`;

describe('frr.conf against anycast_vip', () => {
  test('what setup writes passes without a word, IPv4 and IPv6', () => {
    expect(lines(written())).toEqual([]);
    expect(lines(written('2001:db8::1'), '2001:db8::1/128')).toEqual([]);
  });

  test("the reference note's hand-written config passes: names and layout do not matter", () => {
    expect(lines(REFERENCE)).toEqual([]);
    expect(usesBfd(REFERENCE)).toBe(true);
  });

  test('a prefix-list for another address is an error at its line, and says the VIP is never announced', () => {
    expect(lines(REFERENCE, '198.18.2.9/32')).toEqual([
      '/etc/frr/frr.conf:1: prefix-list VIP permits 198.18.2.1/32: only anycast_vip 198.18.2.9/32 (perlbal.conf) may be announced (ip prefix-list VIP seq 5 permit 198.18.2.9/32)',
      '/etc/frr/frr.conf:14: route-map VIP-ONLY does not permit anycast_vip 198.18.2.9/32 (perlbal.conf): the VIP is never announced',
    ]);
  });

  test('a prefix-list that permits a range, or more than the VIP, is an error', () => {
    const wide = REFERENCE.replace('permit 198.18.2.1/32', 'permit 198.18.2.0/24 le 32');
    expect(lines(wide)[0]).toBe('/etc/frr/frr.conf:1: prefix-list VIP permits 198.18.2.0/24 (a range): only anycast_vip 198.18.2.1/32 (perlbal.conf) may be announced (ip prefix-list VIP seq 5 permit 198.18.2.1/32)');
    const extra = `ip prefix-list VIP seq 10 permit 10.0.0.0/8\n${REFERENCE}`;
    expect(lines(extra)).toEqual(['/etc/frr/frr.conf:1: prefix-list VIP permits 10.0.0.0/8: only anycast_vip 198.18.2.1/32 (perlbal.conf) may be announced (ip prefix-list VIP seq 5 permit 198.18.2.1/32)']);
  });

  test('redistribute connected without a route-map announces every connected route: an error', () => {
    expect(lines(REFERENCE.replace('redistribute connected route-map VIP-ONLY', 'redistribute connected'))).toEqual([
      "/etc/frr/frr.conf:14: redistribute connected without a route-map announces every connected route (this node's own subnets too), not only the VIP (redistribute connected route-map <a route-map that permits only 198.18.2.1/32>)",
    ]);
  });

  test('no neighbour, no router bgp: errors; eBGP without the policy switch: an error at the neighbour', () => {
    expect(lines('ip prefix-list VIP seq 5 permit 198.18.2.1/32\n')).toEqual([
      '/etc/frr/frr.conf: no router bgp: nothing announces anycast_vip 198.18.2.1/32 to the router (tsbal setup --anycast writes this file; see docs/setup.md)',
    ]);
    expect(lines(REFERENCE.replace(/ neighbor 198\.18\.0\.1 .*\n/g, ''))).toEqual([
      '/etc/frr/frr.conf:7: router bgp 65001 has no neighbour with a remote-as: anycast_vip 198.18.2.1/32 is announced to nobody',
    ]);
    expect(lines(REFERENCE.replace(' no bgp ebgp-requires-policy\n', ''))).toEqual([
      '/etc/frr/frr.conf:9: neighbour 198.18.0.1 (eBGP) gets nothing: FRR 8 sends no route over eBGP without an outbound policy (add `no bgp ebgp-requires-policy` under router bgp)',
    ]);
  });

  test('a neighbour in this node\'s own AS (iBGP) is a warning at its line: the router side printed is eBGP', () => {
    const ibgp = checkFrrAgainstVip(REFERENCE.replace('remote-as 65000', 'remote-as 65001'), FILE, VIP);
    expect(ibgp.map(formatDiagnostic)).toEqual([
      `${FILE}:10: warning: neighbour 198.18.0.1 is iBGP (remote-as 65001, this node's own AS 65001): the router spreads over the nodes only with \`maximum-paths ibgp\`, not the eBGP setup that tsbal setup --anycast prints (give the nodes an AS of their own (the same on every node), other than the router's)`,
    ]);
    expect(lines(REFERENCE.replace('remote-as 65000', 'remote-as internal')).length).toBe(1);
  });

  test('no BFD and no router-id are warnings; a peer-group carries remote-as and bfd to its members', () => {
    const noBfd = checkFrrAgainstVip(REFERENCE.replace(' neighbor 198.18.0.1 bfd\n', '').replace(' bgp router-id 198.18.0.11\n', ''), FILE, VIP);
    expect(noBfd.map((d) => d.severity)).toEqual(['warning', 'warning']);
    expect(noBfd.map((d) => d.message).join('\n')).toContain('neighbour 198.18.0.1 has no bfd');
    expect(noBfd.map((d) => d.message).join('\n')).toContain('no bgp router-id');
    const grouped = REFERENCE.replace(/ neighbor 198\.18\.0\.1 .*\n/g, '').replace(' no bgp ebgp-requires-policy\n', ' no bgp ebgp-requires-policy\n neighbor UP peer-group\n neighbor UP remote-as 65000\n neighbor UP bfd\n neighbor 198.18.0.1 peer-group UP\n');
    expect(lines(grouped)).toEqual([]);
    expect([...parseFrrConf(grouped).bgp!.neighbours.keys()]).toEqual(['UP', '198.18.0.1']);
  });

  test('daemons: bgpd off is an error, bfdd off only when frr.conf uses bfd', () => {
    expect(checkFrrDaemons('bgpd=yes\nbfdd=yes\n', '/etc/frr/daemons', true)).toEqual([]);
    expect(checkFrrDaemons('bgpd=no\nbfdd=no\n', '/etc/frr/daemons', false).map(formatDiagnostic)).toEqual([
      '/etc/frr/daemons:1: bgpd is not on: FRR will not speak BGP, so nothing announces the anycast VIP (bgpd=yes, then systemctl restart frr)',
    ]);
    expect(checkFrrDaemons('bgpd=yes\nbfdd=no\n', '/etc/frr/daemons', true).map((d) => d.line)).toEqual([2]);
  });
});
