import { afterEach, describe, expect, test } from 'bun:test';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectLocalNode, loadHaDir } from '../../src/config/hadir.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';
import { configErrorLines } from './helpers.ts';

const TUTORIAL = new URL('./fixtures/tutorial/ha.d/', import.meta.url).pathname;
const dirs: string[] = [];

/** A private copy of the tutorial's /etc/ha.d, authkeys at mode 600 like the tutorial says. */
function tutorialDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsbal-hadir-'));
  dirs.push(dir);
  for (const f of ['ha.cf', 'authkeys', 'haresources']) copyFileSync(join(TUTORIAL, f), join(dir, f));
  chmodSync(join(dir, 'authkeys'), 0o600);
  return dir;
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('loadHaDir', () => {
  test("loads the tutorial's ha.cf, authkeys and haresources as lb1", () => {
    const dir = tutorialDir();
    const ha = loadHaDir(dir, { localNode: 'lb1.example.com' });
    expect(ha.dir).toBe(dir);
    expect(ha.hacf.nodes).toEqual(['lb1.example.com', 'lb2.example.com']);
    expect(ha.authkeys.keys).toEqual([{ index: 3, method: 'md5', key: 'somerandomstring' }]);
    expect(ha.haresources.groups[0]!.resources[0]).toMatchObject({ kind: 'ip', ip: '192.168.0.99' });
    expect(ha.warnings?.map((w) => w.message)).toEqual(["directive 'udp' replaced by 'bcast'"]);
  });

  test('refuses authkeys readable by group or other with heartbeat\'s message and the chmod fix', () => {
    const dir = tutorialDir();
    chmodSync(join(dir, 'authkeys'), 0o644);
    const path = join(dir, 'authkeys');
    expect(configErrorLines(() => loadHaDir(dir, { localNode: null }))).toEqual([
      `${path}: Bad permissions on keyfile [${path}], 600 recommended. (it is 644; run: chmod 600 ${path})`,
    ]);
    chmodSync(path, 0o640);
    expect(() => loadHaDir(dir, { localNode: null })).toThrow('600 recommended');
    chmodSync(path, 0o602);
    expect(loadHaDir(dir, { localNode: null }).authkeys.activeIndex).toBe(3);
  });

  test('lists the errors of all three files and the checks between them together', () => {
    const dir = tutorialDir();
    writeFileSync(join(dir, 'ha.cf'), 'bcast eth0\nnode lb1 lb2\nauto_failback on\nkeepalive 2s\n');
    writeFileSync(join(dir, 'authkeys'), 'auth 1\n1 sha1\n');
    writeFileSync(join(dir, 'haresources'), 'lb9 198.18.0.99\n');
    expect(configErrorLines(() => loadHaDir(dir, { localNode: 'lb3' }))).toEqual([
      `${dir}/ha.cf:4: keepalive: invalid time '2s' (a number of seconds, or a number followed by ms or us (e.g. 2 or 500ms))`,
      `${dir}/ha.cf: Current node [lb3] not in configuration! (add it to a node line, or check uname -n (nodes: lb1, lb2))`,
      `${dir}/authkeys:2: Auth method [sha1] requires a key (1 sha1 SomeLongSecret)`,
      `${dir}/haresources:1: Bad nodename in haresources [lb9] (ha.cf nodes: lb1, lb2)`,
    ]);
  });

  test('missing ha.cf and authkeys are errors; a missing haresources is a warning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbal-hadir-'));
    dirs.push(dir);
    expect(configErrorLines(() => loadHaDir(dir, { localNode: null }))).toEqual([
      `${dir}/ha.cf: cannot read ${dir}/ha.cf (ENOENT) (heartbeat needs ha.cf with node and media lines)`,
      `${dir}/authkeys: Cannot open keyfile [${dir}/authkeys] (ENOENT) (create it with: auth 1, then 1 sha1 SomeLongSecret; mode 600)`,
    ]);
    const full = tutorialDir();
    rmSync(join(full, 'haresources'));
    const ha = loadHaDir(full, { localNode: null });
    expect(ha.haresources.groups).toEqual([]);
    expect(ha.warnings?.map(formatDiagnostic)).toContain(`${full}/haresources: warning: no haresources (ENOENT): this node will hold no resources and no VIP`);
  });

  test('a respawn command that is not executable is refused', () => {
    const dir = tutorialDir();
    writeFileSync(join(dir, 'ha.cf'), 'bcast eth0\nnode lb1 lb2\nauto_failback on\nrespawn hacluster /nonexistent/ipfail\n');
    writeFileSync(join(dir, 'haresources'), '');
    expect(configErrorLines(() => loadHaDir(dir, { localNode: null }))).toEqual([
      `${dir}/ha.cf:4: Client child command [/nonexistent/ipfail] is not executable`,
    ]);
  });

  test('the local node name comes from nodeinfo when present, lowercased', () => {
    const dir = tutorialDir();
    writeFileSync(join(dir, 'nodeinfo'), 'LB2.Example.com\nignored\n');
    expect(detectLocalNode(dir)).toBe('lb2.example.com');
    expect(loadHaDir(dir).hacf.nodes).toContain('lb2.example.com');
  });
});
