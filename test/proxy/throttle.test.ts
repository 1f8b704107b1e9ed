// Throttle's decisions (src/proxy/throttle.ts), on a virtual clock: the same sequence Perlbal::Plugin::Throttle's
// in-memory store gives.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePerlbalConfig, readPerlbalConfigFile } from '../../src/config/perlbal.ts';
import { compileThrottle, parseCidrList, throttleEnd, throttleRefusal, throttleStart, type ThrottleState } from '../../src/proxy/throttle.ts';

const conf = (settings: string): ThrottleState => {
  const cfg = parsePerlbalConfig(
    `LOAD Throttle\nCREATE POOL p\nCREATE SERVICE s\nSET role = reverse_proxy\nSET listen = 127.0.0.1:8080\nSET pool = p\nSET plugins = throttle\n${settings}ENABLE s\n`,
    { file: '/t.conf' },
  );
  return compileThrottle(cfg.services[0]!)!;
};
const IP = '10.0.0.1';

describe('Throttle', () => {
  test('the first request goes at once; one within the threshold is held initial_delay, doubling per violation, capped', () => {
    const t = conf('SET initial_delay = 2\nSET max_delay = 5\nSET throttle_threshold_seconds = 60\n');
    const at = (ms: number) => {
      const v = throttleStart(t, IP, 'GET', '/', ms);
      throttleEnd(t, IP);
      return v.kind === 'hold' ? v.ms : v.kind;
    };
    expect(at(0)).toBe(0);
    expect(at(100)).toBe(2000);
    // The held request's entry lives for its delay: within it, the next violation doubles (4 s), then the cap (5 s).
    expect(at(1000)).toBe(4000);
    expect(at(2000)).toBe(5000);
    // Once an entry expired the client is unseen again.
    expect(at(60_000)).toBe(0);
  });

  test('a client coming back after throttle_threshold_seconds is let through', () => {
    const t = conf('SET throttle_threshold_seconds = 1\nSET initial_delay = 10\n');
    expect(throttleStart(t, IP, 'GET', '/', 0)).toMatchObject({ kind: 'hold', ms: 0 });
    throttleEnd(t, IP);
    expect(throttleStart(t, IP, 'GET', '/', 1500)).toMatchObject({ kind: 'hold', ms: 0 });
  });

  test('more than max_concurrent requests in progress from one address: 403', () => {
    const t = conf('SET max_concurrent = 2\nSET default_action = allow\n');
    expect(throttleStart(t, IP, 'GET', '/', 0).kind).toBe('allow');
    expect(throttleStart(t, IP, 'GET', '/', 0).kind).toBe('allow');
    expect(throttleStart(t, IP, 'GET', '/', 0).kind).toBe('deny');
    throttleEnd(t, IP);
    throttleEnd(t, IP);
    expect(throttleStart(t, IP, 'GET', '/', 0).kind).toBe('allow');
  });

  test('ban_threshold violations ban the address for ban_expiration; banned requests get 403 until it ends', () => {
    const t = conf('SET ban_threshold = 2\nSET ban_expiration = 10\nSET initial_delay = 1\n');
    const go = (ms: number) => {
      const v = throttleStart(t, IP, 'GET', '/', ms);
      if (v.kind !== 'ban') throttleEnd(t, IP);
      return v.kind;
    };
    expect(go(0)).toBe('hold');
    expect(go(10)).toBe('hold');
    expect(go(20)).toBe('ban');
    expect(go(30)).toBe('deny');
    // After the ban, the store still remembers the client (threshold 60 s): coming back within it bans again.
    expect(go(11_000)).toBe('ban');
    expect(go(72_000)).toBe('hold');
  });

  test('path_regex and method_regex limit what is throttled; log_only never holds or refuses', () => {
    const t = conf('SET path_regex = ^/login\nSET method_regex = ^POST$\n');
    const go = (method: string, path: string, ms: number) => {
      const v = throttleStart(t, IP, method, path, ms);
      throttleEnd(t, IP);
      return v;
    };
    go('POST', '/login', 0);
    expect(go('GET', '/login', 1).kind).toBe('allow');
    expect(go('POST', '/other', 2).kind).toBe('allow');
    expect(go('POST', '/login', 3)).toMatchObject({ kind: 'hold', ms: 3000 });
    const quiet = conf('SET log_only = on\nSET max_concurrent = 0\n');
    expect(throttleStart(quiet, IP, 'GET', '/', 0)).toMatchObject({ kind: 'hold', ms: 0 });
    expect(throttleStart(quiet, IP, 'GET', '/', 1)).toMatchObject({ kind: 'hold', ms: 0 });
  });

  test('whitelist and blacklist files: CIDRs and addresses, comments; a file without any is an error', () => {
    expect(parseCidrList('# office\n10.1.0.0/16\n192.0.2.7 # one host\n', 'w')).toEqual([
      { network: 167837696, bits: 16 },
      { network: 3221225991, bits: 32 },
    ]);
    expect(() => parseCidrList('# nothing\n', '/etc/perlbal/white')).toThrow('/etc/perlbal/white contains no recognizable CIDRs');
  });

  test('memcached_servers is declined with the SET plugins line', () => {
    const cfg = parsePerlbalConfig('LOAD Throttle\nCREATE POOL p\nCREATE SERVICE s\nSET role = reverse_proxy\nSET pool = p\nSET plugins = throttle\nSET memcached_servers = 127.0.0.1:11211\nSET listen = 127.0.0.1:8080\nENABLE s\n', { file: '/t.conf' });
    expect(throttleRefusal(cfg.services[0]!)).toMatchObject({ loc: { file: '/t.conf', line: 6 }, message: expect.stringContaining("memcached_servers (state shared between balancers) is not supported") });
  });

  test('a whitelist file without CIDRs or a bad path_regex is refused at the SET plugins line (check says what run would)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbal-throttle-'));
    try {
      writeFileSync(join(dir, 'white'), '# nobody yet\n');
      writeFileSync(join(dir, 't.conf'), `LOAD Throttle\nCREATE POOL p\nCREATE SERVICE s\nSET role = reverse_proxy\nSET pool = p\nSET plugins = throttle\nSET whitelist_file = ${dir}/white\nSET listen = 127.0.0.1:8080\nENABLE s\n`);
      const cfg = readPerlbalConfigFile(join(dir, 't.conf')).value;
      expect(throttleRefusal(cfg.services[0]!)).toEqual({ loc: expect.objectContaining({ line: 6 }), message: `service s: Throttle: ${dir}/white contains no recognizable CIDRs` });
      const re = parsePerlbalConfig('LOAD Throttle\nCREATE POOL p\nCREATE SERVICE s\nSET role = reverse_proxy\nSET pool = p\nSET plugins = throttle\nSET path_regex = (\nSET listen = 127.0.0.1:8080\nENABLE s\n', { file: '/t.conf' });
      expect(throttleRefusal(re.services[0]!)?.message).toStartWith('service s: path_regex: ');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
