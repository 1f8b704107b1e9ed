// The HA runtime for real, one or two `tsbal ha run` processes in lab namespaces: the VIP as `ip` shows it,
// gratuitous ARP on the wire, leftovers cleared at start, clear startup errors, and the ucast and mcast media.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createLab, LAB_ADDRESSES, LAB_GATEWAY, type Lab } from '../harness/netns.ts';
import { CLI_ENTRY } from '../harness/cli.ts';
import { sleep, waitFor, type ProcHandle } from '../harness/proc.ts';

let lab: Lab;
let base: string;
let dirCount = 0;

beforeAll(async () => {
  lab = await createLab();
  base = await mkdtemp(join(tmpdir(), 'tsbal-haruntime-'));
}, 30_000);
afterAll(async () => {
  await lab?.teardown();
  if (base) await rm(base, { recursive: true, force: true });
});

async function haDir(hacf: string, haresources = 'lb1 IPaddr::198.18.0.99/24/eth0\n'): Promise<string> {
  const dir = join(base, `d${dirCount++}`);
  await mkdir(join(dir, 'ha.d'), { recursive: true });
  await writeFile(join(dir, 'ha.d/ha.cf'), `logfacility none\n${hacf}`);
  await writeFile(join(dir, 'ha.d/authkeys'), 'auth 1\n1 sha1 RuntimeTest\n', { mode: 0o600 });
  await chmod(join(dir, 'ha.d/authkeys'), 0o600);
  await writeFile(join(dir, 'ha.d/haresources'), haresources);
  return dir;
}

const args = (dir: string, node: string): string[] => ['--ha-dir', join(dir, 'ha.d'), '--node', node, '--state-dir', join(dir, `state-${node}`)];

function run(host: 'lb1' | 'lb2', dir: string, extra: string[] = []): ProcHandle {
  return lab.spawn(host, [process.execPath, CLI_ENTRY, 'ha', 'run', ...args(dir, host), ...extra], { label: `tsbal ${host}` });
}

async function vipLine(host: 'lb1' | 'lb2'): Promise<string> {
  const r = await lab.exec(host, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  return r.stdout.split('\n').find((l) => l.includes(' 198.18.0.99/')) ?? '';
}

async function stop(p: ProcHandle): Promise<void> {
  p.kill('SIGTERM');
  await Promise.race([p.exited, sleep(10_000)]);
  p.kill('SIGKILL');
}

const FAST = 'keepalive 100ms\ndeadtime 500ms\ninitdead 1\nbcast eth0\nauto_failback on\nnode lb1 lb2\n';

describe('VIP handling', () => {
  test('a lone node adds the VIP with ip (brd, label eth0:0), announces it by gratuitous ARP, and removes it on stop', async () => {
    const dir = await haDir(FAST);
    // Listen where the neighbours are: every ARP frame on the client's interface.
    const sniff = lab.spawn('client', ['timeout', '6', 'tshark', '-l', '-n', '-i', 'eth0', '-f', 'arp', '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'arp.opcode', '-e', 'arp.src.proto_ipv4', '-e', 'arp.dst.proto_ipv4'], { label: 'tshark' });
    await sleep(1500);
    const node = run('lb1', dir);
    try {
      await waitFor('the VIP on lb1', async () => ((await vipLine('lb1')) ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
      expect(await vipLine('lb1')).toMatch(/inet 198\.18\.0\.99\/24 brd 198\.18\.0\.255 scope global secondary eth0:0/);
      await Promise.race([sniff.exited, sleep(8000)]);
      const garps = sniff.stdout().split('\n').filter((l) => /\t1\t198\.18\.0\.99\t198\.18\.0\.99$/.test(l));
      expect(garps.length).toBe(5);
      const times = garps.map((l) => Number(l.split('\t')[0]));
      const gaps = times.slice(1).map((t, i) => (t - times[i]!) * 1000);
      for (const g of gaps) expect(g).toBeGreaterThan(150);
      await stop(node);
      expect(await vipLine('lb1')).toBe('');
    } finally {
      await stop(node);
    }
  }, 30_000);

  test('a VIP left behind by a crash is removed at start, before the cluster decides', async () => {
    const dir = await haDir(FAST, 'lb2 IPaddr::198.18.0.99/24/eth0\n');
    await lab.exec('lb1', ['ip', 'addr', 'add', '198.18.0.99/24', 'dev', 'eth0']);
    const node = run('lb1', dir);
    try {
      await waitFor('the leftover VIP removed', async () => ((await vipLine('lb1')) === '' ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
      expect(node.stderr() + node.stdout()).toContain('VIP 198.18.0.99 was left on eth0');
      // lb2 (the home) is absent: after initdead lb1 takes it over.
      await waitFor('the VIP back on lb1 after initdead', async () => ((await vipLine('lb1')) ? true : undefined), { timeoutMs: 5000, intervalMs: 50 });
    } finally {
      await stop(node);
    }
  }, 30_000);

  test('IPaddr2 with an interface label keeps the label', async () => {
    const dir = await haDir(FAST, 'lb1 IPaddr2::198.18.0.99/24/eth0:vip\n');
    const node = run('lb1', dir);
    try {
      await waitFor('the VIP', async () => ((await vipLine('lb1')) ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
      expect(await vipLine('lb1')).toMatch(/ eth0:vip/);
    } finally {
      await stop(node);
    }
  }, 20_000);
});

describe('logging', () => {
  test('ha.cf logfile gets heartbeat-format lines; debugfile gets the debug ones too', async () => {
    const logDir = await mkdtemp(join(base, 'logs-'));
    const dir = await haDir(`logfile ${logDir}/ha-log\ndebugfile ${logDir}/ha-debug\n${FAST}`);
    const node = run('lb1', dir, ['--log-level', 'debug']);
    try {
      await waitFor('the VIP', async () => ((await vipLine('lb1')) ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
    } finally {
      await stop(node);
    }
    const log = readFileSync(join(logDir, 'ha-log'), 'utf8');
    expect(log).toMatch(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d lb1 tsbal: \[\d+\]: WARN: node lb2: is dead/m);
    expect(log).toMatch(/ info: acquired IPaddr::198\.18\.0\.99\/24\/eth0 in \d+ ms/);
    expect(log).not.toMatch(/ debug: /);
    expect(readFileSync(join(logDir, 'ha-debug'), 'utf8').length).toBeGreaterThanOrEqual(log.length);
  }, 20_000);
});

describe('resource groups', () => {
  test('a bare IP gets its interface and netmask from the subnet; scripts run with their args: start after the IP, stop before it', async () => {
    const dir = await haDir(FAST, 'lb1 198.18.0.99 webctl::alpha::beta\n');
    const record = join(dir, 'calls.log');
    await mkdir(join(dir, 'ha.d/resource.d'), { recursive: true });
    // Like an init script: `status` says running/stopped; every call is recorded with the VIP state at that moment.
    await writeFile(
      join(dir, 'ha.d/resource.d/webctl'),
      `#!/bin/sh\nvip=$(ip -o -4 addr show dev eth0 | grep -c ' 198.18.0.99/')\necho "$* vip=$vip" >> ${record}\n` +
        `case "$3" in start) touch ${dir}/running;; stop) rm -f ${dir}/running;; status) [ -f ${dir}/running ] && echo running || echo stopped;; esac\n`,
      { mode: 0o755 },
    );
    const node = run('lb1', dir);
    try {
      await waitFor('the VIP', async () => ((await vipLine('lb1')) ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
      expect(await vipLine('lb1')).toMatch(/inet 198\.18\.0\.99\/24 brd 198\.18\.0\.255 scope global secondary eth0:0/);
      // The script runs after the VIP is added, so its record may not exist yet when the VIP shows.
      await waitFor('the script started', async () => (existsSync(record) && readFileSync(record, 'utf8').includes('start') ? true : undefined), { timeoutMs: 3000, intervalMs: 20 });
    } finally {
      await stop(node);
    }
    expect(readFileSync(record, 'utf8').trim().split('\n')).toEqual([
      'alpha beta status vip=1',
      'alpha beta start vip=1',
      'alpha beta stop vip=1',
    ]);
    expect(await vipLine('lb1')).toBe('');
  }, 20_000);
});

describe('--log-file', () => {
  test('ha run --log-file writes the takeover to the file; SIGHUP after a rename reopens a new 0640 file, the node runs on', async () => {
    const dir = await haDir(FAST);
    const logPath = join(dir, 'tsbal-ha.log');
    const node = run('lb1', dir, ['--log-file', logPath]);
    const text = (): string => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
    try {
      await waitFor('the VIP on lb1', async () => ((await vipLine('lb1')) ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
      await waitFor('a log line', async () => (text().length > 0 ? true : undefined), { timeoutMs: 2000, intervalMs: 20 });
      expect(node.stderr()).toBe('');
      renameSync(logPath, `${logPath}.1`);
      node.kill('SIGHUP');
      await waitFor('the reopened log file', async () => (existsSync(logPath) ? true : undefined), { timeoutMs: 2000, intervalMs: 20 });
      expect(statSync(logPath).mode & 0o777).toBe(0o640);
      await sleep(200);
      expect(node.exit()).toBeNull();
      node.kill('SIGTERM');
      expect((await node.exited).code).toBe(0);
      expect(text().length).toBeGreaterThan(0);
      for (const line of (readFileSync(`${logPath}.1`, 'utf8') + text()).trimEnd().split('\n')) expect(line).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z \[\w+\] /);
    } finally {
      await stop(node);
    }
  }, 30_000);
});

describe('startup errors', () => {
  test('an interface that does not exist is a startup error naming it', async () => {
    const dir = await haDir(FAST, 'lb1 IPaddr::198.18.0.99/24/eth9\n');
    const r = await lab.exec('lb1', [process.execPath, CLI_ENTRY, 'ha', 'run', ...args(dir, 'lb1')], { timeoutMs: 10_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('eth9');
  });

  test('a bcast interface that does not exist is a startup error with the ha.cf line', async () => {
    const dir = await haDir(FAST.replace('bcast eth0', 'bcast eth7'));
    const r = await lab.exec('lb1', [process.execPath, CLI_ENTRY, 'ha', 'run', ...args(dir, 'lb1')], { timeoutMs: 10_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ha\.cf:5: bcast eth7: no such interface/);
  });

  test('without `ip` in PATH the engine refuses to start and says what to install', async () => {
    const dir = await haDir(FAST);
    const r = await lab.exec('lb1', ['env', 'PATH=/nonexistent', process.execPath, CLI_ENTRY, 'ha', 'run', ...args(dir, 'lb1')], { timeoutMs: 10_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('`ip` not found in PATH');
    expect(r.stderr).toContain('iproute2');
  });

  test('a second engine on the same state dir is refused', async () => {
    const dir = await haDir(FAST);
    const first = run('lb1', dir);
    try {
      await waitFor('the first engine up', async () => ((await lab.exec('lb1', [process.execPath, CLI_ENTRY, 'ha', 'status', ...args(dir, 'lb1')])).code === 0 ? true : undefined), { timeoutMs: 5000, intervalMs: 100 });
      const r = await lab.exec('lb1', [process.execPath, CLI_ENTRY, 'ha', 'run', ...args(dir, 'lb1')], { timeoutMs: 10_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('another tsbal HA engine is running');
    } finally {
      await stop(first);
    }
  }, 20_000);

  test('the generation grows by one on every start and is kept in heartbeat’s file format', async () => {
    const dir = await haDir(FAST);
    const gens: number[] = [];
    for (let i = 0; i < 2; i++) {
      const p = run('lb1', dir);
      await waitFor('up', async () => ((await lab.exec('lb1', [process.execPath, CLI_ENTRY, 'ha', 'status', ...args(dir, 'lb1')])).code === 0 ? true : undefined), { timeoutMs: 5000, intervalMs: 100 });
      const text = readFileSync(join(dir, 'state-lb1', 'hb_generation'), 'utf8');
      expect(text).toMatch(/^ {0,14}\d+\n$/);
      expect(text.length).toBe(16);
      gens.push(Number(text));
      await stop(p);
    }
    expect(gens[1]).toBe(gens[0]! + 1);
  }, 20_000);
});

describe('media', () => {
  for (const medium of [
    { name: 'ucast', lb1: `ucast eth0 ${LAB_ADDRESSES.lb2}\nucast eth0 ${LAB_ADDRESSES.lb1}`, lb2: `ucast eth0 ${LAB_ADDRESSES.lb1}\nucast eth0 ${LAB_ADDRESSES.lb2}` },
    { name: 'mcast', lb1: 'mcast eth0 239.255.0.9 6940 1 0', lb2: 'mcast eth0 239.255.0.9 6940 1 0' },
  ]) {
    test(`${medium.name}: the pair forms, and a crash of the holder moves the VIP`, async () => {
      const mk = (m: string): Promise<string> => haDir(`keepalive 100ms\ndeadtime 500ms\ninitdead 2\n${m}\nauto_failback on\nnode lb1 lb2\n`);
      const d1 = await mk(medium.lb1);
      const d2 = await mk(medium.lb2);
      const n1 = run('lb1', d1);
      const n2 = run('lb2', d2);
      try {
        await waitFor('lb2 sees lb1 active', async () => (/peer lb1: active/.test((await lab.exec('lb2', [process.execPath, CLI_ENTRY, 'ha', 'status', ...args(d2, 'lb2')])).stdout) ? true : undefined), { timeoutMs: 8000, intervalMs: 100, describe: async () => n2.stderr() + n2.stdout() });
        await waitFor('the VIP on lb1', async () => ((await lab.holders()).join() === 'lb1' ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
        await lab.killAll('lb1', 'SIGKILL');
        await lab.exec('lb1', ['ip', 'addr', 'del', '198.18.0.99/24', 'dev', 'eth0']);
        const t0 = performance.now();
        await waitFor('the VIP on lb2', async () => ((await lab.holders()).join() === 'lb2' ? true : undefined), { timeoutMs: 3000, intervalMs: 10 });
        expect(performance.now() - t0).toBeLessThan(500 + 300);
      } finally {
        await stop(n1);
        await stop(n2);
      }
    }, 30_000);
  }
});

/** `tsbal ha <cmd>` on a lab host against the engines of `dir`, and waits on what the commands change. */
function commands(dir: string) {
  const ha = (host: 'lb1' | 'lb2', ...cmd: string[]) => lab.exec(host, [process.execPath, CLI_ENTRY, 'ha', ...cmd, ...args(dir, host)], { timeoutMs: 10_000 });
  const soleHolder = (host: string) =>
    waitFor(`the VIP on ${host}`, async () => ((await lab.holders()).join() === host ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
  const stable = (host: 'lb1' | 'lb2') =>
    waitFor(`${host} stable`, async () => (/^[^\n]*; settled/.test((await ha(host, 'status')).stdout) ? true : undefined), { timeoutMs: 5000, intervalMs: 50 });
  return { ha, soleHolder, stable };
}

describe('commands', () => {
  test('tsbal ha standby hands the VIP to the peer and tsbal ha takeover brings it back; bad input is refused', async () => {
    const dir = await haDir(FAST.replace('auto_failback on', 'auto_failback off'));
    const n1 = run('lb1', dir);
    const n2 = run('lb2', dir);
    const { ha, soleHolder, stable } = commands(dir);
    try {
      await soleHolder('lb1');
      await stable('lb1');
      await stable('lb2');
      const standby = await ha('lb1', 'standby');
      expect({ code: standby.code, out: standby.stdout.trim() }).toEqual({ code: 0, out: 'going standby [all]: lb2 is taking over' });
      await soleHolder('lb2');
      await stable('lb1');
      await stable('lb2');
      const takeover = await ha('lb1', 'takeover');
      expect(takeover.code).toBe(0);
      await soleHolder('lb1');
      const bad = await ha('lb1', 'standby', 'everything');
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("unknown resource set 'everything'");
    } finally {
      await stop(n1);
      await stop(n2);
    }
  }, 30_000);

  test('auto_failback on: tsbal ha standby drains lb1 (the VIP stays on lb2, sampled every 50 ms for 3 s); tsbal ha takeover brings it back', async () => {
    const dir = await haDir(FAST);
    const n1 = run('lb1', dir);
    const n2 = run('lb2', dir);
    const { ha, soleHolder, stable } = commands(dir);
    try {
      await soleHolder('lb1');
      await stable('lb1');
      await stable('lb2');
      expect((await ha('lb1', 'standby')).code).toBe(0);
      await soleHolder('lb2');
      const samples: string[] = [];
      const end = performance.now() + 3000;
      while (performance.now() < end) {
        samples.push((await lab.holders()).join('+') || 'nobody');
        await sleep(50);
      }
      expect(samples.length).toBeGreaterThan(20);
      expect(samples.filter((h) => h !== 'lb2')).toEqual([]);
      expect(n2.stderr() + n2.stdout()).not.toContain('auto_failback: handing');
      await stable('lb1');
      await stable('lb2');
      expect((await ha('lb1', 'takeover')).code).toBe(0);
      await soleHolder('lb1');
    } finally {
      await stop(n1);
      await stop(n2);
    }
  }, 30_000);

  test('tsbal ha status without a running engine says so and exits 3', async () => {
    const r = await lab.exec('lb1', [process.execPath, CLI_ENTRY, 'ha', 'status', '--state-dir', join(base, 'nothing-here')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('is tsbal running with this --state-dir?');
  });
});

describe('ping node', () => {
  test('a node that cannot reach the ping node does not take the VIP after initdead', async () => {
    // 198.18.0.77 answers nobody: lb1 alone sees its peer dead but no ping node, so it stays away from the VIP.
    const dir = await haDir(`keepalive 100ms\ndeadtime 500ms\ninitdead 1\nbcast eth0\nauto_failback on\nnode lb1 lb2\nping 198.18.0.77\n`, 'lb2 IPaddr::198.18.0.99/24/eth0\n');
    const node = run('lb1', dir);
    try {
      await sleep(2500);
      expect(await lab.holders()).toEqual([]);
      expect(node.stderr() + node.stdout()).toContain('no ping node answers');
    } finally {
      await stop(node);
    }
  }, 20_000);

  test('with the gateway as ping node, a lone node takes the VIP', async () => {
    const dir = await haDir(`keepalive 100ms\ndeadtime 500ms\ninitdead 1\nbcast eth0\nauto_failback on\nnode lb1 lb2\nping ${LAB_GATEWAY}\n`, 'lb2 IPaddr::198.18.0.99/24/eth0\n');
    const node = run('lb1', dir);
    try {
      await waitFor('the VIP on lb1', async () => ((await lab.holders()).join() === 'lb1' ? true : undefined), { timeoutMs: 4000, intervalMs: 50, describe: async () => node.stderr() });
      const st = await lab.exec('lb1', [process.execPath, CLI_ENTRY, 'ha', 'status', ...args(dir, 'lb1')]);
      expect(st.stdout).toContain(`ping ${LAB_GATEWAY}: up`);
    } finally {
      await stop(node);
    }
  }, 20_000);
});
