import { describe, expect, test } from 'bun:test';
import { parseHaResources } from '../../src/config/haresources.ts';
import { expectConfigError } from './helpers.ts';

const F = '/etc/ha.d/haresources';

describe('parseHaResources', () => {
  test('the tutorial line: a home node and a bare VIP, which means IPaddr', () => {
    const res = parseHaResources('lb1.example.com        192.168.0.99\n', F);
    expect(res.groups).toEqual([
      {
        node: 'lb1.example.com',
        key: '192.168.0.99',
        resources: [{ kind: 'ip', agent: 'IPaddr', ip: '192.168.0.99', cidr: null, iface: null, label: null, broadcast: null, raw: '192.168.0.99' }],
        loc: { file: F, line: 1 },
      },
    ]);
  });

  test('IPaddr:: and IPaddr2:: forms with prefix, interface, label and broadcast; scripts with arguments', () => {
    const res = parseHaResources('LB1 IPaddr::198.18.0.99/24/eth0 IPaddr2::198.18.0.98/24/eth0:vip/198.18.0.255 perlbal httpd::reload\n', F);
    const [g] = res.groups;
    expect(g!.node).toBe('lb1');
    expect(g!.key).toBe('IPaddr::198.18.0.99/24/eth0');
    expect(g!.resources).toEqual([
      { kind: 'ip', agent: 'IPaddr', ip: '198.18.0.99', cidr: 24, iface: 'eth0', label: null, broadcast: null, raw: 'IPaddr::198.18.0.99/24/eth0' },
      { kind: 'ip', agent: 'IPaddr2', ip: '198.18.0.98', cidr: 24, iface: 'eth0', label: 'vip', broadcast: '198.18.0.255', raw: 'IPaddr2::198.18.0.98/24/eth0:vip/198.18.0.255' },
      { kind: 'script', name: 'perlbal', args: [], raw: 'perlbal' },
      { kind: 'script', name: 'httpd', args: ['reload'], raw: 'httpd::reload' },
    ]);
  });

  test('IP/BITS/BROADCAST: a third part starting with a digit is the broadcast', () => {
    const r = parseHaResources('lb1 135.9.8.7/24/135.9.8.210\n', F).groups[0]!.resources[0];
    expect(r).toMatchObject({ kind: 'ip', ip: '135.9.8.7', cidr: 24, iface: null, broadcast: '135.9.8.210' });
  });

  test('a trailing backslash continues the group; comments are dropped', () => {
    const res = parseHaResources('# groups\nlb1 198.18.0.99 \\\n   perlbal # the proxy\nlb2 198.18.0.98\n', F);
    expect(res.groups.map((g) => [g.node, g.resources.length, g.loc.line])).toEqual([['lb1', 2, 2], ['lb2', 1, 4]]);
  });
});

describe('haresources errors (golden)', () => {
  test('bad addresses, prefixes and empty groups are listed with their lines', () => {
    const text = ['lb1 IPaddr::198.18.0.300/24', 'lb1 IPaddr::198.18.0.9/255.255.255.0', 'lb2', 'lb1 IPaddr2::', 'lb1 198.18.0.7/24/eth0 198.18.0.7'].join('\n');
    expectConfigError(() => parseHaResources(text, F), [
      `${F}:1: IPaddr::198.18.0.300/24: '198.18.0.300' is not an IPv4 address (IP[/BITS[/IFACE[/BROADCAST]]], e.g. IPaddr::198.18.0.99/24/eth0)`,
      `${F}:2: IPaddr::198.18.0.9/255.255.255.0: '255.255.255.0' is not a prefix length (0 to 32) (write the netmask as a prefix length, e.g. /24)`,
      `${F}:3: resource group for node lb2 lists no resources (NODE RESOURCE..., e.g. lb1 IPaddr::198.18.0.99/24/eth0 perlbal)`,
      `${F}:4: IPaddr2::: IPaddr2 takes one argument, the address (IPaddr2::198.18.0.99/24/eth0)`,
      `${F}:5: 198.18.0.7 is already a resource on line 5 (an address can belong to one group only)`,
    ]);
  });
});
