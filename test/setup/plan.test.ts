import { describe, expect, test } from 'bun:test';
import { AUTHKEYS, HA_CF, HARESOURCES, NODEINFO, planIsNoop, plannedPaths, planSetup, resolveAuth, type ExistingFile, type ExistingFiles, type FileAction } from '../../src/setup/plan.ts';
import type { SetupOptions } from '../../src/setup/options.ts';
import { memoryConfigFs } from '../../src/config/perlbal.ts';
import { PERLBAL_CONF, RC_LOCAL, SYSCTL_FILE, SYSTEMD_UNIT } from '../../src/setup/render.ts';
import { options } from './helpers.ts';

const EXEC = ['/usr/local/bin/tsbal'];
const KEY = 'a'.repeat(64);
const NOW = new Date('2026-12-07T13:04:27.123Z');
const STAMP = '.bak.20261207T130427Z';
/** Where a kept perlbal.conf's paths resolve (Debian's example serves /usr/share/doc). */
const FS = memoryConfigFs({}, ['/usr/share/doc']);
const planOf = (o: SetupOptions, existing: ExistingFiles, randomKey: string) => planSetup(o, { exec: EXEC, existing, randomKey, now: NOW, perlbalFs: FS });

function kinds(actions: readonly FileAction[]): Record<string, FileAction['kind']> {
  return Object.fromEntries(actions.map((a) => [a.file.path, a.kind]));
}

/** What the disk holds after a plan is carried out in full. */
function written(actions: readonly FileAction[]): Map<string, ExistingFile | null> {
  return new Map(actions.map((a) => [a.file.path, { content: a.file.content, mode: a.file.mode }]));
}

describe('setup plan', () => {
  test('on an empty disk it creates every file, authkeys at 600, the rc.local hook at 755', () => {
    const plan = planOf(options(), new Map(), KEY);
    expect(plan.errors).toEqual([]);
    expect(plannedPaths(options())).toEqual(plan.actions.map((a) => a.file.path));
    expect(kinds(plan.actions)).toEqual({
      [SYSCTL_FILE]: 'create', [HA_CF]: 'create', [AUTHKEYS]: 'create', '/etc/ha.d/haresources': 'create',
      [NODEINFO]: 'create', [PERLBAL_CONF]: 'create', [RC_LOCAL]: 'create',
    });
    const modes = Object.fromEntries(plan.actions.map((a) => [a.file.path, a.file.mode.toString(8)]));
    expect(modes[AUTHKEYS]).toBe('600');
    expect(modes[RC_LOCAL]).toBe('755');
    expect(plan.auth).toEqual({ method: 'sha1', key: KEY, source: 'generated' });
  });

  test('a second plan over the first one written changes nothing, even with a new random key', () => {
    const first = planOf(options(), new Map(), KEY);
    const second = planOf(options(), written(first.actions), 'b'.repeat(64));
    expect(second.auth.source).toBe('existing');
    expect(new Set(second.actions.map((a) => a.kind))).toEqual(new Set(['unchanged']));
    expect(planIsNoop(second)).toBe(true);
    expect(planIsNoop(first)).toBe(false);
  });

  test('a file with other content is kept without --force and replaced with a .bak with it', () => {
    const disk = new Map([[PERLBAL_CONF, { content: 'CREATE POOL mine\n', mode: 0o644 }]]);
    const kept = planOf(options(), disk, KEY).actions.find((a) => a.file.path === PERLBAL_CONF)!;
    expect(kept.kind).toBe('keep');
    const forced = planOf(options({ force: [''] }), disk, KEY).actions.find((a) => a.file.path === PERLBAL_CONF)!;
    expect(forced).toMatchObject({ kind: 'replace', backup: `${PERLBAL_CONF}${STAMP}` });
  });

  test('the existing key is reused, even with --force, unless --auth-key gives another', () => {
    const existing = { content: 'auth 3\n3 md5 OldSharedSecret\n', mode: 0o600 };
    expect(resolveAuth(options(), existing, KEY)).toEqual({ method: 'md5', key: 'OldSharedSecret', source: 'existing' });
    const forced = planOf(options({ force: [''] }), new Map([[AUTHKEYS, existing]]), KEY);
    const authkeys = forced.actions.find((a) => a.file.path === AUTHKEYS)!;
    expect(authkeys.kind).toBe('replace');
    expect(authkeys.file.content).toContain('\nauth 1\n1 md5 OldSharedSecret\n');
    expect(resolveAuth(options({ 'auth-key': 'NewKey', auth: 'sha1' }), existing, KEY)).toEqual({ method: 'sha1', key: 'NewKey', source: 'flag' });
  });

  test('an --auth-key that differs from a kept authkeys is a warning, not a silent no-op', () => {
    const existing = { content: 'auth 1\n1 sha1 Old\n', mode: 0o600 };
    const plan = planOf(options({ 'auth-key': 'New' }), new Map([[AUTHKEYS, existing]]), KEY);
    expect(kinds(plan.actions)[AUTHKEYS]).toBe('keep');
    expect(plan.warnings).toContain('/etc/ha.d/authkeys: warning: --auth-key differs from the key in the existing file, which is kept (--force authkeys replaces it)');
  });

  test('authkeys with the right text but readable by others gets its mode fixed', () => {
    const first = planOf(options(), new Map(), KEY);
    const disk = written(first.actions);
    disk.set(AUTHKEYS, { content: disk.get(AUTHKEYS)!.content, mode: 0o644 });
    const action = planOf(options(), disk, KEY).actions.find((a) => a.file.path === AUTHKEYS)!;
    expect(action).toMatchObject({ kind: 'chmod', from: 0o644 });
  });

  test('rc.local is edited in its marked block without --force, and a copy is kept', () => {
    const disk = new Map([[RC_LOCAL, { content: '#!/bin/sh\nmount -a\nexit 0\n', mode: 0o755 }]]);
    const action = planOf(options(), disk, KEY).actions.find((a) => a.file.path === RC_LOCAL)!;
    expect(action).toMatchObject({ kind: 'replace', backup: `${RC_LOCAL}${STAMP}` });
    expect(action.file.content).toStartWith('#!/bin/sh\nmount -a\n# BEGIN tsbal');
    expect(action.file.content).toEndWith('# END tsbal\n\nexit 0\n');
  });

  test('--init systemd plans the unit instead of rc.local; --init none plans neither', () => {
    expect(plannedPaths(options({ init: 'systemd' }))).toContain(SYSTEMD_UNIT);
    expect(plannedPaths(options({ init: 'systemd' }))).not.toContain(RC_LOCAL);
    expect(plannedPaths(options({ init: 'none' }))).not.toContain(SYSTEMD_UNIT);
    expect(plannedPaths(options({ init: 'none' }))).not.toContain(RC_LOCAL);
  });

  test('what would be written is checked by the project parsers: a deadtime too short is an ha.cf error', () => {
    const plan = planOf(options({ keepalive: '5', deadtime: '6' }), new Map(), KEY);
    expect(plan.errors).toContain('/etc/ha.d/ha.cf:6: Dead time [6000] is too small compared to keepalive [5000] (deadtime must be more than twice keepalive)');
  });
});

describe('setup plan: --force per file, and kept files that stop the cluster', () => {
  const debianConf = 'CREATE SERVICE docs\n  SET listen = 0.0.0.0:8080\n  SET role = web_server\n  SET docroot = /usr/share/doc/\nENABLE docs\n';

  test('--force NAME replaces that file only; the rest of the files with content of their own are kept', () => {
    const disk = new Map([
      [AUTHKEYS, { content: 'auth 1\n1 sha1 Old\n', mode: 0o600 }],
      [PERLBAL_CONF, { content: '# mine\nCREATE POOL p\n', mode: 0o644 }],
    ]);
    const p = planOf(options({ 'auth-key': 'New', force: ['authkeys'] }), disk, KEY);
    expect(kinds(p.actions)[AUTHKEYS]).toBe('replace');
    expect(kinds(p.actions)[PERLBAL_CONF]).toBe('keep');
    expect(p.actions.find((a) => a.file.path === AUTHKEYS)).toMatchObject({ backup: `${AUTHKEYS}${STAMP}` });
  });

  test("a kept perlbal.conf that serves nothing on the VIP (Debian's example) is an error, with how to proceed", () => {
    const p = planOf(options(), new Map([[PERLBAL_CONF, { content: debianConf, mode: 0o644 }]]), KEY);
    expect(p.errors).toEqual([
      '/etc/perlbal/perlbal.conf: kept as it is (it exists with other content), it has no enabled service on 198.18.0.99:80, so the cluster will not serve 198.18.0.99:80 (it has docs on 0.0.0.0:8080)',
    ]);
    expect(p.advice[0]).toBe('The cluster will not serve http://198.18.0.99/ with the kept perlbal.conf. To proceed, either:');
    expect(p.advice.join('\n')).toContain('run the same command with --force perlbal.conf');
    expect(p.advice.join('\n')).toContain(`saved beside, as perlbal.conf${STAMP}`);
    expect(p.advice.join('\n')).toContain('tsbal setup --adopt');
    // Forced, the rendered file serves the VIP and there is nothing to say.
    const forced = planOf(options({ force: ['perlbal.conf'] }), new Map([[PERLBAL_CONF, { content: debianConf, mode: 0o644 }]]), KEY);
    expect([forced.errors, forced.advice]).toEqual([[], []]);
  });

  test('a kept perlbal.conf that serves the VIP (the admin tuned it) is fine; a kept haresources with another VIP is not', () => {
    const first = planOf(options(), new Map(), KEY);
    const tuned = first.actions.find((a) => a.file.path === PERLBAL_CONF)!.file.content.replace('persist_client  = on', 'persist_client  = off');
    const ok = planOf(options(), new Map([[PERLBAL_CONF, { content: tuned, mode: 0o644 }]]), KEY);
    expect(kinds(ok.actions)[PERLBAL_CONF]).toBe('keep');
    expect(ok.errors).toEqual([]);
    const otherVip = planOf(options(), new Map([[HARESOURCES, { content: 'lb1 IPaddr::198.18.0.98/24/eth0\n', mode: 0o644 }]]), KEY);
    expect(otherVip.errors).toContain('/etc/ha.d/haresources: kept as it is (it exists with other content), it does not move 198.18.0.99, so no node will hold the VIP clients use (it moves 198.18.0.98)');
    expect(otherVip.advice[0]).toContain('with the kept haresources');
  });

  test('a kept file with errors stops setup too, with the same advice', () => {
    const p = planOf(options(), new Map([[HA_CF, { content: 'keepalive 2\ndeadtime 3\nbcast eth0\nnode lb1\nnode lb2\n', mode: 0o644 }]]), KEY);
    expect(p.errors).toContain('/etc/ha.d/ha.cf:2: Dead time [3000] is too small compared to keepalive [2000] (deadtime must be more than twice keepalive)');
    expect(p.advice.join('\n')).toContain('--force ha.cf');
  });
});
