// `tsbal run` refuses to hold the VIP while its proxy cannot listen on it, and takes it once it can.
// The lab runs with ip_nonlocal_bind off: the proxy binds VIP:80 only after the HA engine added the VIP.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createLab, LAB_VIP, type Lab } from '../harness/netns.ts';
import { CLI_ENTRY } from '../harness/cli.ts';
import { sleep, waitFor, type ProcHandle } from '../harness/proc.ts';

let lab: Lab;
let base: string;

beforeAll(async () => {
  lab = await createLab({ nonlocalBind: false });
  base = await mkdtemp(join(tmpdir(), 'tsbal-gate-'));
  await mkdir(join(base, 'ha.d'), { recursive: true });
  await writeFile(join(base, 'ha.d/ha.cf'), 'logfacility none\nkeepalive 100ms\ndeadtime 500ms\ninitdead 1\nbcast eth0\nauto_failback on\nnode lb1 lb2\n');
  await writeFile(join(base, 'ha.d/authkeys'), 'auth 1\n1 sha1 GateTest\n', { mode: 0o600 });
  await chmod(join(base, 'ha.d/authkeys'), 0o600);
  await writeFile(join(base, 'ha.d/haresources'), `lb1 IPaddr::${LAB_VIP}/24/eth0\n`);
  await writeFile(join(base, 'perlbal.conf'), `CREATE POOL p\n  POOL p ADD 198.18.0.11:80\nCREATE SERVICE s\n  SET listen = ${LAB_VIP}:80\n  SET role = reverse_proxy\n  SET pool = p\nENABLE s\n`);
}, 30_000);
afterAll(async () => {
  await lab?.teardown();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('the VIP follows the proxy’s ability to listen on it', () => {
  test('port 80 taken by another program: no VIP, a clear error; once freed, the VIP is taken on the next retry', async () => {
    // Another program on *:80 makes the proxy's bind of VIP:80 fail with EADDRINUSE once the VIP exists.
    const squatter = lab.spawn('lb1', ['python3', '-c', 'import socket,time\ns=socket.socket()\ns.bind(("0.0.0.0",80))\ns.listen()\nprint("bound",flush=True)\ntime.sleep(60)'], { label: 'squatter' });
    await waitFor('the squatter bound', async () => (squatter.stdout().includes('bound') ? true : undefined), { timeoutMs: 5000, intervalMs: 50 });
    let node: ProcHandle | null = null;
    try {
      node = lab.spawn('lb1', [process.execPath, CLI_ENTRY, 'run', '-c', join(base, 'perlbal.conf'), '--ha-dir', join(base, 'ha.d'), '--node', 'lb1', '--state-dir', join(base, 'state')], { label: 'tsbal' });
      const started = node;
      await waitFor('the refusal', async () => ((started.stderr() + started.stdout()).includes(`refusing to hold ${LAB_VIP}`) ? true : undefined), {
        timeoutMs: 8000,
        intervalMs: 50,
        describe: async () => started.stderr() + started.stdout(),
      });
      expect(await lab.holders()).toEqual([]);
      const status = await lab.exec('lb1', [process.execPath, CLI_ENTRY, 'ha', 'status', '--state-dir', join(base, 'state')]);
      expect(status.stdout).toContain('FAILED');
      squatter.kill('SIGKILL');
      await squatter.exited;
      await waitFor('the VIP on lb1', async () => ((await lab.holders()).join() === 'lb1' ? true : undefined), { timeoutMs: 5000, intervalMs: 50, describe: async () => started.stderr() });
      const listening = await lab.exec('lb1', ['ss', '-ltnH', `src ${LAB_VIP}:80`]);
      expect(listening.stdout).toContain(`${LAB_VIP}:80`);
    } finally {
      squatter.kill('SIGKILL');
      node?.kill('SIGTERM');
      await Promise.race([node?.exited, sleep(5000)]);
    }
  }, 30_000);
});
