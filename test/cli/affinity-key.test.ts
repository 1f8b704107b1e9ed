// Where the affinity key comes from without sticky_secret, as run and check both decide it: the cluster's authkeys
// (the same on both balancers, so the same cookie routes the same way on either), else a key generated once into the
// state dir (this host only, which check warns about, at the service's line).
import { afterEach, describe, expect, test } from 'bun:test';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveAffinityKey } from '../../src/cli/affinity-key.ts';
import { runCheck } from '../../src/cli/check.ts';

const FIX = new URL('../config/fixtures/tutorial/', import.meta.url).pathname;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tsbal-affinity-'));
  dirs.push(d);
  return d;
}
function haDir(authkeys?: string): string {
  const dir = tmp();
  for (const f of ['ha.cf', 'authkeys', 'haresources']) copyFileSync(join(FIX, 'ha.d', f), join(dir, f));
  if (authkeys !== undefined) writeFileSync(join(dir, 'authkeys'), authkeys);
  chmodSync(join(dir, 'authkeys'), 0o600);
  return dir;
}

describe('resolveAffinityKey', () => {
  test("two nodes with the same authkeys get the same key, another secret another key; nothing is written", () => {
    const state = join(tmp(), 'state');
    const a = resolveAffinityKey(haDir(), state, true);
    const b = resolveAffinityKey(haDir(), state, true);
    expect(a.kind).toBe('authkeys');
    expect(a.key.equals(b.key)).toBe(true);
    const other = resolveAffinityKey(haDir('auth 1\n1 sha1 AnotherSecretAltogether\n'), state, true);
    expect(other.key.equals(a.key)).toBe(false);
    expect(() => statSync(state)).toThrow();
  });

  test('without HA: generated once into the state dir (mode 600), then read back across restarts', () => {
    const state = join(tmp(), 'state');
    const first = resolveAffinityKey(null, state, true);
    expect(first).toMatchObject({ kind: 'generated', file: join(state, 'sticky.key'), created: true });
    expect(statSync(join(state, 'sticky.key')).mode & 0o777).toBe(0o600);
    const again = resolveAffinityKey(null, state, true);
    expect(again).toMatchObject({ kind: 'generated', created: false });
    expect(again.key.equals(first.key)).toBe(true);
  });

  test('not needed: nothing is written; a damaged key file is an error naming it', () => {
    const state = join(tmp(), 'state');
    expect(resolveAffinityKey(null, state, false).kind).toBe('process');
    expect(() => statSync(state)).toThrow();
    mkdirSync(state);
    writeFileSync(join(state, 'sticky.key'), 'garbage\n');
    expect(() => resolveAffinityKey(null, state, true)).toThrow(`${join(state, 'sticky.key')}: not a key written by tsbal`);
  });
});

const BASE = `CREATE POOL web
  POOL web ADD 127.0.0.1:8081
CREATE SERVICE balancer
  SET role = reverse_proxy
  SET pool = web
  SET listen = 127.0.0.1:8080
`;

function check(lines: string, ha: string | null = null) {
  const dir = tmp();
  writeFileSync(join(dir, 'perlbal.conf'), `${BASE}${lines}\nENABLE balancer\n`);
  const out = runCheck({ config: join(dir, 'perlbal.conf'), haDir: ha === null ? { path: tmp(), required: false } : { path: ha, required: true }, node: ha === null ? undefined : 'lb1.example.com', cwd: dir });
  return { ...out, text: [...out.stdout, ...out.stderr].join('\n'), dir };
}

describe('tsbal check and the sticky options', () => {
  test('a misspelt mode is an error at its line with a suggestion; so is a bad cookie name', () => {
    const bad = check('  SET sticky = cokie');
    expect(bad.ok).toBe(false);
    expect(bad.text).toContain(`${bad.dir}/perlbal.conf:7: Value of 'sticky' must be one of: off, cookie, source (did you mean cookie?)`);
    const name = check('  SET sticky = cookie\n  SET sticky_secret = x\n  SET sticky_cookie = my cookie');
    expect(name.ok).toBe(false);
    expect(name.text).toContain("perlbal.conf:9: Invalid cookie name 'my cookie' for 'sticky_cookie'");
    const option = check('  SET stiky = cookie');
    expect(option.ok).toBe(false);
    expect(option.text).toContain('did you mean sticky?');
  });

  test('sticky = source with sticky_learn_cookie is an error (run refuses it too)', () => {
    const r = check('  SET sticky = source\n  SET sticky_learn_cookie = PHPSESSID');
    expect(r.ok).toBe(false);
    expect(r.text).toContain('perlbal.conf:3: service balancer: sticky_learn_cookie (prefix mode) needs sticky = cookie, but sticky = source');
  });

  test('cookie affinity without sticky_secret and without HA warns that it will not survive a failover', () => {
    const r = check('  SET sticky = cookie');
    expect(r.ok).toBe(true);
    expect(r.text).toContain('pool web; sticky cookie TSBALID');
    expect(check('  SET sticky_learn_cookie = PHPSESSID\n  SET sticky_secret = s').text).toContain('pool web; sticky prefix PHPSESSID');
    expect(r.text).toContain('perlbal.conf:3: warning: service balancer: sticky without sticky_secret and no cluster authkeys: the key is generated into /var/lib/tsbal/sticky.key on this host only, so session affinity will not survive a failover to the other balancer');
    for (const fine of ['  SET sticky = cookie\n  SET sticky_secret = s', '  SET sticky = source', '']) {
      expect(check(fine).text).not.toContain('will not survive a failover');
    }
  });

  test('with the cluster files the authkeys key is used: no warning', () => {
    const ha = haDir();
    const r = check('  SET sticky = cookie', ha);
    expect(r.text).not.toContain('will not survive a failover');
    expect(r.ok).toBe(true);
  });
});
