// The namespace lab itself: addressing, reachability through the switch, partitions, VIP lookup, cleanup.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { watchAddresses } from './addrwatch.ts';
import { execProc, waitFor, wallNow } from './proc.ts';
import { createLab, LAB_ADDRESSES, LAB_GATEWAY, LAB_VIP, type Lab } from './netns.ts';

const ping = (lab: Lab, from: 'lb1' | 'lb2' | 'client', to: string) =>
  lab.exec(from, ['ping', '-n', '-q', '-c', '1', '-W', '1', to], { timeoutMs: 3_000 });

/** A killed orphan stays a zombie until init reaps it; either way it no longer runs. */
async function runningState(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  const state = stat?.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return stat === null || state === 'Z' ? 'gone or zombie' : `running (state ${state})`;
}

describe('network namespace lab', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab();
  });
  afterAll(async () => {
    await lab?.teardown();
  });

  test('gives every host its address on eth0 with IPv6 off', async () => {
    for (const host of ['lb1', 'lb2', 'web1', 'web2', 'client'] as const) {
      expect(await lab.addresses(host)).toEqual([LAB_ADDRESSES[host]]);
      const v6 = await lab.exec(host, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0']);
      expect(v6.stdout.trim()).toBe('');
    }
  });

  test('connects hosts through the switch and answers on the gateway', async () => {
    expect((await ping(lab, 'client', LAB_ADDRESSES.web2)).code).toBe(0);
    expect((await ping(lab, 'lb1', LAB_GATEWAY)).code).toBe(0);
  });

  test('an unplugged host reaches nobody until replugged', async () => {
    await lab.setLink('lb2', false);
    expect((await ping(lab, 'lb2', LAB_ADDRESSES.lb1)).code).not.toBe(0);
    expect((await ping(lab, 'lb1', LAB_GATEWAY)).code).toBe(0);
    await lab.setLink('lb2', true);
    // The bridge port needs a moment after the link comes back (seen: the first ping right after `up` is lost on
    // kernel 6.18): reachable again within 5 s, one ping a second.
    let code = -1;
    for (let i = 0; i < 5 && code !== 0; i++) code = (await ping(lab, 'lb2', LAB_ADDRESSES.lb1)).code ?? -1;
    expect(code).toBe(0);
  });

  test('reports which load balancer holds the VIP, and when it was added and deleted', async () => {
    const watch = await watchAddresses(lab, 'lb2');
    try {
      expect(await lab.holders()).toEqual([]);
      const before = wallNow();
      await lab.exec('lb2', ['ip', 'addr', 'add', `${LAB_VIP}/24`, 'dev', 'eth0']);
      const added = wallNow();
      expect(await lab.holders()).toEqual(['lb2']);
      await lab.exec('lb2', ['ip', 'addr', 'del', `${LAB_VIP}/24`, 'dev', 'eth0']);
      const event = await waitFor('the add event', () => watch.first('added', LAB_VIP, before - 5) ?? undefined, { timeoutMs: 2_000 });
      expect(event.at).toBeGreaterThan(before - 5);
      expect(event.at).toBeLessThan(added + 5);
      await waitFor('the delete event', () => watch.first('deleted', LAB_VIP, event.at) ?? undefined, { timeoutMs: 2_000 });
    } finally {
      watch.stop();
    }
  });

  test('teardown kills every process in the lab and deletes its namespaces', async () => {
    const other = await createLab();
    const sleeper = other.spawn('web1', ['sleep', '30']);
    // `ip netns exec` enters the namespace just after the fork; wait for it.
    await waitFor('the sleeper in web1', async () => ((await other.pids('web1')).includes(sleeper.pid) ? true : undefined), { timeoutMs: 3_000 });
    const grandchild = other.spawn('web2', ['sh', '-c', 'sleep 30 & echo $!; wait']);
    const grandchildPid = await waitFor('the background sleep', () => Number.parseInt(grandchild.stdout(), 10) || undefined, { timeoutMs: 3_000 });
    await other.teardown();
    expect((await sleeper.exited).signal).toBe('SIGKILL');
    // A process the lab never saw directly (forked by one it started) is gone too.
    expect(await runningState(grandchildPid)).toBe('gone or zombie');
    const list = await execProc(['ip', 'netns', 'list']);
    expect(list.stdout).not.toContain(other.id);
  });
});
