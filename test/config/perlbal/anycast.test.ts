// SERVER anycast_* (tsbal only): values, file:line errors, the cross-check that the VIP is served, typed settings.
import { describe, expect, test } from 'bun:test';
import { memoryConfigFs, readPerlbalConfig } from '../../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../../src/config/errors.ts';
import { anycastSettings } from '../../../src/config/anycast.ts';

const fs = memoryConfigFs({}, ['/tmp']);
const WEB = 'CREATE POOL p\nPOOL p ADD 10.0.0.2:80\nCREATE SERVICE web\nSET role = reverse_proxy\nSET pool = p\n';

function read(text: string) {
  const r = readPerlbalConfig(text, { file: 'p.conf', fs });
  return {
    config: r.value,
    errors: r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic),
    warnings: r.diagnostics.filter((d) => d.severity === 'warning').map(formatDiagnostic),
  };
}

describe('SERVER anycast_* values', () => {
  test('a /32 VIP on a served address gives settings with the defaults (vip0, all, 2 s)', () => {
    const r = read(`SERVER anycast_vip = 198.18.2.1/32\n${WEB}SET listen = 198.18.2.1:80\nENABLE web\n`);
    expect(r.errors).toEqual([]);
    expect(anycastSettings(r.config!)).toEqual({ vip: '198.18.2.1/32', host: '198.18.2.1', family: 4, dev: 'vip0', require: 'all', withdrawWaitMs: 2000 });
  });

  test('a bare address means the /32, and every key is taken', () => {
    const r = read(`SERVER anycast_vip = 198.18.2.1\nSERVER anycast_dev = lbvip\nSERVER anycast_require = any\nSERVER anycast_withdraw_wait = 500ms\n${WEB}SET listen = 198.18.2.1:80\nENABLE web\n`);
    expect(r.errors).toEqual([]);
    expect(anycastSettings(r.config!)).toMatchObject({ vip: '198.18.2.1/32', dev: 'lbvip', require: 'any', withdrawWaitMs: 500 });
  });

  test('a service on 0.0.0.0 serves the VIP too', () => {
    expect(read(`SERVER anycast_vip = 198.18.2.1/32\n${WEB}SET listen = 80\nENABLE web\n`).errors).toEqual([]);
  });

  test('an IPv6 /128 is served by a service listening on [that address] or on [::], compared in canonical form', () => {
    const r = read(`SERVER anycast_vip = 2001:DB8:0::1/128\n${WEB}SET listen = [2001:db8::1]:80\nENABLE web\n`);
    expect(r.errors).toEqual([]);
    expect(anycastSettings(r.config!)).toMatchObject({ vip: '2001:db8::1/128', host: '2001:db8::1', family: 6 });
    expect(read(`SERVER anycast_vip = 2001:db8::1/128\n${WEB}SET listen = [::]:80\nENABLE web\n`).errors).toEqual([]);
  });

  test('no anycast_vip: the mode is off', () => {
    expect(anycastSettings(read(`${WEB}SET listen = 80\nENABLE web\n`).config!)).toBeNull();
  });

  const GOLDEN: Array<[string, string]> = [
    ['SERVER anycast_vip = 198.18.2.0/24', 'p.conf:1: anycast_vip 198.18.2.0/24: the announced address must be one host (/32) (write 198.18.2.0/32; the router\'s ECMP route is for that single address)'],
    ['SERVER anycast_vip = lb.example.com', "p.conf:1: anycast_vip 'lb.example.com' is not an IP address (e.g. 198.18.2.1/32 or 2001:db8::1/128)"],
    ['SERVER anycast_vip = 2001:db8::1/64', "p.conf:1: anycast_vip 2001:db8::1/64: the announced address must be one host (/128) (write 2001:db8::1/128; the router's ECMP route is for that single address)"],
    ['SERVER anycast_dev = a/b', "p.conf:1: anycast_dev 'a/b' is not an interface name (at most 15 letters, digits, _ . - (e.g. vip0))"],
    ['SERVER anycast_require = most', "p.conf:1: anycast_require must be all or any, not 'most' (all: every service on the VIP needs a healthy backend; any: one is enough)"],
    ['SERVER anycast_withdraw_wait = soon', "p.conf:1: Expecting a time value for parameter 'anycast_withdraw_wait' (N (seconds), Nms, Ns or Nm, e.g. 30 or 500ms)"],
    ['SERVER anycast_vp = 198.18.2.1', "p.conf:1: unknown server option 'anycast_vp' (did you mean anycast_vip?)"],
    [`${WEB}SET listen = 10.0.0.1:80\nENABLE web\nSERVER anycast_vip = 198.18.2.1/32`, 'p.conf:8: no enabled service listens on anycast_vip 198.18.2.1/32; it would never be announced (SET listen = 198.18.2.1:PORT on the service to announce (now: web on 10.0.0.1:80))'],
    [`SERVER anycast_vip = 2001:db8::1/128\n${WEB}SET listen = 80\nENABLE web`, 'p.conf:1: no enabled service listens on anycast_vip 2001:db8::1/128; it would never be announced (SET listen = [2001:db8::1]:PORT on the service to announce (now: web on 0.0.0.0:80))'],
  ];
  for (const [text, want] of GOLDEN) {
    test(`error: ${want}`, () => expect(read(text).errors[0] ?? '(accepted)').toBe(want));
  }

  test('anycast_dev without anycast_vip is a warning at its line', () => {
    const r = read(`${WEB}SET listen = 80\nENABLE web\nSERVER anycast_dev = vip0\n`);
    expect(r.errors).toEqual([]);
    expect(r.warnings).toContain('p.conf:8: warning: SERVER anycast_dev has no effect without SERVER anycast_vip (SERVER anycast_vip = 198.18.2.1/32)');
  });
});
