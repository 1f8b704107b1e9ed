// The anycast lab (issue 16): a router namespace running FRR (ASN 65000, ECMP with L4 hashing), three LB namespaces
// each running FRR (ASN 65001) and tsbal in anycast mode, two backends shared by all LBs, and a client behind the
// router. Everything is in 198.18.0.0/24:
//   198.18.0.0/25   the LB segment (a bridge in its own namespace): router .1, lb1-3 .11-.13, web1-2 .21-.22
//   198.18.0.128/26 the client segment (one veth): router .129, client .130
//   198.18.0.200/32 the anycast VIP (in neither segment: only BGP routes it)
// FRR runs one instance per namespace in its own pathspace (/etc/frr/NAME, /var/run/frr/NAME), started with
// frrinit.sh inside the namespace (reference/frr-ecmp.md). Names embed the creator's PID; a later run sweeps labs
// whose creator died. Teardown SIGKILLs every process in every namespace and removes the FRR directories.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { execOk, execProc, sleep, spawnProc, waitFor, type ExecResult, type ProcHandle } from './proc.ts';

export const AC_HOSTS = ['rt', 'lb1', 'lb2', 'lb3', 'web1', 'web2', 'client'] as const;
export type AcHost = (typeof AC_HOSTS)[number];
export type AcLb = 'lb1' | 'lb2' | 'lb3';
export const AC_LBS: readonly AcLb[] = ['lb1', 'lb2', 'lb3'];

export const AC_ADDR = {
  rt: '198.18.0.1',
  rtClientSide: '198.18.0.129',
  lb1: '198.18.0.11',
  lb2: '198.18.0.12',
  lb3: '198.18.0.13',
  web1: '198.18.0.21',
  web2: '198.18.0.22',
  client: '198.18.0.130',
} as const;
export const AC_VIP = '198.18.0.200';
export const AC_VIP_DEV = 'vip0';
export const ROUTER_ASN = 65000;
export const LB_ASN = 65001;

/** The LB whose address is `ip` (a nexthop, or the source a backend saw). */
export function lbOf(ip: string): AcLb | null {
  return AC_LBS.find((lb) => AC_ADDR[lb] === ip) ?? null;
}

const PREFIX = 'acl';
const NAME_PATTERN = /^acl-(\d+)-[0-9a-f]+-/;
const FRR_ETC = '/etc/frr';
const FRR_RUN = '/var/run/frr';

export interface AnycastLab {
  readonly id: string;
  readonly ns: Readonly<Record<AcHost, string>>;
  exec(host: AcHost, argv: readonly string[], options?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  spawn(host: AcHost, argv: readonly string[], options?: { label?: string; env?: NodeJS.ProcessEnv }): ProcHandle;
  /** Starts FRR in the router and the LBs (in parallel) and waits until the router has its three BGP sessions. */
  startFrr(timeoutMs: number): Promise<void>;
  /** Gateways of the router's route to the VIP, sorted; empty when there is none. */
  nexthops(): Promise<string[]>;
  /** `vtysh -c` in a host's FRR instance. */
  vtysh(host: AcHost, command: string): Promise<string>;
  /** Unplugs or replugs an LB's cable at the switch. */
  setLink(lb: AcLb, up: boolean): Promise<void>;
  /** Makes an LB's connections to the backends fail at once (nft reject in its output chain), or stops that. */
  blockBackends(lb: AcLb, block: boolean): Promise<void>;
  /** SIGKILLs the FRR daemons of a host. */
  killFrr(host: AcHost): Promise<void>;
  /** Whether the VIP is on an LB's vip0 now. */
  announcedOn(lb: AcLb): Promise<boolean>;
  teardown(): Promise<void>;
}

async function nsPids(ns: string): Promise<number[]> {
  const r = await execProc(['ip', 'netns', 'pids', ns], { timeoutMs: 5_000 });
  return r.code !== 0 ? [] : r.stdout.split('\n').map((l) => Number.parseInt(l, 10)).filter((p) => Number.isInteger(p) && p > 0);
}

function killPids(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

async function destroy(ns: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const pids = await nsPids(ns);
    if (pids.length === 0) break;
    killPids(pids);
    await sleep(20);
  }
  await execProc(['ip', 'netns', 'del', ns], { timeoutMs: 5_000 });
  rmSync(`${FRR_ETC}/${ns}`, { recursive: true, force: true });
  rmSync(`${FRR_RUN}/${ns}`, { recursive: true, force: true });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes labs (namespaces and FRR dirs) whose creator is gone. */
export async function sweepStaleAnycastLabs(): Promise<void> {
  const listing = await execProc(['ip', 'netns', 'list'], { timeoutMs: 5_000 });
  const names = listing.stdout.split('\n').map((l) => l.split(' ')[0] ?? '');
  const stale = names.filter((n) => {
    const m = NAME_PATTERN.exec(n);
    return m !== null && !pidAlive(Number(m[1]));
  });
  await Promise.all(stale.map(destroy));
}

const DAEMONS = `bgpd=yes
bfdd=yes
vtysh_enable=yes
zebra_options="  -A 127.0.0.1 -s 90000000"
bgpd_options="   -A 127.0.0.1"
staticd_options="-A 127.0.0.1"
bfdd_options="   -A 127.0.0.1"
`;

const BFD_PROFILE = `bfd
 profile fast
  detect-multiplier 3
  receive-interval 100
  transmit-interval 100
 exit
exit
`;

function routerConf(): string {
  const peers = AC_LBS.map((lb) => ` neighbor ${AC_ADDR[lb]} peer-group LB\n`).join('');
  return `frr defaults traditional
hostname rt
${BFD_PROFILE}router bgp ${ROUTER_ASN}
 bgp router-id ${AC_ADDR.rt}
 no bgp ebgp-requires-policy
 neighbor LB peer-group
 neighbor LB remote-as ${LB_ASN}
 neighbor LB timers 3 9
 neighbor LB timers connect 1
 neighbor LB bfd
 neighbor LB bfd profile fast
${peers} address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
exit
`;
}

/**
 * An LB's FRR: announce exactly the VIP, as a connected route (the address tsbal puts on vip0). The answering copy
 * (a local route on lo, in the local table) is not an interface address, so `redistribute connected` never sees it.
 */
export function lbFrrConf(lb: AcLb): string {
  return `frr defaults traditional
hostname ${lb}
ip prefix-list VIP seq 5 permit ${AC_VIP}/32
route-map VIP-ONLY permit 10
 match ip address prefix-list VIP
exit
${BFD_PROFILE}router bgp ${LB_ASN}
 bgp router-id ${AC_ADDR[lb]}
 no bgp ebgp-requires-policy
 neighbor ${AC_ADDR.rt} remote-as ${ROUTER_ASN}
 neighbor ${AC_ADDR.rt} timers 3 9
 neighbor ${AC_ADDR.rt} timers connect 1
 neighbor ${AC_ADDR.rt} bfd
 neighbor ${AC_ADDR.rt} bfd profile fast
 address-family ipv4 unicast
  redistribute connected route-map VIP-ONLY
 exit-address-family
exit
`;
}

function writeFrrDir(ns: string, conf: string): void {
  const dir = `${FRR_ETC}/${ns}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/daemons`, DAEMONS);
  writeFileSync(`${dir}/frr.conf`, conf);
  writeFileSync(`${dir}/vtysh.conf`, 'service integrated-vtysh-config\n');
  const frr = Number(execFileSync('id', ['-u', 'frr'], { encoding: 'utf8' }).trim());
  const frrGroup = Number(execFileSync('id', ['-g', 'frr'], { encoding: 'utf8' }).trim());
  for (const f of ['', '/daemons', '/frr.conf', '/vtysh.conf']) chownSync(`${dir}${f}`, frr, frrGroup);
}

const live = new Set<string[]>();
let exitHook = false;

export async function createAnycastLab(): Promise<AnycastLab> {
  if (!existsSync('/usr/lib/frr/frrinit.sh')) throw new Error('FRR is not installed (apt-get install frr; see scripts/setup.sh)');
  await sweepStaleAnycastLabs();
  const id = `${PREFIX}-${process.pid}-${randomBytes(2).toString('hex')}`;
  const ns = Object.fromEntries(AC_HOSTS.map((h) => [h, `${id}-${h}`])) as Record<AcHost, string>;
  const sw = `${id}-sw`;
  const names = [...AC_HOSTS.map((h) => ns[h]), sw];
  live.add(names);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const list of live) {
        for (const name of list) {
          try {
            killPids(execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split('\n').map(Number).filter((p) => p > 0));
            execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
          } catch {
            // the next run's sweep removes what is left
          }
          rmSync(`${FRR_ETC}/${name}`, { recursive: true, force: true });
          rmSync(`${FRR_RUN}/${name}`, { recursive: true, force: true });
        }
      }
    });
  }
  const spawned = new Set<ProcHandle>();
  let tornDown = false;
  const ip = (host: AcHost | 'sw', args: string[]) => execOk(['ip', '-n', host === 'sw' ? sw : ns[host], ...args]);
  const inNs = (host: AcHost, argv: readonly string[]) => execOk(['ip', 'netns', 'exec', ns[host], ...argv]);

  const lab: AnycastLab = {
    id,
    ns,
    exec: (host, argv, o) => execProc(['ip', 'netns', 'exec', ns[host], ...argv], o),
    spawn(host, argv, o) {
      if (tornDown) throw new Error(`lab ${id} is torn down`);
      const p = spawnProc(['ip', 'netns', 'exec', ns[host], ...argv], { label: o?.label ?? `${host}: ${argv.join(' ')}`, env: o?.env });
      spawned.add(p);
      void p.exited.then(() => spawned.delete(p));
      return p;
    },
    async startFrr(timeoutMs) {
      const hosts: AcHost[] = ['rt', ...AC_LBS];
      for (const h of hosts) writeFrrDir(ns[h], h === 'rt' ? routerConf() : lbFrrConf(h as AcLb));
      // At a raised priority, as a router's control plane has: on this shared test host the load average is 10-20,
      // and starved bgpd/bfdd/zebra otherwise add hundreds of ms to what BFD and BGP take.
      await Promise.all(hosts.map((h) => inNs(h, ['nice', '-n', '-10', '/usr/lib/frr/frrinit.sh', 'start', ns[h]])));
      await waitFor('the router to establish its three BGP sessions', async () => {
        const out = await lab.vtysh('rt', 'show bgp ipv4 unicast summary json').catch(() => '{}');
        const peers = (JSON.parse(out || '{}') as { peers?: Record<string, { state?: string }> }).peers ?? {};
        return AC_LBS.every((lb) => peers[AC_ADDR[lb]]?.state === 'Established') ? true : undefined;
      }, { timeoutMs, intervalMs: 200, describe: () => lab.vtysh('rt', 'show bgp summary').catch((e: Error) => e.message) });
    },
    async nexthops() {
      const r = await execProc(['ip', '-n', ns.rt, '-j', 'route', 'show', `${AC_VIP}/32`], { timeoutMs: 5_000 });
      const routes = JSON.parse(r.stdout.trim() || '[]') as Array<{ gateway?: string; nexthops?: Array<{ gateway: string }> }>;
      const out: string[] = [];
      for (const route of routes) {
        if (route.gateway) out.push(route.gateway);
        for (const n of route.nexthops ?? []) out.push(n.gateway);
      }
      return out.sort();
    },
    vtysh: (host, command) => inNs(host, ['vtysh', '-N', ns[host], '-c', command]),
    setLink: async (lb, up) => void (await ip('sw', ['link', 'set', lb, up ? 'up' : 'down'])),
    async blockBackends(lb, block) {
      if (!block) {
        await execProc(['ip', 'netns', 'exec', ns[lb], 'nft', 'delete', 'table', 'inet', 'lab_backends']);
        return;
      }
      const rules = `table inet lab_backends {\n  chain output {\n    type filter hook output priority 0;\n    ip daddr { ${AC_ADDR.web1}, ${AC_ADDR.web2} } tcp dport 80 reject with tcp reset\n  }\n}\n`;
      await execOk(['ip', 'netns', 'exec', ns[lb], 'nft', '-f', '-'], { input: rules });
    },
    async killFrr(host) {
      const r = await execProc(['ip', 'netns', 'exec', ns[host], 'sh', '-c', `cat ${FRR_RUN}/${ns[host]}/*.pid ${FRR_RUN}/${ns[host]}/watchfrr.pid 2>/dev/null`]);
      killPids(r.stdout.split(/\s+/).map(Number).filter((p) => p > 0));
    },
    async announcedOn(lb) {
      const out = await ip(lb, ['-4', '-o', 'addr', 'show', 'dev', AC_VIP_DEV]);
      return out.includes(`${AC_VIP}/32`);
    },
    async teardown() {
      if (tornDown) return;
      tornDown = true;
      for (const p of spawned) p.kill('SIGKILL');
      await Promise.all(AC_HOSTS.map((h) => destroy(ns[h])));
      await destroy(sw);
      live.delete(names);
    },
  };

  try {
    await execOk(['ip', 'netns', 'add', sw]);
    await execOk(['ip', 'netns', 'exec', sw, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await ip('sw', ['link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await ip('sw', ['link', 'set', 'br0', 'up']);
    await Promise.all(
      AC_HOSTS.map(async (h) => {
        await execOk(['ip', 'netns', 'add', ns[h]]);
        const sysctls = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];
        if (h === 'rt') sysctls.push('net.ipv4.ip_forward=1', 'net.ipv4.fib_multipath_hash_policy=1');
        await inNs(h, ['sysctl', '-q', '-w', ...sysctls]);
        await ip(h, ['link', 'set', 'lo', 'up']);
        if (h === 'client') return;
        const addr = h === 'rt' ? AC_ADDR.rt : AC_ADDR[h];
        await ip('sw', ['link', 'add', h, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns[h]]);
        await ip('sw', ['link', 'set', h, 'master', 'br0', 'up']);
        await ip(h, ['addr', 'add', `${addr}/25`, 'dev', 'eth0']);
        await ip(h, ['link', 'set', 'eth0', 'up']);
      }),
    );
    // The client's segment: one veth from the router.
    await ip('rt', ['link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.client]);
    await ip('rt', ['addr', 'add', `${AC_ADDR.rtClientSide}/26`, 'dev', 'eth1']);
    await ip('rt', ['link', 'set', 'eth1', 'up']);
    await ip('client', ['addr', 'add', `${AC_ADDR.client}/26`, 'dev', 'eth0']);
    await ip('client', ['link', 'set', 'eth0', 'up']);
    await ip('client', ['route', 'add', 'default', 'via', AC_ADDR.rtClientSide]);
    for (const lb of AC_LBS) {
      await ip(lb, ['route', 'add', 'default', 'via', AC_ADDR.rt]);
      await ip(lb, ['link', 'add', AC_VIP_DEV, 'type', 'ifb']);
      await ip(lb, ['link', 'set', AC_VIP_DEV, 'up']);
    }
  } catch (error) {
    await lab.teardown();
    throw error;
  }
  return lab;
}
