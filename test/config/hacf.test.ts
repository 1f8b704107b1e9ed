import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { parseHaCf, parseHaTime, readHaCf } from '../../src/config/hacf.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';
import { expectConfigError } from './helpers.ts';

const F = 'ha.cf';
const minimal = (extra: string) => `bcast eth0\nnode lb1 lb2\nauto_failback on\n${extra}`;

describe('ha.cf time values (cl_get_msec)', () => {
  test('a bare number is seconds; ms and us suffixes; rounded to the nearest ms', () => {
    expect(parseHaTime('2')).toBe(2000);
    expect(parseHaTime('1.5')).toBe(1500);
    expect(parseHaTime('500ms')).toBe(500);
    expect(parseHaTime('1500us')).toBe(2);
    expect(parseHaTime('.25')).toBe(250);
  });
  test('rejects s, min, signs and spaces', () => {
    for (const bad of ['2s', '1min', '-1', '', 'ms', '2 ms', '1e3']) expect(parseHaTime(bad)).toBeNull();
  });
});

describe('parseHaCf', () => {
  test('loads the tutorial ha.cf with its udp alias, three media kinds and lowercased nodes', () => {
    const text = readFileSync(new URL('./fixtures/tutorial/ha.d/ha.cf', import.meta.url), 'utf8');
    const cfg = parseHaCf(text, '/etc/ha.d/ha.cf', { localNode: 'LB1.example.com' });
    expect(cfg.keepaliveMs).toBe(2000);
    expect(cfg.deadtimeMs).toBe(10_000);
    expect(cfg.warntimeMs).toBe(5000);
    expect(cfg.initdeadMs).toBe(20_000);
    expect(cfg.udpPort).toBe(694);
    expect(cfg.media.map((m) => m.kind)).toEqual(['bcast', 'mcast', 'ucast', 'bcast']);
    expect(cfg.media[1]).toMatchObject({ kind: 'mcast', iface: 'eth0', group: '225.0.0.1', port: 694, ttl: 1, loop: false });
    expect(cfg.media[2]).toMatchObject({ kind: 'ucast', iface: 'eth0', peer: '192.168.0.101' });
    expect(cfg.nodes).toEqual(['lb1.example.com', 'lb2.example.com']);
    expect(cfg.logfacility).toBe('local0');
    expect(cfg.autoFailback).toBe('on');
    expect(cfg.warnings.map(formatDiagnostic)).toEqual([
      "/etc/ha.d/ha.cf:17: warning: directive 'udp' replaced by 'bcast' (write bcast eth0)",
    ]);
  });

  test('commas separate values and each token is applied: node a,b equals node a b', () => {
    const cfg = parseHaCf('bcast eth0,eth1\nnode A,b c\nauto_failback on\n', F);
    expect(cfg.nodes).toEqual(['a', 'b', 'c']);
    expect(cfg.media).toHaveLength(2);
  });

  test('a repeated scalar is applied in order and the last one wins', () => {
    expect(parseHaCf(minimal('keepalive 1 3\ndeadtime 20'), F).keepaliveMs).toBe(3000);
  });

  test('defaults: keepalive 1 s, deadtime 30 s, warntime half, initdead = deadtime above 10 s, port 694', () => {
    const cfg = parseHaCf(minimal(''), F);
    expect([cfg.keepaliveMs, cfg.deadtimeMs, cfg.warntimeMs, cfg.initdeadMs, cfg.deadpingMs]).toEqual([1000, 30_000, 15_000, 30_000, 30_000]);
    expect(cfg.udpPort).toBe(694);
    expect(cfg.msgfmt).toBe('classic');
    expect(cfg.maxRexmitDelayMs).toBe(250);
  });

  test('initdead defaults to 12 s below a 6 s deadtime and to twice deadtime between 6 and 10 s', () => {
    expect(parseHaCf(minimal('keepalive 500ms\ndeadtime 2'), F).initdeadMs).toBe(12_000);
    expect(parseHaCf(minimal('keepalive 2\ndeadtime 8'), F).initdeadMs).toBe(16_000);
  });

  test('auto_failback defaults to legacy with heartbeat\'s deprecation warning', () => {
    const cfg = parseHaCf('bcast eth0\nnode a b\n', F);
    expect(cfg.autoFailback).toBe('legacy');
    expect(cfg.warnings.map(formatDiagnostic)).toEqual([
      "ha.cf: warning: Deprecated 'legacy' auto_failback option selected. (Please convert to 'auto_failback on'.)",
    ]);
  });

  test('an invalid auto_failback is one error, without the "legacy selected" warning meant for a missing line', () => {
    const { diagnostics } = readHaCf('bcast eth0\nnode a b\nauto_failback maybe\n', F);
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      "ha.cf:3: auto_failback: invalid value 'maybe' (expected one of on, off, legacy)",
    ]);
  });

  test('udpport applies to media read after it', () => {
    expect(parseHaCf(minimal('').replace('bcast eth0', 'udpport 700\nbcast eth0'), F).udpPort).toBe(700);
  });

  test('udpport after the media line is reported, and the media keep the port they were read with', () => {
    const { value, diagnostics } = readHaCf('bcast eth0\nudpport 700\nnode a b\nauto_failback on\n', F);
    expect(value.udpPort).toBe(694);
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      'ha.cf:2: warning: udpport 700 comes after the media line 1, which keeps port 694 (move udpport above the bcast/ucast lines (heartbeat reads them in order))',
    ]);
  });

  test('respawn, apiauth and obscure directives are kept for check to list', () => {
    const cfg = parseHaCf(minimal('respawn hacluster /usr/lib/heartbeat/ipfail\napiauth ipfail gid=haclient uid=hacluster\ncoredumps true'), F);
    expect(cfg.respawn).toEqual([{ user: 'hacluster', command: '/usr/lib/heartbeat/ipfail', loc: { file: F, line: 4 } }]);
    expect(cfg.ignored.map((i) => i.directive)).toEqual(['apiauth', 'coredumps']);
  });

  test('ping nodes and ping groups', () => {
    const cfg = parseHaCf(minimal('ping 198.18.0.1\nping_group routers 198.18.0.2 198.18.0.3'), F);
    expect(cfg.pingNodes).toEqual(['198.18.0.1']);
    expect(cfg.pingGroups).toEqual([{ name: 'routers', members: ['198.18.0.2', '198.18.0.3'] }]);
  });
});

describe('ha.cf errors (golden)', () => {
  test('every error in the file is listed, with line numbers and hints', () => {
    const text = [
      'keepalve 2', // 1
      'keepalive 2000 ms', // 2
      'deadtime 2s', // 3
      'logfacility local9', // 4
      'mcast eth0 10.0.0.1 694 1 0', // 5
      'mcast eth0 225.0.0.1 694 9 0', // 6
      'ucast eth0', // 7
      'auto_failback maybe', // 8
      'debug 300', // 9
      'hbgenmethod random', // 10
      'crm respawn', // 11
      'autojoin any', // 12
      'respawn hacluster ipfail', // 13
      'node lb1', // 14
    ].join('\n');
    expectConfigError(() => parseHaCf(text, '/etc/ha.d/ha.cf', { localNode: 'lb9' }), [
      '/etc/ha.d/ha.cf:1: Illegal directive [keepalve] (did you mean keepalive?)',
      '/etc/ha.d/ha.cf:2: keepalive: invalid time \'ms\' (write the unit right after the number, e.g. 2000ms)',
      "/etc/ha.d/ha.cf:3: deadtime: invalid time '2s' (a number of seconds, or a number followed by ms or us (e.g. 2 or 500ms))",
      '/etc/ha.d/ha.cf:4: Log facility(local9) not valid (did you mean local0?)',
      '/etc/ha.d/ha.cf:5: mcast [eth0] bad addr [10.0.0.1] (a class D address, 224.0.0.0 to 239.255.255.255)',
      '/etc/ha.d/ha.cf:6: mcast [eth0] bad ttl [9] (heartbeat accepts ttl 0 to 4)',
      '/etc/ha.d/ha.cf:7: ucast [eth0] missing target IP address/hostname (ucast IFACE PEER-IP)',
      "/etc/ha.d/ha.cf:8: auto_failback: invalid value 'maybe' (expected one of on, off, legacy)",
      "/etc/ha.d/ha.cf:9: debug: '300' is not an integer between 0 and 255",
      '/etc/ha.d/ha.cf:10: Illegal hb generation method [random] (expected file or time)',
      '/etc/ha.d/ha.cf:11: crm respawn: Pacemaker mode is not supported; tsbal runs haresources (R1) clusters only (remove the line or set crm off)',
      '/etc/ha.d/ha.cf:12: R1 style resource management conflicts with autojoin set (tsbal uses haresources; set autojoin none)',
      '/etc/ha.d/ha.cf:13: Client child command [ipfail] is not full pathname',
      '/etc/ha.d/ha.cf:2: Dead time [30000] is too small compared to keepalive [2000000] (deadtime must be more than twice keepalive)',
      '/etc/ha.d/ha.cf:2: Ping dead time [30000] is too small compared to keepalive [2000000]',
      '/etc/ha.d/ha.cf: No heartbeat media defined (add e.g. bcast eth0 or ucast eth0 PEER-IP)',
      '/etc/ha.d/ha.cf: Current node [lb9] not in configuration! (add it to a node line, or check uname -n (nodes: lb1))',
    ]);
  });

  test('timing checks: deadtime above twice keepalive, initdead not below deadtime, warntime positive', () => {
    expectConfigError(() => parseHaCf(minimal('keepalive 2\ndeadtime 4\ninitdead 3\nwarntime 0'), F), [
      'ha.cf:5: Dead time [4000] is too small compared to keepalive [2000] (deadtime must be more than twice keepalive)',
      'ha.cf:7: Warn time [0] is invalid.',
      'ha.cf:6: Initial dead time [3000] is smaller than deadtime [4000]',
      'ha.cf:5: Ping dead time [4000] is too small compared to keepalive [2000]',
    ]);
  });

  test('no nodes, and logging explicitly off with nowhere to log', () => {
    expectConfigError(() => parseHaCf('bcast eth0\nuse_logd off\n', F), [
      'ha.cf: no nodes defined (add node lb1 lb2 (the uname -n names))',
      'ha.cf: No log entry found in ha.cf and use_logd is set to off (add logfacility local0 or a logfile)',
    ]);
  });

  test('a directive with no value', () => {
    expectConfigError(() => parseHaCf(minimal('keepalive'), F), ['ha.cf:4: keepalive: missing value']);
  });
});
