import { describe, expect, test } from 'bun:test';
import { ADOPT_MARK, disableRecipeLines, planAdopt, planUndo, restoreRcLocal, startsRecipeDaemon, stepCommand, type AdoptPlanInput } from '../../src/setup/adopt.ts';
import { RC_LOCAL, SYSTEMD_UNIT } from '../../src/setup/render.ts';

const RC = '#!/bin/sh -e\nmount -a\n/usr/bin/perlbal --daemon\n# perlbal --daemon (an old note)\nexit 0\n';
const on = { enabled: true, active: true };
const off = { enabled: false, active: false };
const input = (over: Partial<AdoptPlanInput> = {}): AdoptPlanInput => ({
  init: 'systemd', manager: 'systemd', exec: ['/usr/local/bin/tsbal'], rcLocal: null, unit: null,
  services: { heartbeat: on, perlbal: on }, now: new Date('2026-12-07T13:00:00Z'), ...over,
});
const commands = (steps: Parameters<typeof stepCommand>[0][]) => steps.map((s) => stepCommand(s, 'TSBAL_START'));

describe('adopt: the recipe lines of rc.local', () => {
  test('finds the lines that start perlbal or heartbeat, not comments, not other commands', () => {
    expect(startsRecipeDaemon('/usr/bin/perlbal --daemon')).toBe('perlbal');
    expect(startsRecipeDaemon('  perlbal -d &')).toBe('perlbal');
    expect(startsRecipeDaemon('/etc/init.d/heartbeat start')).toBe('heartbeat');
    expect(startsRecipeDaemon('# perlbal --daemon')).toBeNull();
    expect(startsRecipeDaemon('cp /etc/perlbal/perlbal.conf /backup')).toBeNull();
    expect(startsRecipeDaemon('mount -a')).toBeNull();
  });

  test('turns them into marked comments, and back, byte for byte', () => {
    const off = disableRecipeLines(RC);
    expect(off.lines).toEqual(['/usr/bin/perlbal --daemon']);
    expect(off.text).toBe(`#!/bin/sh -e\nmount -a\n${ADOPT_MARK}/usr/bin/perlbal --daemon\n# perlbal --daemon (an old note)\nexit 0\n`);
    expect(restoreRcLocal(off.text)).toBe(RC);
  });
});

describe('adopt: the plan', () => {
  test('systemd: heartbeat stops before perlbal (the VIP goes to the peer first), both disabled, then tsbal enabled and started', () => {
    const plan = planAdopt(input());
    expect(commands(plan.steps)).toEqual([
      'systemctl stop heartbeat.service', 'systemctl stop perlbal.service',
      'systemctl disable heartbeat.service', 'systemctl disable perlbal.service',
      'systemctl daemon-reload', 'systemctl enable tsbal.service', 'systemctl start tsbal.service',
    ]);
    expect(plan.writes.map((w) => w.path)).toEqual([SYSTEMD_UNIT]);
    expect(plan.record.files).toEqual([{ path: SYSTEMD_UNIT, before: null }]);
  });

  test('rc.local on sysvinit: the perlbal line is turned off, tsbal\'s block added, a daemon already off is left alone', () => {
    const plan = planAdopt(input({ init: 'rc.local', manager: 'sysv', rcLocal: { content: RC, mode: 0o755 }, services: { heartbeat: on, perlbal: { enabled: false, active: true } } }));
    expect(commands(plan.steps)).toEqual(['/etc/init.d/heartbeat stop', '/etc/init.d/perlbal stop', 'update-rc.d heartbeat disable', 'TSBAL_START']);
    const rc = plan.writes.find((w) => w.path === RC_LOCAL)!;
    expect(rc.content).toContain(`${ADOPT_MARK}/usr/bin/perlbal --daemon\n`);
    expect(rc.content).toContain('# BEGIN tsbal');
    expect(rc.content).toEndWith('# END tsbal\n\nexit 0\n');
    expect(plan.record.rcLocalLines).toEqual(['/usr/bin/perlbal --daemon']);
  });

  test('undo: tsbal stops first, the files come back (rc.local keeping later edits), the daemons start as they were, perlbal before heartbeat', () => {
    const plan = planAdopt(input({ init: 'rc.local', manager: 'sysv', rcLocal: { content: RC, mode: 0o755 }, services: { heartbeat: on, perlbal: on } }));
    const adopted = plan.writes.find((w) => w.path === RC_LOCAL)!.content.replace('mount -a\n', 'mount -a\nswapon -a\n');
    const back = planUndo(plan.record, adopted);
    expect(commands(back.stopTsbal)).toEqual(['kill $(cat /run/tsbal.pid)']);
    expect(back.restores).toEqual([{ path: RC_LOCAL, content: RC.replace('mount -a\n', 'mount -a\nswapon -a\n'), mode: 0o755 }]);
    // perlbal came from rc.local: its line runs again, and its init script is not started as well.
    expect(commands(back.startRecipe)).toEqual(['update-rc.d perlbal enable', 'update-rc.d heartbeat enable', '/etc/init.d/heartbeat start', '/usr/bin/perlbal --daemon']);
  });

  test('undo of a systemd adopt removes the unit it added and leaves disabled what was disabled', () => {
    const plan = planAdopt(input({ services: { heartbeat: on, perlbal: off } }));
    const back = planUndo(plan.record, null);
    expect(back.restores).toEqual([{ path: SYSTEMD_UNIT, remove: true }]);
    expect(commands([...back.stopTsbal, ...back.startRecipe])).toEqual([
      'systemctl stop tsbal.service', 'systemctl disable tsbal.service', 'systemctl daemon-reload', 'systemctl enable heartbeat.service', 'systemctl start heartbeat.service',
    ]);
  });
});
