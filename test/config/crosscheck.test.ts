import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { checkAcrossFiles, checkListenAddresses } from '../../src/config/crosscheck.ts';
import { memoryConfigFs, parsePerlbalConfig } from '../../src/config/perlbal.ts';
import { parseHaCf } from '../../src/config/hacf.ts';
import { parseAuthKeys } from '../../src/config/authkeys.ts';
import { parseHaResources } from '../../src/config/haresources.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';
import type { HaDirConfig } from '../../src/config/model.ts';

const fixture = (p: string) => readFileSync(new URL(`./fixtures/tutorial/${p}`, import.meta.url), 'utf8');
const ha = (resources: string): HaDirConfig => ({
  dir: '/etc/ha.d',
  hacf: parseHaCf(fixture('ha.d/ha.cf'), '/etc/ha.d/ha.cf'),
  authkeys: parseAuthKeys(fixture('ha.d/authkeys'), '/etc/ha.d/authkeys'),
  haresources: parseHaResources(resources, '/etc/ha.d/haresources'),
});
const perlbal = (text: string) => parsePerlbalConfig(text, { file: 'p.conf' });

describe('checks across perlbal.conf and /etc/ha.d', () => {
  test('the tutorial: the VIP is the balancer\'s listen address, nothing to say while ip_nonlocal_bind is on', () => {
    expect(checkAcrossFiles(perlbal(fixture('perlbal-section4.conf')), ha(fixture('ha.d/haresources')), { nonlocalBind: true, localAddresses: null })).toEqual([]);
  });

  test('a service on 0.0.0.0 also serves the VIP', () => {
    const cfg = perlbal(fixture('perlbal-section4.conf').replace('192.168.0.99:80', '80'));
    expect(checkAcrossFiles(cfg, ha(fixture('ha.d/haresources')), { nonlocalBind: false, localAddresses: null })).toEqual([]);
  });

  test('warns when no service listens on the VIP, and when the standby could not bind it', () => {
    const cfg = perlbal(fixture('perlbal-section4.conf'));
    const out = checkAcrossFiles(cfg, ha('lb1.example.com 192.168.0.99 IPaddr2::192.168.0.98/24/eth0\n'), { nonlocalBind: false, localAddresses: null }).map(formatDiagnostic);
    expect(out).toEqual([
      '/etc/ha.d/haresources:1: warning: VIP 192.168.0.98 is served by no enabled service in p.conf: the cluster moves it, but no client request to it is answered (balancer on 192.168.0.99:80) (SET listen = 192.168.0.98:80 on the reverse_proxy service clients should reach)',
      'p.conf:7: warning: service balancer listens on the VIP 192.168.0.99, which the standby node can bind only with net.ipv4.ip_nonlocal_bind=1 (it is 0 here) (tsbal setup writes the sysctl drop-in; or run sysctl -w net.ipv4.ip_nonlocal_bind=1)',
    ]);
  });

  test("Debian's example perlbal.conf (a docroot web_server on 0.0.0.0:8080, mgmt) does not serve the VIP", () => {
    const debian = [
      'CREATE SERVICE docs', '  SET listen = 0.0.0.0:8080', '  SET role = web_server', '  SET docroot = /usr/share/doc/', 'ENABLE docs',
      'CREATE SERVICE mgmt', '  SET role = management', '  SET listen = 0.0.0.0:16000', 'ENABLE mgmt', '',
    ].join('\n');
    const cfg = parsePerlbalConfig(debian, { file: '/etc/perlbal/perlbal.conf', fs: memoryConfigFs({}, ['/usr/share/doc']) });
    const out = checkAcrossFiles(cfg, ha('lb1.example.com 192.168.0.99\n'), { nonlocalBind: true, localAddresses: null }).map(formatDiagnostic);
    expect(out).toEqual([
      '/etc/ha.d/haresources:1: warning: VIP 192.168.0.99 is served by no enabled service in /etc/perlbal/perlbal.conf: the cluster moves it, but no client request to it is answered (docs on 0.0.0.0:8080) (SET listen = 192.168.0.99:80 on the reverse_proxy service clients should reach)',
    ]);
  });

  test('a disabled service on the VIP does not serve it', () => {
    const cfg = perlbal(fixture('perlbal-section4.conf').replace('ENABLE balancer', ''));
    const out = checkAcrossFiles(cfg, ha(fixture('ha.d/haresources')), { nonlocalBind: true, localAddresses: null });
    expect(out.map((d) => d.message)).toEqual([expect.stringContaining('VIP 192.168.0.99 is served by no enabled service')]);
  });

  test('a service on an address neither local nor a VIP is a warning; local, loopback, wildcard and VIP addresses are fine', () => {
    const text = [
      'CREATE POOL p', 'CREATE SERVICE a', 'SET role = reverse_proxy', 'SET pool = p', 'SET listen = 10.9.9.9:80', 'ENABLE a',
      'CREATE SERVICE b', 'SET role = reverse_proxy', 'SET pool = p', 'SET listen = 192.168.0.5:80', 'ENABLE b',
      'CREATE SERVICE c', 'SET role = reverse_proxy', 'SET pool = p', 'SET listen = 192.168.0.99:80', 'ENABLE c',
      'CREATE SERVICE m', 'SET role = management', 'SET listen = 127.0.0.2:60000', 'ENABLE m',
      'CREATE SERVICE w', 'SET role = reverse_proxy', 'SET pool = p', 'SET listen = 81', 'ENABLE w', '',
    ].join('\n');
    const local = new Set(['192.168.0.5', '127.0.0.1']);
    const out = checkAcrossFiles(perlbal(text), ha(fixture('ha.d/haresources')), { nonlocalBind: true, localAddresses: local }).map(formatDiagnostic);
    expect(out).toEqual([
      'p.conf:2: warning: service a listens on 10.9.9.9:80, which is neither an address of this host nor a VIP in haresources: it receives nothing until that address is added here (listen on the VIP (192.168.0.99) or on 0.0.0.0:80)',
    ]);
    // Another node's files (tsbal check --node): this host's addresses say nothing about them.
    expect(checkAcrossFiles(perlbal(text), ha(fixture('ha.d/haresources')), { nonlocalBind: true, localAddresses: null })).toEqual([]);
  });

  test('IPv6 listens: [::] and [::1] say nothing, a local IPv6 address neither, another one warns with an IPv6 hint', () => {
    const svc = (name: string, listen: string): string => `CREATE SERVICE ${name}\nSET role = reverse_proxy\nSET pool = p\nSET listen = ${listen}\nENABLE ${name}\n`;
    const text = `CREATE POOL p\n${svc('any', '[::]:80')}${svc('lo', '[::1]:81')}${svc('own', '[2001:db8::5]:82')}${svc('far', '[2001:db8::9]:83')}`;
    const out = checkListenAddresses(perlbal(text), new Set(), new Set(['2001:db8::5'])).map(formatDiagnostic);
    expect(out).toEqual([
      'p.conf:17: warning: service far listens on [2001:db8::9]:83, which is neither an address of this host nor a VIP in haresources: it receives nothing until that address is added here (listen on an address of this host, or on [::]:83)',
    ]);
  });
});
