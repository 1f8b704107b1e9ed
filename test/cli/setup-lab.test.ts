// End to end: the files `tsbal setup` writes for lb1 and lb2 make a working cluster. lb1 runs setup, lb2 runs the join
// line lb1 printed (heartbeats by ucast, so the line must carry lb1's real address). Each node runs setup in its own
// namespace of the lab (whose lb namespaces start with ip_nonlocal_bind=0, so setup's --apply is what lets lb2 listen on
// the VIP it does not hold), then `tsbal run` on those files; a client gets answers from the backends through the VIP.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY } from '../harness/cli.ts';
import { createLab, LAB_ADDRESSES, LAB_VIP, type Lab } from '../harness/netns.ts';
import { waitFor, type ProcHandle } from '../harness/proc.ts';
import { startBackends, type Backends } from '../harness/web.ts';

let lab: Lab | null = null;
let backends: Backends | null = null;
let base = '';
const nodes: ProcHandle[] = [];

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'tsbal-setup-lab-'));
  lab = await createLab({ nonlocalBind: false });
  backends = await startBackends(lab);
}, 30_000);

afterAll(async () => {
  for (const node of nodes) node.kill('SIGKILL');
  backends?.stop();
  await lab?.teardown();
  rmSync(base, { recursive: true, force: true });
});

const PER_HOST = (host: 'lb1' | 'lb2'): string[] => ['--root', join(base, host), '--apply', '--init', 'none'];

/** lb1's setup, as the tutorial runs it; returns the join line it printed for lb2. */
async function setupFirst(): Promise<string> {
  const flags = [
    '--node', 'lb1', '--peer', 'lb2', '--vip', `${LAB_VIP}/24`, '--iface', 'eth0', '--peer-ip', LAB_ADDRESSES.lb2,
    '--backend', `${LAB_ADDRESSES.web1}:80,${LAB_ADDRESSES.web2}:80`, '--keepalive', '200ms', '--deadtime', '1', ...PER_HOST('lb1'),
  ];
  const r = await lab!.exec('lb1', [process.execPath, CLI_ENTRY, 'setup', ...flags], { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`setup on lb1: exit ${r.code}\n${r.stdout}${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.includes('| tsbal setup '));
  if (line === undefined) throw new Error(`setup on lb1 printed no join line:\n${r.stdout}`);
  return line;
}

/** The join line pasted into a shell on lb2, `tsbal` being this build, plus lb2's own per-host flags. */
async function joinSecond(line: string): Promise<void> {
  const script = `tsbal() { ${process.execPath} ${CLI_ENTRY} "$@"; }\n${line} ${PER_HOST('lb2').join(' ')}\n`;
  const r = await lab!.exec('lb2', ['bash', '-c', script], { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`the join line on lb2: exit ${r.code}\n${r.stdout}${r.stderr}`);
}

describe('a cluster from tsbal setup', () => {
  test('both nodes start on the written files, lb1 takes the VIP, and the VIP serves the backends', async () => {
    const line = await setupFirst();
    expect(line).toContain(` --peer-ip ${LAB_ADDRESSES.lb1} `);
    await joinSecond(line);
    const [root1, root2] = [join(base, 'lb1'), join(base, 'lb2')];
    expect(readFileSync(join(root2, 'etc/ha.d/authkeys'), 'utf8')).toBe(readFileSync(join(root1, 'etc/ha.d/authkeys'), 'utf8'));
    for (const host of ['lb1', 'lb2'] as const) {
      expect((await lab!.exec(host, ['cat', '/proc/sys/net/ipv4/ip_nonlocal_bind'])).stdout.trim(), host).toBe('1');
    }
    for (const [host, root] of [['lb1', root1], ['lb2', root2]] as const) {
      const args = ['run', '-c', join(root, 'etc/perlbal/perlbal.conf'), '--ha-dir', join(root, 'etc/ha.d'), '--state-dir', join(root, 'state')];
      mkdirSync(join(root, 'state'), { recursive: true });
      nodes.push(lab!.spawn(host, [process.execPath, CLI_ENTRY, ...args], { label: `tsbal ${host}` }));
    }
    const logs = (): string => nodes.map((n) => `${n.label} exit ${JSON.stringify(n.exit())}:\n${n.stdout()}${n.stderr()}`).join('\n');
    await waitFor('lb1 to hold the VIP', async () => ((await lab!.holders()).join() === 'lb1' ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 100,
      describe: async () => `holders [${(await lab!.holders()).join()}]\n${logs()}`,
    });
    expect(nodes.map((n) => n.exit())).toEqual([null, null]);
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const r = await lab!.exec('client', ['curl', '-sS', '--max-time', '2', `http://${LAB_VIP}/`], { timeoutMs: 5_000 });
      expect(r.code, `${r.stderr}\n${logs()}`).toBe(0);
      seen.add(r.stdout.trim());
    }
    expect([...seen].every((s) => s === 'web1' || s === 'web2'), [...seen].join()).toBe(true);
  }, 40_000);

  test('a session pinned through lb1 keeps its backend when lb1 stops and lb2 takes the VIP: lb2 reads the same cookie with the same authkeys', async () => {
    expect(nodes).toHaveLength(2);
    const jar = join(base, 'cookies.txt');
    const get = async (): Promise<{ backend: string; setCookie: boolean }> => {
      const r = await lab!.exec('client', ['curl', '-sS', '-i', '--max-time', '2', '-b', jar, '-c', jar, `http://${LAB_VIP}/`], { timeoutMs: 5_000 });
      expect(r.code, r.stderr).toBe(0);
      const [head, body] = r.stdout.split('\r\n\r\n');
      return { backend: body!.trim(), setCookie: /^set-cookie: TSBALID=/im.test(head!) };
    };
    const first = await get();
    expect(first.setCookie).toBe(true);
    for (let i = 0; i < 10; i++) expect(await get()).toEqual({ backend: first.backend, setCookie: false });
    // A clean stop hands the VIP over (a SIGKILL would leave the address on lb1's interface, as a dead host's is not).
    nodes[0]!.kill('SIGTERM');
    await waitFor('lb2 to hold the VIP', async () => ((await lab!.holders()).join() === 'lb2' ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });
    for (let i = 0; i < 10; i++) expect(await get()).toEqual({ backend: first.backend, setCookie: false });
  }, 30_000);
});
