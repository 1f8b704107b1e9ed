// Anycast mode with an IPv6 VIP (a /128 in fd00::/8, inside namespaces made here): tsbal run puts the announced copy
// on the ifb and the answering local route on lo, a client behind a veth reaches the service on [VIP]:80, and a
// stop or `tsbal anycast withdraw` removes both. Without net.ipv6.ip_nonlocal_bind it refuses to start, saying why.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_ENTRY } from '../harness/cli.ts';
import { execOk, execProc, spawnProc, waitFor, type ProcHandle } from '../harness/proc.ts';

const tag = `${process.pid}-${randomBytes(2).toString('hex')}`;
const LB = `ac6l-${tag}`;
const CLIENT = `ac6c-${tag}`;
const VIP = 'fd00:18:2::1';
const LB_ADDR = 'fd00:18::1';
const CLIENT_ADDR = 'fd00:18::2';
const BACKEND_PORT = 8081;
const WHOSERVER = fileURLToPath(new URL('../harness/whoserver.ts', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'tsbal-anycast6-'));
const procs: ProcHandle[] = [];
const inNs = (ns: string, argv: string[]) => execProc(['ip', 'netns', 'exec', ns, ...argv], { timeoutMs: 20_000 });
const onDev = async (): Promise<boolean> => (await execOk(['ip', '-n', LB, '-6', '-o', 'addr', 'show', 'dev', 'vip0'])).includes(`${VIP}/128`);
const localRoute = async (): Promise<string> => (await execOk(['ip', '-n', LB, '-6', 'route', 'show', 'table', 'local', `${VIP}/128`])).trim();

function conf(name: string): string {
  const path = join(dir, name);
  writeFileSync(path, `SERVER anycast_vip = ${VIP}/128
SERVER anycast_dev = vip0
SERVER anycast_withdraw_wait = 200ms
CREATE POOL p
  POOL p ADD 127.0.0.1:${BACKEND_PORT}
CREATE SERVICE web
  SET role = reverse_proxy
  SET listen = [${VIP}]:80
  SET pool = p
ENABLE web
`);
  return path;
}

beforeAll(async () => {
  for (const ns of [LB, CLIENT]) {
    await execOk(['ip', 'netns', 'add', ns]);
    await execOk(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }
  await execOk(['ip', '-n', LB, 'link', 'add', 'vip0', 'type', 'ifb']);
  await execOk(['ip', '-n', LB, 'link', 'set', 'vip0', 'up']);
  await execOk(['ip', '-n', LB, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', CLIENT]);
  await execOk(['ip', '-n', LB, 'addr', 'add', `${LB_ADDR}/64`, 'dev', 'eth0', 'nodad']);
  await execOk(['ip', '-n', CLIENT, 'addr', 'add', `${CLIENT_ADDR}/64`, 'dev', 'eth0', 'nodad']);
  for (const ns of [LB, CLIENT]) await execOk(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
  await execOk(['ip', '-n', CLIENT, '-6', 'route', 'add', `${VIP}/128`, 'via', LB_ADDR]);
  const backend = spawnProc(['ip', 'netns', 'exec', LB, process.execPath, WHOSERVER, '127.0.0.1', String(BACKEND_PORT), 'web1'], { label: 'backend web1' });
  procs.push(backend);
  await waitFor('the backend to listen', () => (backend.stdout().includes('listening') ? true : undefined), { timeoutMs: 15_000, describe: () => backend.stderr() });
}, 60_000);

afterAll(async () => {
  for (const p of procs) {
    p.kill('SIGKILL');
    await p.exited;
  }
  for (const ns of [LB, CLIENT]) await execProc(['ip', 'netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
});

describe('anycast mode with an IPv6 /128', () => {
  test('without net.ipv6.ip_nonlocal_bind, tsbal run refuses to start and says how to fix it', async () => {
    await execOk(['ip', 'netns', 'exec', LB, 'sysctl', '-qw', 'net.ipv6.ip_nonlocal_bind=0']);
    const r = await inNs(LB, [process.execPath, CLI_ENTRY, 'run', '-c', conf('refused.conf'), '--state-dir', join(dir, 'refused')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toContain(`anycast_vip ${VIP}/128: net.ipv6.ip_nonlocal_bind is 0`);
    expect(await onDev()).toBe(false);
  }, 30_000);

  test('announced on vip0 with the local route on lo, served to a client on [VIP]:80, and both copies gone after a stop', async () => {
    await execOk(['ip', 'netns', 'exec', LB, 'sysctl', '-qw', 'net.ipv6.ip_nonlocal_bind=1']);
    const run = spawnProc(['ip', 'netns', 'exec', LB, process.execPath, CLI_ENTRY, 'run', '-c', conf('run.conf'), '--state-dir', join(dir, 'state'), '--drain-timeout', '1'], { label: 'tsbal' });
    procs.push(run);
    const logs = (): string => run.stdout() + run.stderr();
    await waitFor('the /128 on vip0', async () => ((await onDev()) ? true : undefined), { timeoutMs: 20_000, describe: logs });
    expect(await localRoute()).toContain(`local ${VIP} dev lo`);
    const r = await inNs(CLIENT, ['curl', '-sS', '-g', '--max-time', '5', `http://[${VIP}]/`]);
    expect(r.stdout, `${r.stderr}\n${logs()}`).toBe('web1 127.0.0.1\n');
    expect(logs()).toContain(`service web listening on [${VIP}]:80`);
    run.kill('SIGTERM');
    const exit = await run.exited;
    expect(exit.code, logs()).toBe(0);
    expect(await onDev()).toBe(false);
    expect(await localRoute()).toBe('');
  }, 60_000);

  test('tsbal anycast withdraw removes the /128 from vip0 and the local route from lo', async () => {
    await execOk(['ip', '-n', LB, '-6', 'addr', 'replace', `${VIP}/128`, 'dev', 'vip0', 'nodad']);
    await execOk(['ip', '-n', LB, '-6', 'route', 'replace', 'local', `${VIP}/128`, 'dev', 'lo', 'table', 'local', 'metric', '1019']);
    const r = await inNs(LB, [process.execPath, CLI_ENTRY, 'anycast', 'withdraw', '--vip', `${VIP}/128`, '--dev', 'vip0']);
    expect(r.stdout.trim()).toBe(`anycast ${VIP}/128 withdrawn from vip0`);
    expect(r.code).toBe(0);
    expect(await onDev()).toBe(false);
    expect(await localRoute()).toBe('');
  }, 30_000);
});
