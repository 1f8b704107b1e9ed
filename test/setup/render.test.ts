import { describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readHaCf } from '../../src/config/hacf.ts';
import { readHaResources } from '../../src/config/haresources.ts';
import { parsePerlbalConfig } from '../../src/config/perlbal.ts';
import {
  RC_BEGIN, RC_END, mergeRcLocal, quoteWord, rcLocalStartCommand, renderHaCf, renderHaResources, renderPerlbalConf, renderRcLocalBlock, renderSystemdUnit, UNIT_RESTART,
} from '../../src/setup/render.ts';
import { RESTART_POLICY } from '../../src/cli/supervise.ts';
import { shownContent } from '../../src/setup/report.ts';
import { options } from './helpers.ts';

const body = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

describe('rendered files', () => {
  test('perlbal.conf is the tutorial layout: reverse_proxy on the VIP, the pool, persist/verify on, management on 127.0.0.1', () => {
    const text = renderPerlbalConf(options({ backend: ['198.18.0.11:8080', '198.18.0.12'], port: '8000', 'mgmt-port': '6001' }));
    const config = parsePerlbalConfig(text, { file: 'perlbal.conf' });
    const balancer = config.services.find((s) => s.name === 'balancer')!;
    expect(balancer).toMatchObject({ role: 'reverse_proxy', enabled: true, listen: { host: '198.18.0.99', port: 8000 }, pool: 'backends' });
    expect(balancer.options).toMatchObject({ persist_client: true, persist_backend: true, verify_backend: true });
    expect(config.services.find((s) => s.name === 'mgmt')).toMatchObject({ role: 'management', listen: { host: '127.0.0.1', port: 6001 } });
    expect(config.pools.find((p) => p.name === 'backends')!.nodes.map((n) => `${n.host}:${n.port}`)).toEqual(['198.18.0.11:8080', '198.18.0.12:80']);
  });

  test('perlbal.conf asks for cookie affinity by default (keyed by authkeys), source or none with --sticky', () => {
    const balancerOf = (text: string) => parsePerlbalConfig(text, { file: 'perlbal.conf' }).services.find((s) => s.name === 'balancer')!;
    const byDefault = balancerOf(renderPerlbalConf(options()));
    expect(byDefault.options.sticky).toBe('cookie');
    // No sticky_secret: both nodes key the cookie with the authkeys secret setup gives them both.
    expect(byDefault.options.sticky_secret ?? null).toBeNull();
    expect(balancerOf(renderPerlbalConf(options({ sticky: 'source' }))).options.sticky).toBe('source');
    expect(balancerOf(renderPerlbalConf(options({ sticky: 'off' }))).options.sticky).toBe('off');
    expect(renderPerlbalConf(options({ sticky: 'off' }))).not.toContain('sticky');
  });

  test('perlbal.conf has the pool health checks on / or --health-path, every 2 s', () => {
    const text = renderPerlbalConf(options({ 'health-path': '/health' }));
    const pool = parsePerlbalConfig(text, { file: 'perlbal.conf' }).pools.find((p) => p.name === 'backends')!;
    expect(pool.options.health_check_path).toBe('/health');
    expect(pool.options.health_check_interval).toBe(2000);
    expect(renderPerlbalConf(options())).toContain('SET health_check_path     = /\n');
  });

  test('ha.cf: bcast by default, ucast to --peer-ip, both nodes sorted, ping nodes, initdead twice deadtime', () => {
    expect(body(renderHaCf(options({ node: 'lb2', peer: 'lb1', ping: '198.18.0.1' })))).toEqual([
      'logfacility local0', 'keepalive 2', 'deadtime 10', 'initdead 20', 'bcast eth0', 'auto_failback on', 'node lb1', 'node lb2', 'ping 198.18.0.1',
    ]);
    const ucast = renderHaCf(options({ 'peer-ip': '198.18.0.2', keepalive: '500ms', deadtime: '2', 'auto-failback': 'off' }));
    expect(body(ucast)).toContain('ucast eth0 198.18.0.2');
    expect(body(ucast)).toContain('initdead 10');
    expect(body(ucast)).toContain('auto_failback off');
    const parsed = readHaCf(ucast, 'ha.cf', { localNode: 'lb1' });
    expect(parsed.diagnostics).toEqual([]);
    expect(parsed.value).toMatchObject({ keepaliveMs: 500, deadtimeMs: 2000, nodes: ['lb1', 'lb2'] });
  });

  test('haresources names the home node and IPaddr with prefix and interface', () => {
    const text = renderHaResources(options({ primary: 'lb2' }));
    expect(body(text)).toEqual(['lb2 IPaddr::198.18.0.99/24/eth0']);
    expect(readHaResources(text, 'haresources').value.groups[0]!.resources[0]).toMatchObject({ kind: 'ip', ip: '198.18.0.99', cidr: 24, iface: 'eth0' });
  });

  test('the unit runs this tsbal, reloads through tsbal reload (which waits for the outcome), restarts a crash within 250 ms (5 in 60 s at most) and keeps only the network capabilities', () => {
    const unit = renderSystemdUnit(['/opt/tsbal bin/tsbal']);
    expect(unit).toContain("\nExecStart='/opt/tsbal bin/tsbal' run\n");
    expect(unit).toContain("\nExecReload='/opt/tsbal bin/tsbal' reload --pid $MAINPID\n");
    expect(unit).toContain('\nRestart=on-failure\nRestartSec=250ms\n');
    // In [Unit], where systemd reads them (in [Service] they are ignored with a warning).
    expect(unit.slice(unit.indexOf('[Unit]'), unit.indexOf('[Service]'))).toContain('\nStartLimitIntervalSec=60\nStartLimitBurst=5\n');
    expect([UNIT_RESTART.restartSec, UNIT_RESTART.startLimitIntervalSec * 1000, UNIT_RESTART.startLimitBurst]).toEqual([
      `${RESTART_POLICY.delayMs}ms`,
      RESTART_POLICY.windowMs,
      RESTART_POLICY.burst,
    ]);
    expect(unit).toContain('\nCapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE\n');
    expect(unit).toContain('\nAmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE\n');
    expect(unit).toContain('AF_NETLINK AF_PACKET');
    expect(unit).toContain('\nWantedBy=multi-user.target\n');
  });

  test('the rc.local block is added once: merging into its own output changes nothing', () => {
    const block = renderRcLocalBlock(['/usr/local/bin/tsbal']);
    expect(block).toBe(
      `${RC_BEGIN}\n/usr/local/bin/tsbal run --daemon --pidfile /run/tsbal.pid --log-file /var/log/tsbal.log || echo 'tsbal: failed to start; see /var/log/tsbal.log' >&2\n${RC_END}\n`,
    );
    // What setup prints as the command to start now is the very line rc.local runs at boot.
    expect(block).toContain(`\n${rcLocalStartCommand(['/usr/local/bin/tsbal'])} || echo`);
    const fresh = mergeRcLocal(null, block);
    expect(fresh).toBe(`#!/bin/sh -e\n\n${block}\nexit 0\n`);
    expect(mergeRcLocal(fresh, block)).toBe(fresh);
    const admin = '#!/bin/sh\necho one\nexit 0\n';
    const once = mergeRcLocal(admin, block);
    expect(mergeRcLocal(once, block)).toBe(once);
    expect(once.split(RC_BEGIN).length).toBe(2);
  });

  test('a tsbal that fails to start does not abort the rest of rc.local (it runs under sh -e)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbal-rclocal-'));
    try {
      const script = join(dir, 'rc.local');
      writeFileSync(script, mergeRcLocal(null, renderRcLocalBlock(['/bin/false'])).replace('\nexit 0\n', '\necho after-tsbal\nexit 0\n'));
      const r = spawnSync('/bin/sh', [script], { encoding: 'utf8' });
      expect({ code: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
        code: 0,
        stdout: 'after-tsbal\n',
        stderr: 'tsbal: failed to start; see /var/log/tsbal.log\n',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a changed tsbal path replaces the old block in place, leaving the admin lines around it', () => {
    const old = mergeRcLocal('#!/bin/sh\necho before\nexit 0\n', renderRcLocalBlock(['/old/tsbal']));
    const updated = mergeRcLocal(old, renderRcLocalBlock(['/new/tsbal']));
    expect(updated).toBe(`#!/bin/sh\necho before\n${renderRcLocalBlock(['/new/tsbal'])}\nexit 0\n`);
  });

  test('an rc.local without exit 0 gets the block at the end', () => {
    expect(mergeRcLocal('#!/bin/sh\necho x', 'B\n')).toBe('#!/bin/sh\necho x\n\nB\n');
  });

  test('words are quoted for the shell and systemd only when they must be', () => {
    expect(quoteWord('/usr/local/bin/tsbal')).toBe('/usr/local/bin/tsbal');
    expect(quoteWord("it's")).toBe(`'it'\\''s'`);
  });

  test('--dry-run output hides the key', () => {
    const shown = shownContent({ path: '/etc/ha.d/authkeys', mode: 0o600, secret: true, content: 'auth 1\n1 sha1 TopSecret\n' });
    expect(shown).toBe('auth 1\n1 sha1 <secret>\n');
  });
});
