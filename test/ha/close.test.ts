// `tsbal run` stopping on SIGTERM while a resource operation hangs: the HA engine's graceful stop is bounded by
// --drain-timeout, and the VIP is removed on the way out (issue 14 item 1: SIGTERM must release the VIP and exit
// within --drain-timeout). Before, the stop waited up to 25 s whatever --drain-timeout said.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createLab, type Lab } from '../harness/netns.ts';
import { CLI_ENTRY } from '../harness/cli.ts';
import { sleep, waitFor } from '../harness/proc.ts';

let lab: Lab;
let base: string;
beforeAll(async () => {
  lab = await createLab();
  base = await mkdtemp(join(tmpdir(), 'tsbal-haclose-'));
}, 30_000);
afterAll(async () => {
  await lab?.teardown();
  if (base) await rm(base, { recursive: true, force: true });
});

async function vipOnLb1(): Promise<boolean> {
  return (await lab.exec('lb1', ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'])).stdout.includes(' 198.18.0.99/');
}

test('SIGTERM while a resource script hangs: tsbal run removes the VIP and exits within --drain-timeout (1 s)', async () => {
  const dir = join(base, 'lb1');
  await mkdir(join(dir, 'ha.d/resource.d'), { recursive: true });
  await writeFile(join(dir, 'ha.d/ha.cf'), 'logfacility none\nkeepalive 100ms\ndeadtime 500ms\ninitdead 1\nbcast eth0\nauto_failback on\nnode lb1 lb2\n');
  await writeFile(join(dir, 'ha.d/authkeys'), 'auth 1\n1 sha1 CloseTest\n', { mode: 0o600 });
  await chmod(join(dir, 'ha.d/authkeys'), 0o600);
  await writeFile(join(dir, 'ha.d/haresources'), 'lb1 IPaddr::198.18.0.99/24/eth0 hang\n');
  // Starts forever (well, 30 s); the VIP is added before it, left to right.
  await writeFile(join(dir, 'ha.d/resource.d/hang'), '#!/bin/sh\ncase "$1" in start) sleep 30;; stop) exit 0;; *) echo stopped;; esac\n', { mode: 0o755 });
  await writeFile(join(dir, 'perlbal.conf'), 'CREATE SERVICE mgmt\n  SET role = management\n  SET listen = 127.0.0.1:60695\nENABLE mgmt\n');
  const proc = lab.spawn('lb1', [process.execPath, CLI_ENTRY, 'run', '-c', join(dir, 'perlbal.conf'), '--ha-dir', join(dir, 'ha.d'), '--node', 'lb1', '--state-dir', join(dir, 'state'), '--drain-timeout', '1'], { label: 'tsbal run lb1' });
  try {
    await waitFor('the VIP on lb1 (the hanging script starts after it)', async () => ((await vipOnLb1()) ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
    await sleep(300);
    const termAt = performance.now();
    proc.kill('SIGTERM');
    await Promise.race([proc.exited, sleep(30_000)]);
    const exitMs = Math.round(performance.now() - termAt);
    console.log(`SIGTERM during a hung acquire, --drain-timeout 1: exited in ${exitMs} ms`);
    expect(proc.exit(), proc.stdout() + proc.stderr()).not.toBeNull();
    expect(exitMs, proc.stdout() + proc.stderr()).toBeLessThan(1_000 + 1_500);
    expect(await vipOnLb1()).toBe(false);
    expect(proc.stdout() + proc.stderr()).toContain('removing our VIPs now');
  } finally {
    proc.kill('SIGKILL');
  }
}, 60_000);
