// The VIP's two copies on a real interface (a namespace with an ifb as anycast_dev), and `tsbal anycast withdraw`,
// the cleanup the unit's ExecStopPost runs: both copies gone, twice in a row without an error.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY } from '../harness/cli.ts';
import { execOk, execProc } from '../harness/proc.ts';

const ns = `acla-${process.pid}-${randomBytes(2).toString('hex')}`;
const VIP = '198.18.0.201/32';
const inNs = (argv: string[]) => execProc(['ip', 'netns', 'exec', ns, ...argv], { timeoutMs: 20_000 });
const localRoute = async () => (await execOk(['ip', '-n', ns, 'route', 'show', 'table', 'local', '198.18.0.201'])).trim();
const onDev = async () => (await execOk(['ip', '-n', ns, '-o', 'addr', 'show', 'dev', 'vip0'])).includes('198.18.0.201/32');

beforeAll(async () => {
  await execOk(['ip', 'netns', 'add', ns]);
  await execOk(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  await execOk(['ip', '-n', ns, 'link', 'add', 'vip0', 'type', 'ifb']);
  await execOk(['ip', '-n', ns, 'link', 'set', 'vip0', 'up']);
});
afterAll(async () => {
  await execProc(['ip', 'netns', 'del', ns]);
});

describe('anycast addresses', () => {
  test('the answering route lets the node bind the VIP without the announced address, and survives its removal', async () => {
    const script = `
      import * as a from ${JSON.stringify(`${process.cwd()}/src/anycast/address.ts`)};
      const v = { vip: '${VIP}', dev: 'vip0', family: 4 };
      await a.keepAnswering(v);
      await a.announce(v);
      await a.announce(v);
      console.log('announced', await a.isAnnounced(v));
      console.log('withdraw', await a.withdraw(v), await a.withdraw(v));
      console.log('announced', await a.isAnnounced(v));
      const net = await import('node:net');
      const s = net.createServer();
      await new Promise((ok, no) => { s.once('error', no); s.listen(8080, '198.18.0.201', () => ok(null)); });
      console.log('bound');
      s.close();
    `;
    const r = await inNs([process.execPath, '-e', script]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['announced true', 'withdraw removed absent', 'announced false', 'bound']);
    expect(await localRoute()).toContain('local 198.18.0.201 dev lo');
  });

  test('tsbal anycast withdraw removes both copies, and says so when there was nothing to remove', async () => {
    await execOk(['ip', '-n', ns, 'addr', 'replace', VIP, 'dev', 'vip0']);
    await execOk(['ip', '-n', ns, 'route', 'replace', 'local', VIP, 'dev', 'lo', 'table', 'local', 'metric', '1019']);
    const first = await inNs([process.execPath, CLI_ENTRY, 'anycast', 'withdraw', '--vip', VIP, '--dev', 'vip0']);
    expect(first.stdout.trim()).toBe('anycast 198.18.0.201/32 withdrawn from vip0');
    expect(first.code).toBe(0);
    expect(await onDev()).toBe(false);
    expect(await localRoute()).toBe('');
    const again = await inNs([process.execPath, CLI_ENTRY, 'anycast', 'withdraw', '--vip', '198.18.0.201', '--dev', 'vip0']);
    expect(again.stdout.trim()).toBe('anycast 198.18.0.201/32 was not on vip0');
    expect(again.code).toBe(0);
  });

  test('tsbal anycast withdraw -c reads the anycast lines even from a perlbal.conf that has errors elsewhere', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbal-anycast-'));
    const conf = join(dir, 'perlbal.conf');
    writeFileSync(conf, 'SERVER anycast_vip = 198.18.0.201/32\nSERVER anycast_dev = vip0\nBOGUS line\n');
    await execOk(['ip', '-n', ns, 'addr', 'replace', VIP, 'dev', 'vip0']);
    const r = await inNs([process.execPath, CLI_ENTRY, 'anycast', 'withdraw', '-c', conf]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.stdout.trim()).toBe('anycast 198.18.0.201/32 withdrawn from vip0');
    expect(await onDev()).toBe(false);
  });

  test('tsbal run refuses to start anycast mode when anycast_dev does not exist, saying how to make it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbal-anycast-'));
    const conf = join(dir, 'perlbal.conf');
    writeFileSync(conf, 'SERVER anycast_vip = 198.18.0.201/32\nSERVER anycast_dev = nodev0\nCREATE POOL p\nPOOL p ADD 127.0.0.1:9\n' +
      'CREATE SERVICE web\nSET role = reverse_proxy\nSET pool = p\nSET listen = 198.18.0.201:8080\nENABLE web\n');
    const r = await inNs([process.execPath, CLI_ENTRY, 'run', '-c', conf, '--state-dir', join(dir, 'state')]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('anycast_dev nodev0 does not exist (tsbal setup --anycast creates it; by hand: ip link add nodev0 type dummy && ip link set nodev0 up)');
  });

  test('tsbal anycast withdraw refuses a VIP that is not one host', async () => {
    const r = await inNs([process.execPath, CLI_ENTRY, 'anycast', 'withdraw', '--vip', '198.18.0.0/24']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--vip: anycast_vip 198.18.0.0/24: the announced address must be one host (/32)');
  });
});
