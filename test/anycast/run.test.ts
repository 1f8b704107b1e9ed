// The pure parts of anycast mode's place in `tsbal run`: no heartbeat beside it, and a reload that changes the
// anycast settings says that they need a restart.
import { describe, expect, test } from 'bun:test';
import { memoryConfigFs, readPerlbalConfig } from '../../src/config/perlbal.ts';
import { anycastSettings } from '../../src/config/anycast.ts';
import { ANYCAST_NO_HA, checkHaUnlessAnycast, noteAnycastChange } from '../../src/anycast/run.ts';

const conf = (vip: string | null) =>
  readPerlbalConfig(`${vip === null ? '' : `SERVER anycast_vip = ${vip}\n`}CREATE POOL p\nPOOL p ADD 10.0.0.2:80\nCREATE SERVICE web\nSET role = reverse_proxy\nSET pool = p\nSET listen = 80\nENABLE web\n`, {
    file: 'p.conf',
    fs: memoryConfigFs({}, ['/tmp']),
  }).value;

describe('anycast mode in tsbal run', () => {
  test('heartbeat is checked outside anycast mode only, and --ha-dir is refused in it', () => {
    const seen: string[] = [];
    checkHaUnlessAnycast(conf(null), { 'ha-dir': '/etc/ha.d' }, () => seen.push('checked'));
    checkHaUnlessAnycast(conf('198.18.2.1/32'), {}, () => seen.push('checked in anycast mode'));
    expect(seen).toEqual(['checked']);
    expect(() => checkHaUnlessAnycast(conf('198.18.2.1/32'), { 'ha-dir': '/etc/ha.d' }, () => undefined)).toThrow(ANYCAST_NO_HA);
  });

  test('a reload that changes the anycast settings warns that a restart applies them; an unchanged one is silent', () => {
    const warnings: string[] = [];
    const log = { warn: (m: string) => void warnings.push(m) };
    const started = anycastSettings(conf('198.18.2.1/32'));
    noteAnycastChange(started, conf('198.18.2.1/32'), log);
    expect(warnings).toEqual([]);
    const next = conf('198.18.2.2/32');
    expect(noteAnycastChange(started, next, log)).toBe(next);
    expect(warnings).toEqual(['reload: the SERVER anycast_* settings changed since start; the process runs on with 198.18.2.1/32 on vip0, require all: restart tsbal to apply them']);
  });
});
