// tsbal's IPv6 ACCESS rules and trusted_upstream_proxies: matching by address bits, IPv4-mapped clients stay IPv4.
import { describe, expect, test } from 'bun:test';
import { accessDecision, compileAccess } from '../../src/proxy/access.ts';
import { isTrusted, parseNetmask, type Netmask } from '../../src/proxy/trust.ts';
import { parseIpv6Network } from '../../src/config/ipv6.ts';
import type { AccessRule } from '../../src/config/model.ts';

const loc = { file: 'p.conf', line: 1 };
const rule = (action: AccessRule['action'], kind: AccessRule['kind'], value: string): AccessRule => ({ action, kind, value, loc });

describe('IPv6 ACCESS rules', () => {
  const policy = compileAccess({
    policy: 'deny',
    rules: [rule('deny', 'ip', '2001:DB8::0:7'), rule('allow', 'netmask', '2001:db8::/32'), rule('allow', 'ip', '::1'), rule('allow', 'netmask', '10.0.0.0/8')],
  }, false);

  test('an ip rule matches the canonical address; a netmask matches its network only', () => {
    expect(accessDecision(policy, '2001:db8::7')).toEqual({ kind: 'deny', rule: 0 });
    expect(accessDecision(policy, '2001:db8:ffff::1')).toEqual({ kind: 'allow', rule: 1 });
    expect(accessDecision(policy, '2001:db9::1')).toEqual({ kind: 'deny', rule: -1 });
    expect(accessDecision(policy, '::1')).toEqual({ kind: 'allow', rule: 2 });
  });

  test('an IPv4-mapped client matches IPv4 rules, never an IPv6 netmask', () => {
    expect(accessDecision(policy, '::ffff:10.1.2.3')).toEqual({ kind: 'allow', rule: 3 });
    expect(accessDecision(compileAccess({ policy: 'deny', rules: [rule('allow', 'netmask', '::/0')] }, false), '::ffff:10.1.2.3').kind).toBe('deny');
    expect(accessDecision(compileAccess({ policy: 'deny', rules: [rule('allow', 'netmask', '::/0')] }, false), '2001:db8::1').kind).toBe('allow');
  });

  test('an IPv4 a.b.c.d:mask netmask is still IPv4', () => {
    expect(accessDecision(compileAccess({ policy: 'deny', rules: [rule('allow', 'netmask', '192.168.0.0:255.255.0.0')] }, false), '192.168.4.4').kind).toBe('allow');
  });
});

describe('parseIpv6Network', () => {
  test('canonical address and prefix; a bare address is a /128', () => {
    expect(parseIpv6Network('2001:DB8::/32')).toEqual({ ok: true, value: { address: '2001:db8::', bits: 32 } });
    expect(parseIpv6Network('::1')).toEqual({ ok: true, value: { address: '::1', bits: 128 } });
  });
  test('bad forms say why', () => {
    expect(parseIpv6Network('2001:db8::/129')).toEqual({ ok: false, message: "'2001:db8::/129': the prefix length must be 0 to 128" });
    expect(parseIpv6Network('2001:db8::g/32')).toEqual({ ok: false, message: "'2001:db8::g/32': not an IPv6 address or ipv6/bits (e.g. 2001:db8::/32)" });
  });
});

describe('trusted_upstream_proxies with IPv6', () => {
  const masks = ['::1', '2001:db8::/48', '10.0.0.0/8'].map((s) => parseNetmask(s)!) as Netmask[];
  test('IPv6 peers match IPv6 masks, IPv4-mapped peers IPv4 masks', () => {
    expect(isTrusted('::1', masks)).toBe(true);
    expect(isTrusted('2001:db8:0:1::5', masks)).toBe(true);
    expect(isTrusted('2001:db8:1::5', masks)).toBe(false);
    expect(isTrusted('::ffff:10.9.9.9', masks)).toBe(true);
    expect(isTrusted('10.9.9.9', masks)).toBe(true);
    expect(isTrusted('::ffff:11.0.0.1', masks)).toBe(false);
  });
  test('a bad IPv6 entry does not parse', () => expect(parseNetmask('2001:db8::/200')).toBeNull());
});
