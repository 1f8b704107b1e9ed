// Accept/reject decisions on /etc/ha.d compared with real heartbeat 3.0.6: each case runs
// `heartbeat -f` in its own unnamed mount/UTS/net/pid namespaces (hostname node1, a private veth named eth0
// on 198.18.0.1/24, private copies over /etc/ha.d, /var/lib/heartbeat and /run, the defused
// ResourceManager from the harness) until it has checked every file (its version line) or exits with a config error.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readHaDir } from '../../src/config/hadir.ts';
import { prepareHeartbeatLab, type HeartbeatLab } from '../harness/heartbeat.ts';
import { runCommand } from '../harness/cli.ts';

const HEARTBEAT = '/usr/libexec/heartbeat/heartbeat';
const CAN_RUN = existsSync(HEARTBEAT) && process.getuid?.() === 0;

interface Case {
  name: string;
  hacf: string;
  authkeys?: string;
  authkeysMode?: number;
  haresources?: string;
}

const BASE = 'keepalive 2\ndeadtime 10\nbcast eth0\nnode node1 node2\nauto_failback on\n';
const AUTH = 'auth 1\n1 sha1 LabSecret42\n';
const RES = 'node1 IPaddr::198.18.0.99/24/eth0\n';

let lab: HeartbeatLab;
let counter = 0;

/** Runs real heartbeat on one case: true if it got past every config check. */
async function heartbeatAccepts(c: Case): Promise<{ accepted: boolean; log: string }> {
  const dir = join(lab.dir, `case${counter++}`);
  for (const d of ['etc', 'varlib', 'run/heartbeat/ccm', 'run/heartbeat/crm', 'run/resource-agents', 'run/crm']) mkdirSync(join(dir, d), { recursive: true });
  await runCommand('chown', ['-R', 'hacluster:haclient', join(dir, 'run/heartbeat'), join(dir, 'run/crm')]);
  chmodSync(join(dir, 'run/heartbeat'), 0o750);
  const log = join(dir, 'ha-log');
  writeFileSync(log, '');
  writeFileSync(join(dir, 'etc/ha.cf'), `logfile ${log}\n${c.hacf}`);
  writeFileSync(join(dir, 'etc/authkeys'), c.authkeys ?? AUTH);
  chmodSync(join(dir, 'etc/authkeys'), c.authkeysMode ?? 0o600);
  writeFileSync(join(dir, 'etc/haresources'), c.haresources ?? RES);
  const script = [
    'hostname node1',
    'ip link set lo up',
    'ip link add eth0 type veth peer name eth0peer',
    'ip addr add 198.18.0.1/24 brd 198.18.0.255 dev eth0',
    'ip link set eth0peer up && ip link set eth0 up',
    `mount --bind ${dir}/etc /etc/ha.d`,
    `mount --bind ${dir}/varlib /var/lib/heartbeat`,
    `mount --bind ${dir}/run /run`,
    `mount --bind ${lab.safeResourceManager} /usr/share/heartbeat/ResourceManager`,
    'mount --bind /bin/true /usr/bin/systemctl',
    `${HEARTBEAT} -f >/dev/null 2>&1 & pid=$!`,
    'for i in $(seq 100); do',
    // haresources is checked after "Configuration validated"; the version line comes after that check.
    `  if grep -q 'info: heartbeat: version' ${log}; then echo ACCEPTED; kill -9 $pid; exit 0; fi`,
    '  if ! kill -0 $pid 2>/dev/null; then echo REJECTED; exit 0; fi',
    '  sleep 0.05',
    'done',
    'echo TIMEOUT; kill -9 $pid',
  ].join('\n');
  const r = await runCommand('unshare', ['--mount', '--uts', '--net', '--pid', '--fork', '--propagation', 'private', 'bash', '-c', script], { timeoutMs: 15_000 });
  const verdict = r.stdout.trim().split('\n').at(-1);
  const text = await Bun.file(log).text();
  if (verdict !== 'ACCEPTED' && verdict !== 'REJECTED') throw new Error(`heartbeat gave no verdict (${verdict}): ${r.stderr} ${text}`);
  return { accepted: verdict === 'ACCEPTED', log: text };
}

function tsbalAccepts(c: Case): { accepted: boolean; errors: string[] } {
  const dir = join(lab.dir, `tsbal${counter++}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ha.cf'), `logfile /dev/null\n${c.hacf}`);
  writeFileSync(join(dir, 'authkeys'), c.authkeys ?? AUTH);
  chmodSync(join(dir, 'authkeys'), c.authkeysMode ?? 0o600);
  writeFileSync(join(dir, 'haresources'), c.haresources ?? RES);
  const errors = readHaDir(dir, { localNode: 'node1' }).diagnostics.filter((d) => d.severity === 'error').map((d) => d.message);
  return { accepted: errors.length === 0, errors };
}

const SAME: Case[] = [
  { name: 'two-node bcast cluster', hacf: BASE },
  { name: 'udp alias, ucast and mcast media', hacf: `${BASE}udp eth0\nucast eth0 198.18.0.2\nmcast eth0 225.0.0.1 694 1 0\n` },
  { name: 'ms times, comma-separated nodes, uppercase node names', hacf: 'keepalive 500ms\ndeadtime 2\nbcast eth0\nnode NODE1,node2\nauto_failback off\n' },
  { name: 'auto_failback legacy (default) and logfacility', hacf: 'bcast eth0\nnode node1 node2\nlogfacility local0\n' },
  { name: 'crc key', hacf: BASE, authkeys: 'auth 2\n2 crc\n' },
  { name: 'keys after auth, several methods', hacf: BASE, authkeys: 'auth 3\n1 md5 a\n3 sha1 b\n' },
  { name: 'authkeys mode 602 (write bits are not checked)', hacf: BASE, authkeysMode: 0o602 },
  { name: 'a bare IP with prefix and interface in haresources', hacf: BASE, haresources: 'node1 198.18.0.99/24/eth0 \\\n  httpd\n' },
  { name: 'case-insensitive auto_failback value', hacf: BASE.replace('auto_failback on', 'auto_failback ON') },
  { name: 'a comment after auth N', hacf: BASE, authkeys: 'auth 1 # outbound key\n1 sha1 x\n' },
  { name: 'max_rexmit_delay in ms with or without the unit', hacf: `${BASE}max_rexmit_delay 250ms\nmax_rexmit_delay 200\n` },
  { name: 'obsolete nice_failback', hacf: BASE.replace('auto_failback on', 'nice_failback on') },
  { name: 'mid-line comment, text after a key, two ucast peers, warntime above deadtime', hacf: `${BASE}keepalive 1 # one\nucast eth0 198.18.0.2 198.18.0.3\nwarntime 20\n`, authkeys: 'auth 1\n1 sha1 x y\n' },
  { name: 'error: directive names are case-sensitive', hacf: BASE.replace('keepalive 2', 'Keepalive 2') },
  { name: 'error: max_rexmit_delay 0.5', hacf: `${BASE}max_rexmit_delay 0.5\n` },
  { name: 'error: crm on (Pacemaker)', hacf: `${BASE}crm on\n` },
  { name: 'error: autojoin any', hacf: `${BASE}autojoin any\n` },
  { name: 'error: debug 300, hopfudge 300, rtprio 200', hacf: `${BASE}debug 300\nhopfudge 300\nrtprio 200\n` },
  { name: 'error: udpport 0', hacf: `udpport 0\n${BASE}` },
  { name: 'error: msgfmt json', hacf: `${BASE}msgfmt json\n` },
  { name: 'error: mcast loop 2', hacf: `${BASE}mcast eth0 225.0.0.1 694 1 2\n` },
  { name: 'error: authnum 16', hacf: BASE, authkeys: 'auth 16\n16 sha1 x\n' },
  { name: 'error: uppercase method', hacf: BASE, authkeys: 'auth 1\n1 SHA1 x\n' },
  { name: 'error: unit after a space', hacf: `keepalive 2000 ms\n${BASE.replace('keepalive 2\n', '')}` },
  { name: 'error: 2s is not a time', hacf: `keepalive 2s\n${BASE.replace('keepalive 2\n', '')}` },
  { name: 'error: unknown directive', hacf: `${BASE}frobnicate 1\n` },
  { name: 'error: deadtime not above twice keepalive', hacf: BASE.replace('deadtime 10', 'deadtime 4') },
  { name: 'error: initdead below deadtime', hacf: `${BASE}initdead 5\n` },
  { name: 'error: warntime 0', hacf: `${BASE}warntime 0\n` },
  { name: 'error: auto_failback maybe', hacf: BASE.replace('auto_failback on', 'auto_failback maybe') },
  { name: 'error: unknown log facility', hacf: `${BASE}logfacility local9\n` },
  { name: 'error: no nodes', hacf: BASE.replace('node node1 node2\n', '') },
  { name: 'error: this node not listed', hacf: BASE.replace('node node1 node2', 'node node2 node3') },
  { name: 'error: no media', hacf: BASE.replace('bcast eth0\n', '') },
  { name: 'error: mcast ttl 9', hacf: `${BASE}mcast eth0 225.0.0.1 694 9 0\n` },
  { name: 'error: mcast group not class D', hacf: `${BASE}mcast eth0 10.0.0.1 694 1 0\n` },
  { name: 'error: hbgenmethod', hacf: `${BASE}hbgenmethod random\n` },
  { name: 'error: respawn without a full path', hacf: `${BASE}respawn hacluster ipfail\n` },
  { name: 'error: auth after its key', hacf: BASE, authkeys: '1 sha1 abc\nauth 1\n' },
  { name: 'error: md5 without a key', hacf: BASE, authkeys: 'auth 1\n1 md5\n' },
  { name: 'error: crc with a key', hacf: BASE, authkeys: 'auth 1\n1 crc key\n' },
  { name: 'error: unknown method', hacf: BASE, authkeys: 'auth 1\n1 sha256 key\n' },
  { name: 'error: no auth line', hacf: BASE, authkeys: '1 sha1 key\n' },
  { name: 'error: authkeys readable by others', hacf: BASE, authkeysMode: 0o644 },
  { name: 'error: authkeys readable by the group', hacf: BASE, authkeysMode: 0o640 },
  { name: 'error: haresources names an unknown node', hacf: BASE, haresources: 'node9 198.18.0.99\n' },
];

/** tsbal refuses at check time what heartbeat would only trip over at takeover (docs/compat.md). */
const STRICTER: Case[] = [
  { name: 'haresources group without resources', hacf: BASE, haresources: 'node1\n' },
  { name: 'haresources address that is not an IPv4 address', hacf: BASE, haresources: 'node1 IPaddr::198.18.0.300/24\n' },
  { name: 'haresources broadcast that is not an address', hacf: BASE, haresources: 'node1 IPaddr::198.18.0.99/24/eth0/x.y\n' },
];

describe.skipIf(!CAN_RUN)('accept/reject matches real heartbeat 3.0.6', () => {
  beforeAll(async () => {
    lab = await prepareHeartbeatLab();
  });
  afterAll(async () => {
    await lab?.remove();
  });

  test('the same ha.cf, authkeys and haresources are accepted or refused by both', async () => {
    const verdicts = await Promise.all(SAME.map(async (c) => {
      const hb = await heartbeatAccepts(c);
      const ts = tsbalAccepts(c);
      return { name: c.name, heartbeat: hb.accepted, tsbal: ts.accepted, tsbalErrors: ts.errors, heartbeatErrors: hb.log.split('\n').filter((l) => l.includes('ERROR')) };
    }));
    expect(verdicts.filter((v) => v.heartbeat !== v.tsbal)).toEqual([]);
    expect(verdicts.filter((v) => v.heartbeat).length).toBeGreaterThanOrEqual(8);
  }, 60_000);

  test('tsbal refuses what heartbeat only trips over at takeover', async () => {
    const verdicts = await Promise.all(STRICTER.map(async (c) => ({ name: c.name, heartbeat: (await heartbeatAccepts(c)).accepted, tsbal: tsbalAccepts(c).accepted })));
    expect(verdicts).toEqual(STRICTER.map((c) => ({ name: c.name, heartbeat: true, tsbal: false })));
  }, 60_000);
});
