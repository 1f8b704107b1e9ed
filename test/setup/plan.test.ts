import { describe, expect, test } from 'bun:test';
import { AUTHKEYS, HA_CF, NODEINFO, planIsNoop, plannedPaths, planSetup, resolveAuth, type ExistingFile, type FileAction } from '../../src/setup/plan.ts';
import { PERLBAL_CONF, RC_LOCAL, SYSCTL_FILE, SYSTEMD_UNIT } from '../../src/setup/render.ts';
import { options } from './helpers.ts';

const EXEC = ['/usr/local/bin/tsbal'];
const KEY = 'a'.repeat(64);

function kinds(actions: readonly FileAction[]): Record<string, FileAction['kind']> {
  return Object.fromEntries(actions.map((a) => [a.file.path, a.kind]));
}

/** What the disk holds after a plan is carried out in full. */
function written(actions: readonly FileAction[]): Map<string, ExistingFile | null> {
  return new Map(actions.map((a) => [a.file.path, { content: a.file.content, mode: a.file.mode }]));
}

describe('setup plan', () => {
  test('on an empty disk it creates every file, authkeys at 600, the rc.local hook at 755', () => {
    const plan = planSetup(options(), EXEC, new Map(), KEY);
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
    const first = planSetup(options(), EXEC, new Map(), KEY);
    const second = planSetup(options(), EXEC, written(first.actions), 'b'.repeat(64));
    expect(second.auth.source).toBe('existing');
    expect(new Set(second.actions.map((a) => a.kind))).toEqual(new Set(['unchanged']));
    expect(planIsNoop(second)).toBe(true);
    expect(planIsNoop(first)).toBe(false);
  });

  test('a file with other content is kept without --force and replaced with a .bak with it', () => {
    const disk = new Map([[PERLBAL_CONF, { content: 'CREATE POOL mine\n', mode: 0o644 }]]);
    const kept = planSetup(options(), EXEC, disk, KEY).actions.find((a) => a.file.path === PERLBAL_CONF)!;
    expect(kept.kind).toBe('keep');
    const forced = planSetup(options({ force: true }), EXEC, disk, KEY).actions.find((a) => a.file.path === PERLBAL_CONF)!;
    expect(forced).toMatchObject({ kind: 'replace', backup: `${PERLBAL_CONF}.bak` });
  });

  test('the existing key is reused, even with --force, unless --auth-key gives another', () => {
    const existing = { content: 'auth 3\n3 md5 OldSharedSecret\n', mode: 0o600 };
    expect(resolveAuth(options(), existing, KEY)).toEqual({ method: 'md5', key: 'OldSharedSecret', source: 'existing' });
    const forced = planSetup(options({ force: true }), EXEC, new Map([[AUTHKEYS, existing]]), KEY);
    const authkeys = forced.actions.find((a) => a.file.path === AUTHKEYS)!;
    expect(authkeys.kind).toBe('replace');
    expect(authkeys.file.content).toContain('\nauth 1\n1 md5 OldSharedSecret\n');
    expect(resolveAuth(options({ 'auth-key': 'NewKey', auth: 'sha1' }), existing, KEY)).toEqual({ method: 'sha1', key: 'NewKey', source: 'flag' });
  });

  test('an --auth-key that differs from a kept authkeys is a warning, not a silent no-op', () => {
    const existing = { content: 'auth 1\n1 sha1 Old\n', mode: 0o600 };
    const plan = planSetup(options({ 'auth-key': 'New' }), EXEC, new Map([[AUTHKEYS, existing]]), KEY);
    expect(kinds(plan.actions)[AUTHKEYS]).toBe('keep');
    expect(plan.warnings).toContain('/etc/ha.d/authkeys: warning: --auth-key differs from the key in the existing file, which is kept (--force replaces it)');
  });

  test('authkeys with the right text but readable by others gets its mode fixed', () => {
    const first = planSetup(options(), EXEC, new Map(), KEY);
    const disk = written(first.actions);
    disk.set(AUTHKEYS, { content: disk.get(AUTHKEYS)!.content, mode: 0o644 });
    const action = planSetup(options(), EXEC, disk, KEY).actions.find((a) => a.file.path === AUTHKEYS)!;
    expect(action).toMatchObject({ kind: 'chmod', from: 0o644 });
  });

  test('rc.local is edited in its marked block without --force, and a copy is kept', () => {
    const disk = new Map([[RC_LOCAL, { content: '#!/bin/sh\nmount -a\nexit 0\n', mode: 0o755 }]]);
    const action = planSetup(options(), EXEC, disk, KEY).actions.find((a) => a.file.path === RC_LOCAL)!;
    expect(action).toMatchObject({ kind: 'replace', backup: `${RC_LOCAL}.bak` });
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
    const plan = planSetup(options({ keepalive: '5', deadtime: '6' }), EXEC, new Map(), KEY);
    expect(plan.errors).toContain('/etc/ha.d/ha.cf:6: Dead time [6000] is too small compared to keepalive [5000] (deadtime must be more than twice keepalive)');
  });
});
