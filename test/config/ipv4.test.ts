import { describe, expect, test } from 'bun:test';
import { inNetwork, parseNetmaskSpec } from '../../src/config/ipv4.ts';

const net = (spec: string): string => {
  const r = parseNetmaskSpec(spec);
  return r.ok ? `${[24, 16, 8, 0].map((s) => Math.floor(r.value.network / 2 ** s) % 256).join('.')}/${r.value.bits}` : `error: ${r.message}`;
};

describe("netmask specs (Net::Netmask's new2 forms, as ACCESS netmask takes them)", () => {
  test('address, /bits, /mask, :mask, #hostmask, range, any/default; host bits cleared', () => {
    expect(net('127.0.0.1')).toBe('127.0.0.1/32');
    expect(net('127.0.0.5/24')).toBe('127.0.0.0/24');
    expect(net('10.0.0.0/255.0.0.0')).toBe('10.0.0.0/8');
    expect(net('10.0.0.0:255.255.0.0')).toBe('10.0.0.0/16');
    expect(net('10.0.0.0#0.255.255.255')).toBe('10.0.0.0/8');
    expect(net('10.0.0.0-10.0.0.255')).toBe('10.0.0.0/24');
    expect(net('any')).toBe('0.0.0.0/0');
    expect(net('DEFAULT')).toBe('0.0.0.0/0');
    expect(net('0.0.0.0/0')).toBe('0.0.0.0/0');
  });

  test('refused as Net::Netmask refuses them', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0.0/255.0.255.0', '10.0.0.0-10.0.0.5', '1.2.3.256', '010.0.0.1/32', '10.1/16', 'foo', '::1/128', '10.0.0.0/']) {
      expect(net(bad)).toStartWith('error: ');
    }
  });

  test('inNetwork covers exactly the block', () => {
    const r = parseNetmaskSpec('192.168.1.0/30');
    if (!r.ok) throw new Error(r.message);
    expect(['192.168.1.0', '192.168.1.3', '192.168.1.4', '192.168.0.255', 'x'].map((ip) => inNetwork(ip, r.value))).toEqual([true, true, false, false, false]);
  });
});
