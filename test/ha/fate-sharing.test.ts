// The heartbeat worker keeps heartbeats going through short main-thread stalls, and stops them when the main
// thread (the proxy) is stuck for longer than deadtime, so the peer takes over: fate sharing with a bound.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createLab, type Lab } from '../harness/netns.ts';
import { CLI_ENTRY } from '../harness/cli.ts';
import { sleep, waitFor, type ProcHandle } from '../harness/proc.ts';

const STALL_NODE = fileURLToPath(new URL('./stall-node.ts', import.meta.url));
let lab: Lab;
let base: string;
let runs = 0;

beforeAll(async () => {
  lab = await createLab();
  base = await mkdtemp(join(tmpdir(), 'tsbal-fate-'));
}, 30_000);
afterAll(async () => {
  await lab?.teardown();
  if (base) await rm(base, { recursive: true, force: true });
});

async function pair(thread: 'worker' | 'main', stallMs: number, extra: string[] = []): Promise<{ lb1: ProcHandle; lb2: ProcHandle; lb2Status: () => Promise<{ counters: { deaths: number } }>; stop: () => Promise<void> }> {
  const dir = join(base, `r${runs++}`);
  await mkdir(join(dir, 'ha.d'), { recursive: true });
  await writeFile(join(dir, 'ha.d/ha.cf'), 'logfacility none\nkeepalive 100ms\ndeadtime 500ms\ninitdead 1\nbcast eth0\nauto_failback on\nnode lb1 lb2\n');
  await writeFile(join(dir, 'ha.d/authkeys'), 'auth 1\n1 sha1 FateSharing\n', { mode: 0o600 });
  await chmod(join(dir, 'ha.d/authkeys'), 0o600);
  await writeFile(join(dir, 'ha.d/haresources'), 'lb1 IPaddr::198.18.0.99/24/eth0\n');
  const a = (h: string): string[] => ['--ha-dir', join(dir, 'ha.d'), '--node', h, '--state-dir', join(dir, `state-${h}`)];
  const lb2 = lab.spawn('lb2', [process.execPath, CLI_ENTRY, 'ha', 'run', ...a('lb2')], { label: 'lb2' });
  const lb1 = lab.spawn('lb1', [process.execPath, STALL_NODE, ...a('lb1'), '--thread', thread, '--stall-after', '3000', '--stall-ms', String(stallMs), ...extra], { label: 'lb1' });
  const lb2Status = async (): Promise<{ counters: { deaths: number } }> =>
    JSON.parse((await lab.exec('lb2', [process.execPath, CLI_ENTRY, 'ha', 'status', '--json', ...a('lb2')])).stdout) as { counters: { deaths: number } };
  await waitFor('lb1 holding the VIP', async () => ((await lab.holders()).join() === 'lb1' ? true : undefined), { timeoutMs: 3000, intervalMs: 20, describe: async () => lb1.stderr() + lb1.stdout() });
  return {
    lb1,
    lb2,
    lb2Status,
    stop: async () => {
      for (const p of [lb1, lb2]) p.kill('SIGTERM');
      await Promise.race([Promise.all([lb1.exited, lb2.exited]), sleep(5000)]);
      await lab.killAll('lb1', 'SIGKILL');
      await lab.killAll('lb2', 'SIGKILL');
      await lab.exec('lb1', ['ip', 'addr', 'del', '198.18.0.99/24', 'dev', 'eth0']);
      await lab.exec('lb2', ['ip', 'addr', 'del', '198.18.0.99/24', 'dev', 'eth0']);
    },
  };
}

describe('fate sharing between the proxy thread and the heartbeat worker', () => {
  test('a 700 ms main-thread stall: the worker keeps heartbeating, the peer sees no death', async () => {
    const p = await pair('worker', 700);
    try {
      await waitFor('the stall to pass', async () => (p.lb1.stdout().includes('stall over') ? true : undefined), { timeoutMs: 6000, intervalMs: 50 });
      await sleep(1000);
      expect((await p.lb2Status()).counters.deaths).toBe(0);
      expect(await lab.holders()).toEqual(['lb1']);
    } finally {
      await p.stop();
    }
  }, 30_000);

  test('the same stall with heartbeats on the main thread is a (false) failover: what the worker prevents', async () => {
    const p = await pair('main', 700);
    try {
      await waitFor('the stall to pass', async () => (p.lb1.stdout().includes('stall over') ? true : undefined), { timeoutMs: 6000, intervalMs: 50 });
      await sleep(1000);
      expect((await p.lb2Status()).counters.deaths).toBe(1);
    } finally {
      await p.stop();
    }
  }, 30_000);

  test('a 4 s stall: the worker stops heartbeating after deadtime, the peer takes the VIP, and one owner remains after', async () => {
    const p = await pair('worker', 4000);
    try {
      await waitFor('the stall to start', async () => (p.lb1.stdout().includes('stalling') ? true : undefined), { timeoutMs: 6000, intervalMs: 20 });
      const t0 = performance.now();
      await waitFor('lb2 holding the VIP', async () => ((await lab.holders()).includes('lb2') ? true : undefined), { timeoutMs: 3000, intervalMs: 20 });
      // muted after deadtime of main-thread silence, then the peer's deadtime
      expect(performance.now() - t0).toBeLessThan(500 + 500 + 300);
      await waitFor('the stall to pass', async () => (p.lb1.stdout().includes('stall over') ? true : undefined), { timeoutMs: 6000, intervalMs: 50 });
      await waitFor('one owner again', async () => ((await lab.holders()).length === 1 ? true : undefined), { timeoutMs: 5000, intervalMs: 50, describe: async () => `${await lab.holders()}\n${p.lb2.stderr()}\n${p.lb1.stderr()}` });
      expect(p.lb1.stderr() + p.lb1.stdout()).toContain('heartbeats stopped so the peer takes over');
    } finally {
      await p.stop();
    }
  }, 30_000);

  test('the process dies of an uncaught error: its VIP goes with it (no ARP answers for an address the peer takes)', async () => {
    const p = await pair('worker', 0, ['--throw-after', '2000']);
    try {
      await Promise.race([p.lb1.exited, sleep(5000)]);
      expect(p.lb1.exit()).not.toBeNull();
      expect(await lab.exec('lb1', ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']).then((r) => r.stdout)).not.toContain('198.18.0.99/');
      await waitFor('lb2 holding the VIP', async () => ((await lab.holders()).join() === 'lb2' ? true : undefined), { timeoutMs: 2000, intervalMs: 20 });
    } finally {
      await p.stop();
    }
  }, 30_000);
});
