import { describe, expect, test } from 'bun:test';
import { parsePerlbalConfig, readPerlbalConfig } from '../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';
import { compileRequestHooks, runRequestHooks, type HookRequest } from '../../src/proxy/hooks.ts';
import { unenforcedPlugins } from '../../src/proxy/roles.ts';

const F = '/etc/perlbal/perlbal.conf';
const service = (plugins: string, body: string): string =>
  `LOAD AccessControl\nLOAD Redirect\nLOAD Throttle\nCREATE POOL p\nPOOL p ADD 10.0.0.1\nCREATE SERVICE s\nSET role = reverse_proxy\nSET listen = 127.0.0.1:8080\nSET pool = p\nSET plugins = ${plugins}\n${body}ENABLE s\n`;
const hooksOf = (text: string) => {
  const cfg = parsePerlbalConfig(text, { file: F });
  return compileRequestHooks(cfg.services.find((s) => s.name === 's')!, cfg);
};
const req = (over: Partial<HookRequest> = {}): HookRequest => ({
  peerIp: '10.9.9.9',
  trusted: false,
  host: 'old.com',
  path: '/x',
  xForwardedFor: () => undefined,
  ifModifiedSince: () => undefined,
  contentLength: -1,
  ...over,
});

describe('plugin hooks of a service', () => {
  test('run in SET plugins order: Redirect first answers even a client AccessControl would deny', () => {
    const rules = 'ACCESS POLICY deny\nREDIRECT HOST old.com new.com\n';
    expect(runRequestHooks(hooksOf(service('redirect, accesscontrol', rules)), req())).toEqual({ kind: 'redirect', location: 'http://new.com/x' });
    expect(runRequestHooks(hooksOf(service('accesscontrol, redirect', rules)), req())).toEqual({ kind: 'deny', clientIp: '10.9.9.9', rule: -1 });
  });

  test('an allowed client with no redirect for its host goes on to the backend', () => {
    const hooks = hooksOf(service('accesscontrol, redirect', 'ACCESS ALLOW netmask 10.0.0.0/8\nACCESS POLICY deny\nREDIRECT HOST old.com new.com\n'));
    expect(runRequestHooks(hooks, req({ host: 'other.com' }))).toEqual({ kind: 'continue' });
  });

  test('ACCESS rules given before SET plugins still apply (registering does not reset them, as in Perlbal)', () => {
    const text = service('accesscontrol', '').replace('SET plugins', 'ACCESS POLICY deny\nSET plugins');
    expect(runRequestHooks(hooksOf(text), req()).kind).toBe('deny');
  });

  test('ACCESS RESET drops the rules and the policy', () => {
    expect(runRequestHooks(hooksOf(service('accesscontrol', 'ACCESS POLICY deny\nACCESS RESET\n')), req()).kind).toBe('continue');
  });

  test('use_observed_ip reads as a boolean', () => {
    const text = (v: string) => service('accesscontrol', `SET always_trusted = on\nSET s.accesscontrol.use_observed_ip = ${v}\nACCESS POLICY deny\nACCESS ALLOW ip 1.2.3.4\n`);
    const trusted = req({ trusted: true, xForwardedFor: () => '1.2.3.4' });
    expect(runRequestHooks(hooksOf(text('on')), trusted).kind).toBe('continue');
    expect(runRequestHooks(hooksOf(text('0')), trusted).kind).toBe('deny');
    const r = readPerlbalConfig(text('off'), { file: F });
    expect(r.diagnostics.map(formatDiagnostic)).toContain(
      `${F}:12: warning: accesscontrol.use_observed_ip = off turns use_observed_ip off in tsbal; Perlbal reads any value but 0 as on (write 0 for the same meaning in both)`,
    );
    expect(readPerlbalConfig(text('maybe'), { file: F }).diagnostics.map(formatDiagnostic)[0]).toStartWith(`${F}:12: Expecting boolean value`);
  });

  test('a served service registering a plugin tsbal does not enforce is reported at its SET plugins line', () => {
    const cfg = parsePerlbalConfig(service('accesscontrol, palimg', '').replace('LOAD Throttle', 'LOAD Palimg'), { file: F });
    const got = unenforcedPlugins(cfg.services).map((u) => `${u.loc.line}: ${u.message}`);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/^10: service s: plugin palimg is not enforced by this version of tsbal run on a reverse_proxy service \(it enforces: accesscontrol, redirect, [a-z, ]+\); remove it from SET plugins or run Perlbal$/);
    const disabled = readPerlbalConfig(service('palimg', '').replace('LOAD Throttle', 'LOAD Palimg').replace('ENABLE s\n', ''), { file: F }).value;
    expect(disabled.services.map((s) => s.plugins)).toEqual([['palimg']]);
    expect(unenforcedPlugins(disabled.services)).toEqual([]);
  });
});

describe('NotModified and MaxContentLength hooks', () => {
  const nm = (setter: string) =>
    hooksOf(service('notmodified', setter).replace('LOAD AccessControl', 'LOAD NotModified'));
  test('NotModified answers 304 to If-Modified-Since on a Host matching host_pattern', () => {
    const hooks = nm('SET s.notmodified.host_pattern = ^immutable\\.\n');
    const ims = () => 'Sat, 01 Jan 2000 00:00:00 GMT';
    expect(runRequestHooks(hooks, req({ host: 'immutable.example.com', ifModifiedSince: ims }))).toMatchObject({ kind: 'page', status: 304 });
    expect(runRequestHooks(hooks, req({ host: 'www.example.com', ifModifiedSince: ims })).kind).toBe('continue');
    expect(runRequestHooks(hooks, req({ host: 'immutable.example.com' })).kind).toBe('continue');
    expect(runRequestHooks(hooks, req({ host: null, ifModifiedSince: ims })).kind).toBe('continue');
  });
  test('NotModified without host_pattern does nothing (Perlbal registers its hook only once the pattern is set)', () => {
    expect(nm('')).toEqual([]);
  });
  test('MaxContentLength answers 413 above max_content_length, and lets equal, smaller and unsized bodies through', () => {
    const hooks = hooksOf(service('maxcontentlength', 'SET max_content_length = 100\n').replace('LOAD AccessControl', 'LOAD MaxContentLength'));
    expect(runRequestHooks(hooks, req({ contentLength: 101 }))).toMatchObject({ kind: 'page', status: 413, message: 'Content too long.\n' });
    expect(runRequestHooks(hooks, req({ contentLength: 100 })).kind).toBe('continue');
    expect(runRequestHooks(hooks, req({ contentLength: -1 })).kind).toBe('continue');
  });
});
