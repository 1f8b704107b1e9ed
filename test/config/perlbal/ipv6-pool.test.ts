// tsbal's IPv6 backends: `POOL p ADD [ipv6]:port` in the config and in nodefiles, canonical like listen; file:line errors.
import { describe, expect, test } from 'bun:test';
import { memoryConfigFs, readPerlbalConfig } from '../../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../../src/config/errors.ts';
import { parseNodefileText } from '../../../src/config/perlbal/nodefile.ts';
import { formatHostPort, parseNode } from '../../../src/config/perlbal/values.ts';
import { summarizePerlbal } from '../../../src/config/summary.ts';

const fs = memoryConfigFs({}, ['/tmp']);
function read(text: string) {
  const r = readPerlbalConfig(text, { file: 'p.conf', fs });
  return { config: r.value, errors: r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic), warnings: r.diagnostics.filter((d) => d.severity === 'warning').map(formatDiagnostic) };
}

describe('parseNode with a bracketed IPv6 host', () => {
  const OK: Array<[string, string | undefined, string, number]> = [
    ['[::1]', '8080', '::1', 8080],
    ['[::1]', undefined, '::1', 80],
    ['[2001:DB8:0::1]', '81', '2001:db8::1', 81],
    ['10.0.0.2', '80', '10.0.0.2', 80],
  ];
  for (const [ip, port, host, p] of OK) {
    test(`${ip}:${port ?? ''} is ${host} port ${p}`, () => expect(parseNode(ip, port)).toEqual({ host, port: p }));
  }
  for (const [ip, port] of [['[::g]', '80'], ['[10.0.0.1]', '80'], ['[::1', '80'], ['[::1]', '65536'], ['::1', '80']] as const) {
    test(`${ip}:${port} is refused`, () => expect(parseNode(ip, port)).toBeNull());
  }
});

describe('POOL ADD [ipv6]:port', () => {
  test('adds a canonical IPv6 node, summarised in brackets', () => {
    const r = read('CREATE POOL p\nPOOL p ADD [2001:DB8::0:1]:8080\nPOOL p ADD 10.0.0.2:80\nCREATE SERVICE web\nSET role = reverse_proxy\nSET pool = p\nSET listen = 127.0.0.1:0\nENABLE web\n');
    expect(r.errors).toEqual([]);
    expect(r.config.pools[0]!.nodes).toEqual([{ host: '2001:db8::1', port: 8080 }, { host: '10.0.0.2', port: 80 }]);
    expect(summarizePerlbal(r.config).join('\n')).toContain('[2001:db8::1]:8080, 10.0.0.2:80');
  });

  test('the same IPv6 node written twice warns in brackets', () => {
    expect(read('CREATE POOL p\nPOOL p ADD [::1]:80\nPOOL p ADD [0::1]\n').warnings).toEqual(['p.conf:3: warning: [::1]:80 is already in pool p']);
  });

  test('a bad IPv6 node is a file:line error with an example', () => {
    expect(read('CREATE POOL p\nPOOL p ADD [::g]:80\n').errors)
      .toEqual(["p.conf:2: Invalid syntax to 'pool' command ('[::g]:80' is not [ipv6]:port with a valid IPv6 address and port, e.g. [2001:db8::1]:80)"]);
    expect(read('CREATE POOL p\nPOOL p ADD ::1:80\n').errors)
      .toEqual(["p.conf:2: Invalid syntax to 'pool' command ('::1:80' is not [ipv6]:port with a valid IPv6 address and port, e.g. [2001:db8::1]:80)"]);
  });

  test('an IPv4 form keeps Perlbal\'s message', () => {
    expect(read('CREATE POOL p\nPOOL p ADD 10.0.0.300:80\n').errors)
      .toEqual(["p.conf:2: Invalid syntax to 'pool' command ('10.0.0.300:80' is not ip[:port] with a valid IPv4 address and port)"]);
  });
});

describe('nodefile lines with IPv6 backends', () => {
  test('a bracketed address with or without a port, and a bad one located by line', () => {
    const r = parseNodefileText('[::1]:8080 weight=2\n[2001:db8::2]\n[::zz]:80\n10.0.0.1:81\n');
    expect(r.nodes).toEqual([{ host: '::1', port: 8080, weight: 2 }, { host: '2001:db8::2', port: 80 }, { host: '10.0.0.1', port: 81 }]);
    expect(r.problems).toEqual([{ line: 3, message: "'[::zz]:80' is not a valid [IPv6] address and port" }]);
  });
});

describe('ACCESS and trusted_upstream_proxies with IPv6', () => {
  const SVC = 'LOAD AccessControl\nCREATE POOL p\nPOOL p ADD [::1]:8080\nCREATE SERVICE web\nSET role = reverse_proxy\nSET pool = p\nSET listen = [::1]:0\nSET plugins = AccessControl\n';
  test('IPv6 ip and netmask rules and proxies are accepted', () => {
    const r = read(`${SVC}ACCESS ALLOW netmask 2001:db8::/32\nACCESS DENY ip ::1\nSET trusted_upstream_proxies = ::1, 2001:db8::/48, 10.0.0.0/8\nENABLE web\n`);
    expect(r.errors).toEqual([]);
  });
  test('bad IPv6 forms are file:line errors', () => {
    expect(read(`${SVC}ACCESS ALLOW netmask 2001:db8::/129\n`).errors).toEqual(["p.conf:9: Error parsing netmask ('2001:db8::/129': the prefix length must be 0 to 128)"]);
    expect(read(`${SVC}ACCESS ALLOW ip ::g\n`).errors)
      .toEqual(["p.conf:9: ACCESS ALLOW ip: '::g' is not an IPv4 or IPv6 address ('::g': not an IPv6 address or ipv6/bits (e.g. 2001:db8::/32))"]);
    expect(read(`${SVC}ACCESS ALLOW ip 2001:db8::/32\n`).errors).toEqual(["p.conf:9: ACCESS ALLOW ip: '2001:db8::/32' is a network (write ACCESS ALLOW netmask 2001:db8::/32)"]);
    expect(read(`${SVC}SET trusted_upstream_proxies = ::1, 2001:db8::zz\n`).errors[0]).toStartWith("p.conf:9: Error defining trusted upstream proxies: '2001:db8::zz' is not an address or CIDR");
  });
  test('IPv4 forms keep Perlbal\'s messages', () => {
    expect(read(`${SVC}ACCESS ALLOW ip 10.0.0.300\n`).errors).toEqual(["p.conf:9: ACCESS ALLOW ip: '10.0.0.300' is not an IPv4 address"]);
  });
});

describe('node keys', () => {
  test('an IPv6 backend has one key however it is written ([::1]:80), so its sticky id does not change with the spelling', () => {
    const key = (ip: string, port: string) => formatHostPort(parseNode(ip, port)!);
    expect(key('[0:0::1]', '80')).toBe('[::1]:80');
    expect(key('[::1]', '80')).toBe('[::1]:80');
    expect(key('10.0.0.2', '80')).toBe('10.0.0.2:80');
  });
});
