import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { checkAcrossFiles } from '../../src/config/crosscheck.ts';
import { parsePerlbalConfig } from '../../src/config/perlbal.ts';
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
    expect(checkAcrossFiles(perlbal(fixture('perlbal-section4.conf')), ha(fixture('ha.d/haresources')), { nonlocalBind: true })).toEqual([]);
  });

  test('a service on 0.0.0.0 also serves the VIP', () => {
    const cfg = perlbal(fixture('perlbal-section4.conf').replace('192.168.0.99:80', '80'));
    expect(checkAcrossFiles(cfg, ha(fixture('ha.d/haresources')), { nonlocalBind: false })).toEqual([]);
  });

  test('warns when no service listens on the VIP, and when the standby could not bind it', () => {
    const cfg = perlbal(fixture('perlbal-section4.conf'));
    const out = checkAcrossFiles(cfg, ha('lb1.example.com 192.168.0.99 IPaddr2::192.168.0.98/24/eth0\n'), { nonlocalBind: false }).map(formatDiagnostic);
    expect(out).toEqual([
      '/etc/ha.d/haresources:1: warning: VIP 192.168.0.98 is not the listen address of any enabled service in p.conf (SET listen = 192.168.0.98:80 on the service clients should reach)',
      'p.conf:7: warning: service balancer listens on the VIP 192.168.0.99, which the standby node can bind only with net.ipv4.ip_nonlocal_bind=1 (it is 0 here) (tsbal setup writes the sysctl drop-in; or run sysctl -w net.ipv4.ip_nonlocal_bind=1)',
    ]);
  });
});
