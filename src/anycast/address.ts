// The anycast VIP on this host, with iproute2. Two copies, for two jobs:
// - the announced copy: the address on `anycast_dev` (a dummy). FRR's `redistribute connected` sees it and announces
//   the /32; deleting it withdraws the route at the router within about 150 ms (reference/frr-ecmp.md);
// - the answering copy: a `local` route for the VIP on lo in the kernel's local table (no address: FRR redistributes
//   only interface addresses, so it never announces it). With it the node binds the VIP and answers the SYNs that the
//   router still sends during convergence, after the announced copy is gone: the planned stop loses nothing.
import { readFileSync } from 'node:fs';
import { exec, type ExecResult } from '../ha/vip.ts';
import type { AnycastSettings } from '../config/anycast.ts';

/** The metric of the answering route, so that tsbal deletes its own route and never the kernel's for an address. */
export const ANSWERING_ROUTE_METRIC = 1019;

type Run = (args: string[]) => Promise<ExecResult>;
const runIp: Run = (args) => exec('ip', args, 5000);

export type AddressVip = Pick<AnycastSettings, 'vip' | 'dev' | 'family'>;

const fam = (v: AddressVip): string => (v.family === 6 ? '-6' : '-4');

function failed(what: string, r: ExecResult): Error {
  return new Error(`${what}: ${(r.stderr || r.stdout).trim() || `exit code ${r.code}`}`);
}

/** Whether `dev` exists; the mode cannot start without it. */
export async function deviceExists(dev: string, run: Run = runIp): Promise<boolean> {
  return (await run(['link', 'show', 'dev', dev])).code === 0;
}

/** Adds the announced copy (idempotent: `replace`). */
export async function announce(v: AddressVip, run: Run = runIp): Promise<void> {
  const args = [fam(v), 'addr', 'replace', v.vip, 'dev', v.dev];
  if (v.family === 6) args.push('nodad');
  const r = await run(args);
  if (r.code !== 0) throw failed(`ip addr replace ${v.vip} dev ${v.dev}`, r);
}

/** Deletes the announced copy; `absent` when it was not there (nothing to withdraw), not an error. */
export async function withdraw(v: AddressVip, run: Run = runIp): Promise<'removed' | 'absent'> {
  const r = await run([fam(v), 'addr', 'del', v.vip, 'dev', v.dev]);
  if (r.code === 0) return 'removed';
  if (/Cannot assign requested address|Address not found|Cannot find device/i.test(r.stderr)) return 'absent';
  throw failed(`ip addr del ${v.vip} dev ${v.dev}`, r);
}

/** Whether the announced copy is on `dev` now (someone may have removed it by hand). */
export async function isAnnounced(v: AddressVip, run: Run = runIp): Promise<boolean> {
  const r = await run([fam(v), '-o', 'addr', 'show', 'dev', v.dev, 'to', v.vip]);
  return r.code === 0 && r.stdout.trim() !== '';
}

const routeArgs = (v: AddressVip): string[] => ['local', v.vip, 'dev', 'lo', 'table', 'local', 'metric', String(ANSWERING_ROUTE_METRIC)];

/** Adds the answering copy (idempotent). */
export async function keepAnswering(v: AddressVip, run: Run = runIp): Promise<void> {
  const r = await run([fam(v), 'route', 'replace', ...routeArgs(v)]);
  if (r.code !== 0) throw failed(`ip route replace local ${v.vip} dev lo table local`, r);
}

/** Removes the answering copy; absent is fine. */
export async function stopAnswering(v: AddressVip, run: Run = runIp): Promise<void> {
  const r = await run([fam(v), 'route', 'del', ...routeArgs(v)]);
  if (r.code !== 0 && !/No such process|not found|does not exist/i.test(r.stderr)) throw failed(`ip route del local ${v.vip} dev lo table local`, r);
}

/**
 * Whether tsbal can bind the VIP while it is not announced. IPv4: the answering route is enough. IPv6: a `local`
 * route does not let a socket bind (inet6_bind checks interface addresses only), so it takes
 * net.ipv6.ip_nonlocal_bind=1 (what `tsbal setup --anycast` writes) or the address already on an interface; without
 * either the service never listens, so the VIP is never announced.
 */
export async function canBindUnannounced(v: AddressVip, nonlocalBind: () => string = readIpv6NonlocalBind, run: Run = runIp): Promise<boolean> {
  if (v.family === 4 || nonlocalBind().trim() === '1') return true;
  const r = await run(['-6', '-o', 'addr', 'show', 'to', v.vip]);
  return r.code === 0 && r.stdout.trim() !== '';
}

function readIpv6NonlocalBind(): string {
  try {
    return readFileSync('/proc/sys/net/ipv6/ip_nonlocal_bind', 'utf8');
  } catch {
    return '0';
  }
}
