// SET listen: Perlbal's `ip:port` and `port`, and tsbal's `[ipv6]:port`; file:line errors; overlap detection.
import { describe, expect, test } from 'bun:test';
import { memoryConfigFs, readPerlbalConfig } from '../../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../../src/config/errors.ts';
import { formatHostPort, listensOverlap, parseListen } from '../../../src/config/perlbal/values.ts';
import { dumpConfig } from '../../../src/proxy/management/dumpconfig.ts';
import { summarizePerlbal } from '../../../src/config/summary.ts';

const fs = memoryConfigFs({}, ['/tmp']);
const service = (name: string, listen: string, role = 'reverse_proxy'): string =>
  `CREATE SERVICE ${name}\nSET role = ${role}\n${role === 'reverse_proxy' ? 'SET pool = p\n' : ''}SET listen = ${listen}\nENABLE ${name}\n`;
const POOL = 'CREATE POOL p\nPOOL p ADD 10.0.0.2:80\n';

function read(text: string) {
  const r = readPerlbalConfig(text, { file: 'p.conf', fs });
  return { config: r.value, errors: r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic), warnings: r.diagnostics.filter((d) => d.severity === 'warning').map(formatDiagnostic) };
}

describe('parseListen', () => {
  const OK: Array<[string, string, number]> = [
    ['80', '0.0.0.0', 80],
    ['192.168.0.1:81', '192.168.0.1', 81],
    ['[2001:db8::1]:80', '2001:db8::1', 80],
    ['[::]:80', '::', 80],
    ['[::1]:0', '::1', 0],
    ['[2001:DB8:0:0::0:1]:443', '2001:db8::1', 443],
    ['[::ffff:10.0.0.1]:80', '::ffff:a00:1', 80],
  ];
  for (const [raw, host, port] of OK) {
    test(`${raw} is ${host} port ${port}`, () => expect(parseListen(raw)).toEqual({ ok: true, value: { host, port } }));
  }

  test('an IPv6 host prints back in brackets, an IPv4 one without', () => {
    expect(formatHostPort({ host: '2001:db8::1', port: 80 })).toBe('[2001:db8::1]:80');
    expect(formatHostPort({ host: '10.0.0.1', port: 80 })).toBe('10.0.0.1:80');
  });
});

describe('SET listen errors carry file:line', () => {
  const USAGE = 'Listen argument for an IPv6 address must be [ipv6]:port. e.g. [2001:db8::1]:80 or [::]:80';
  const BAD: Array<[string, string]> = [
    ['2001:db8::1:80', 'an IPv6 address needs brackets and a port: [2001:db8::1]:80'],
    ['[2001:db8::1:80', "'[2001:db8::1:80' has no closing ']'"],
    ['[2001:db8::g]:80', "'2001:db8::g' is not a valid IPv6 address"],
    ['[10.0.0.1]:80', "'10.0.0.1' is not a valid IPv6 address"],
    ['[2001:db8::1]', 'no port after [2001:db8::1]; e.g. [2001:db8::1]:80'],
    ['[2001:db8::1]:', 'no port after [2001:db8::1]; e.g. [2001:db8::1]:80'],
    ['[2001:db8::1]80', "'80' after [2001:db8::1] is not :port"],
    ['[2001:db8::1]:65536', 'port 65536 is out of range (0 to 65535)'],
    ['[fe80::1%eth0]:80', "'fe80::1%eth0' is not a valid IPv6 address"],
  ];
  test('an IPv4 form keeps Perlbal\'s message', () => {
    expect(read(`${POOL}CREATE SERVICE web\nSET role = reverse_proxy\nSET listen = lb.example.com:80\n`).errors[0])
      .toBe('p.conf:5: Listen argument must be ip:port or port. e.g. 192.168.0.1:80 or 81 (host names are not accepted; write the IP address)');
  });

  for (const [raw, hint] of BAD) {
    test(`${raw}: ${hint}`, () => {
      const r = read(`${POOL}CREATE SERVICE web\nSET role = reverse_proxy\nSET listen = ${raw}\n`);
      expect(r.errors[0]).toBe(`p.conf:5: ${USAGE} (${hint})`);
    });
  }
});

describe('listens that take the same socket', () => {
  test('[::]:80 and 0.0.0.0:80 are different sockets ([::] binds IPv6 only)', () => {
    expect(listensOverlap({ host: '::', port: 80 }, { host: '0.0.0.0', port: 80 })).toBe(false);
    expect(read(`${POOL}${service('v4', '80')}${service('v6', '[::]:80')}`).errors).toEqual([]);
  });

  test('[::]:80 clashes with [2001:db8::1]:80, and the same IPv6 address written twice clashes', () => {
    expect(read(`${POOL}${service('a', '[::]:80')}${service('b', '[2001:db8::1]:80')}`).errors)
      .toEqual(['p.conf:8: service b listens on [2001:db8::1]:80, which service a (line 3) already uses']);
    expect(read(`${POOL}${service('a', '[2001:db8::1]:80')}${service('b', '[2001:DB8::0:1]:80')}`).errors)
      .toEqual(['p.conf:8: service b listens on [2001:db8::1]:80, which service a (line 3) already uses']);
  });

  test('0.0.0.0:80 does not clash with [2001:db8::1]:80', () => {
    expect(listensOverlap({ host: '0.0.0.0', port: 80 }, { host: '2001:db8::1', port: 80 })).toBe(false);
  });
});

describe('IPv6 listen in what tsbal prints', () => {
  test('dumpconfig prints SET listen bracketed, and reading it back gives the same listen', () => {
    const r = read(`${POOL}${service('web', '[2001:db8::1]:8080')}`);
    expect(r.errors).toEqual([]);
    const dumped = dumpConfig(r.config!);
    expect(dumped).toContain('  SET listen = [2001:db8::1]:8080');
    expect(summarizePerlbal(r.config!).join('\n')).toContain('listen [2001:db8::1]:8080');
    expect(read(dumped.join('\n')).config!.services.find((s) => s.name === 'web')!.listen).toEqual({ host: '2001:db8::1', port: 8080 });
  });

  test('a management service on [::1] is loopback (no warning); on [::] it warns', () => {
    expect(read(service('mgmt', '[::1]:60000', 'management')).warnings).toEqual([]);
    expect(read(service('mgmt', '[::]:60000', 'management')).warnings)
      .toEqual(['p.conf:1: warning: management service mgmt listens on [::]:60000; the management port has no authentication (listen on 127.0.0.1)']);
  });
});
