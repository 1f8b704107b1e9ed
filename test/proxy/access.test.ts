import { describe, expect, test } from 'bun:test';
import { accessClientIp, accessDecision, compileAccess, observedIp } from '../../src/proxy/access.ts';
import type { AccessRule } from '../../src/config/model.ts';

const loc = { file: 'p.conf', line: 1 };
const rule = (action: AccessRule['action'], kind: AccessRule['kind'], value: string): AccessRule => ({ action, kind, value, loc });

describe('AccessControl decisions', () => {
  const policy = compileAccess(
    {
      policy: 'deny',
      rules: [
        rule('deny', 'ip', '10.0.0.7'),
        rule('allow', 'netmask', '10.0.0.0/24'),
        rule('queue_low', 'netmask', '192.168.0.0:255.255.0.0'),
        rule('allow', 'ip', '172.16.0.1'),
      ],
    },
    false,
  );

  test('the first matching rule decides, in config order', () => {
    expect(accessDecision(policy, '10.0.0.7')).toEqual({ kind: 'deny', rule: 0 });
    expect(accessDecision(policy, '10.0.0.8')).toEqual({ kind: 'allow', rule: 1 });
    expect(accessDecision(policy, '192.168.44.1')).toEqual({ kind: 'queue_low', rule: 2 });
    expect(accessDecision(policy, '172.16.0.1')).toEqual({ kind: 'allow', rule: 3 });
  });

  test('with no match the policy decides; allow is the default policy', () => {
    expect(accessDecision(policy, '10.0.1.1')).toEqual({ kind: 'deny', rule: -1 });
    expect(accessDecision(compileAccess({ policy: 'allow', rules: [] }, false), '1.2.3.4')).toEqual({ kind: 'allow', rule: -1 });
  });

  test('network edges: first and last address in, one past out', () => {
    expect(accessDecision(policy, '10.0.0.0').kind).toBe('allow');
    expect(accessDecision(policy, '10.0.0.255').kind).toBe('allow');
    expect(accessDecision(policy, '10.0.1.0').kind).toBe('deny');
    expect(accessDecision(policy, '9.255.255.255').kind).toBe('deny');
  });

  test('an ip rule is an exact string match and a netmask never matches a non-IPv4 value', () => {
    const p = compileAccess({ policy: 'deny', rules: [rule('allow', 'ip', '10.0.0.1'), rule('allow', 'netmask', 'any')] }, false);
    expect(accessDecision(p, '10.0.0.1').kind).toBe('allow');
    expect(accessDecision(p, 'unknown').kind).toBe('deny');
    expect(accessDecision(p, '::1').kind).toBe('deny');
  });

  test('use_observed_ip: a trusted peer is judged by its first X-Forwarded-For entry, others by their address', () => {
    const p = compileAccess({ policy: 'deny', rules: [rule('allow', 'ip', '10.1.2.3')] }, true);
    const xff = (v: string | undefined) => () => v;
    expect(accessClientIp(p, '127.0.0.1', true, xff('10.1.2.3, 127.0.0.1'))).toBe('10.1.2.3');
    expect(accessClientIp(p, '127.0.0.1', false, xff('10.1.2.3'))).toBe('127.0.0.1');
    expect(accessClientIp(p, '127.0.0.1', true, xff(undefined))).toBe('127.0.0.1');
    expect(accessClientIp(p, '127.0.0.1', true, xff(', 10.1.2.3'))).toBe('127.0.0.1');
    const off = compileAccess({ policy: 'deny', rules: [] }, false);
    expect(accessClientIp(off, '127.0.0.1', true, xff('10.1.2.3'))).toBe('127.0.0.1');
  });

  test('observedIp takes the first comma-separated entry', () => {
    expect(observedIp('1.2.3.4,5.6.7.8')).toBe('1.2.3.4');
    expect(observedIp(' 1.2.3.4 , 5.6.7.8')).toBe('1.2.3.4');
    expect(observedIp('')).toBeNull();
    expect(observedIp(undefined)).toBeNull();
  });
});
