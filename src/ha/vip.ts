// Moving the VIP: `ip addr add VIP/mask brd + dev IFACE label IFACE:0`, gratuitous ARP with iputils `arping -U`,
// `ip addr del` on release. Replaces heartbeat's IPaddr/IPaddr2 shell agents (which took 1-1.7 s per takeover).
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Resource } from '../config/model.ts';
import { interfaceAddresses, inSubnet } from './transport.ts';
import { networkInterfaces } from 'node:os';

export type IpResource = Extract<Resource, { kind: 'ip' }>;

export interface Vip {
  ip: string;
  cidr: number;
  iface: string;
  /** The `label` for ip addr add, or null when IFACE:LABEL would not fit IFNAMSIZ. */
  label: string | null;
  /** How the VIP was written in haresources, for messages. */
  raw: string;
}

export interface GarpOptions {
  count: number;
  intervalMs: number;
}

export const DEFAULT_GARP: GarpOptions = { count: 5, intervalMs: 200 };

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with a timeout; a missing binary is an Error that says which package to install. */
export function exec(cmd: string, args: string[], timeoutMs = 10_000): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? ((error as NodeJS.ErrnoException).code === 'ENOENT' ? -1 : typeof error.code === 'number' ? error.code : null) : 0;
      if (code === -1) return reject(new Error(`${cmd}: command not found${cmd === 'ip' ? ' (install iproute2)' : ''}`));
      resolve({ code, stdout, stderr });
    });
  });
}

export function findInPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // keep looking
    }
  }
  return null;
}

/** Interface and prefix for a VIP: as haresources says, else from the interface whose subnet holds it (findif). */
export function resolveVip(r: IpResource): Vip {
  let iface = r.iface;
  let cidr = r.cidr;
  if (iface === null) {
    for (const [name, addrs] of Object.entries(networkInterfaces())) {
      const hit = (addrs ?? []).find((a) => a.family === 'IPv4' && !a.internal && a.address !== r.ip && inSubnet(r.ip, a.address, Number(a.cidr?.split('/')[1] ?? 32)));
      if (hit) {
        iface = name;
        cidr ??= Number(hit.cidr?.split('/')[1] ?? 32);
        break;
      }
    }
    if (iface === null) {
      throw new Error(`${r.raw}: no interface has an address in the subnet of ${r.ip}; name it, e.g. IPaddr::${r.ip}/24/eth0`);
    }
  }
  if (cidr === null) {
    const addrs = interfaceAddresses(iface).filter((a) => a.address !== r.ip);
    const same = addrs.find((a) => inSubnet(r.ip, a.address, a.prefix)) ?? addrs[0];
    if (!same) throw new Error(`${r.raw}: interface ${iface} does not exist or has no IPv4 address to take the netmask from`);
    cidr = same.prefix;
  }
  // IPaddr2 keeps a label it was given (eth0:vip); otherwise the issue's `IFACE:0`, like IPaddr's first alias.
  const label = `${iface}:${r.agent === 'IPaddr2' && r.label !== null ? r.label : '0'}`;
  return { ip: r.ip, cidr, iface, label: label.length <= 15 ? label : null, raw: r.raw };
}

export async function vipPresent(v: Vip): Promise<boolean> {
  const r = await exec('ip', ['-o', '-4', 'addr', 'show', 'dev', v.iface]);
  if (r.code !== 0) throw new Error(`ip addr show dev ${v.iface}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return new RegExp(`\\sinet ${v.ip.replace(/\./g, '\\.')}/`).test(r.stdout);
}

export interface VipManager {
  add(v: Vip): Promise<void>;
  remove(v: Vip): Promise<void>;
  /** Sends the gratuitous ARP burst again for a VIP we hold (false: we do not hold it, nothing sent). */
  reannounce(v: Vip): boolean;
  /** Stops gratuitous ARP still being sent. */
  close(): void;
  /**
   * Last resort when the process exits without a graceful stop (an uncaught error, a second SIGTERM): removes the
   * VIPs we added, synchronously, so a dead tsbal does not keep answering ARP for an address its peer now holds.
   */
  releaseAllSync(): void;
}

export function createVipManager(garp: GarpOptions, onLog: (level: 'info' | 'warn' | 'error', msg: string) => void): VipManager {
  // Per VIP: the pending announcement timers and the arping processes still running.
  const garps = new Map<string, { timers: Array<ReturnType<typeof setTimeout>>; children: Set<ChildProcess> }>();
  const haveArping = findInPath('arping') !== null;
  const held = new Map<string, Vip>();
  const stopGarp = (ip: string): void => {
    const g = garps.get(ip);
    if (!g) return;
    for (const t of g.timers) clearTimeout(t);
    for (const c of g.children) if (c.exitCode === null) c.kill('SIGTERM');
    garps.delete(ip);
  };
  // iputils arping takes whole seconds for -i, and `-U -c 1` sends at once then lingers ~1 s: so one process per
  // announcement, spaced by our own timer (heartbeat's IPaddr2 sends 5, 200 ms apart).
  const announce = (v: Vip, g: { children: Set<ChildProcess> }): void => {
    const child = spawn('arping', ['-q', '-U', '-c', '1', '-I', v.iface, v.ip], { stdio: ['ignore', 'ignore', 'pipe'] });
    g.children.add(child);
    let err = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => onLog('warn', `arping for ${v.ip}: ${e.message}`));
    child.on('exit', (code, signal) => {
      g.children.delete(child);
      if (code !== 0 && signal === null) onLog('warn', `arping -U for ${v.ip} on ${v.iface} exited ${code}: ${err.trim()}`);
    });
  };
  const burst = (v: Vip): void => {
    stopGarp(v.ip);
    const g = { timers: [] as Array<ReturnType<typeof setTimeout>>, children: new Set<ChildProcess>() };
    garps.set(v.ip, g);
    // Chained, so a slow spawn never squeezes two announcements together.
    let left = garp.count;
    const next = (): void => {
      announce(v, g);
      if (--left > 0) g.timers.push(setTimeout(next, garp.intervalMs));
    };
    next();
  };
  return {
    async add(v) {
      // Straight to `ip addr add` (one process on the failover path); iproute2 says "File exists" (older) or
      // "Address already assigned" (newer) when it is already there.
      const args = ['addr', 'add', `${v.ip}/${v.cidr}`, 'brd', '+', 'dev', v.iface];
      if (v.label) args.push('label', v.label);
      const r = await exec('ip', args);
      if (r.code !== 0 && !/File exists|already assigned/.test(r.stderr)) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
      held.set(v.ip, v);
      if (!haveArping) {
        onLog('warn', `arping not found: no gratuitous ARP for ${v.ip} (install iputils-arping); neighbours may keep the old MAC`);
        return;
      }
      burst(v);
    },
    reannounce(v) {
      if (!held.has(v.ip)) return false;
      if (haveArping) burst(v);
      return true;
    },
    async remove(v) {
      stopGarp(v.ip);
      held.delete(v.ip);
      if (!(await vipPresent(v))) return;
      const r = await exec('ip', ['addr', 'del', `${v.ip}/${v.cidr}`, 'dev', v.iface]);
      if (r.code !== 0 && (await vipPresent(v))) throw new Error(`ip addr del ${v.ip}/${v.cidr} dev ${v.iface}: ${r.stderr.trim()}`);
    },
    close() {
      for (const ip of [...garps.keys()]) stopGarp(ip);
    },
    releaseAllSync() {
      for (const v of held.values()) {
        try {
          execFileSync('ip', ['addr', 'del', `${v.ip}/${v.cidr}`, 'dev', v.iface], { stdio: 'ignore', timeout: 2000 });
        } catch {
          // Best effort on the way out.
        }
      }
      held.clear();
    },
  };
}
