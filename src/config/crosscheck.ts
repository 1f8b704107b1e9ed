// Checks between perlbal.conf and /etc/ha.d: the VIP heartbeat moves should be where the proxy listens, and every
// service should listen where a client can reach it. All warnings: `tsbal run` starts with these files (it waits
// for an address that is not yet local), so `tsbal check` passes them too, and says what will not be served.
import type { ConfigDiagnostic, SourceLocation } from './errors.ts';
import type { HaDirConfig, PerlbalConfig, ServiceModel } from './model.ts';
import { createDiagnostics } from './diagnostics.ts';
import { formatHostPort, wildcardOf } from './perlbal/values.ts';

export interface CrossCheckFacts {
  /** net.ipv4.ip_nonlocal_bind on this host, or null if unknown (then nothing is said about it). */
  nonlocalBind: boolean | null;
  /** This host's IPv4 addresses, or null when the files are another node's (then nothing is said about them). */
  localAddresses: ReadonlySet<string> | null;
}

/** Every address haresources moves between the nodes (IPaddr/IPaddr2 resources). */
export function clusterVips(ha: HaDirConfig): Array<{ ip: string; node: string; loc: SourceLocation }> {
  return ha.haresources.groups.flatMap((g) => g.resources.flatMap((r) => (r.kind === 'ip' ? [{ ip: r.ip, node: g.node, loc: g.loc }] : [])));
}

const WILDCARD = '0.0.0.0';
/** The roles that balance: only these serve the VIP through a wildcard listen (a web_server there is a docroot). */
const BALANCING: ReadonlySet<string> = new Set(['reverse_proxy', 'selector']);

const listening = (perlbal: PerlbalConfig): ServiceModel[] => perlbal.services.filter((s) => s.enabled && s.listen !== null);
const where = (s: ServiceModel): string => formatHostPort(s.listen!);

/**
 * True when `s` serves clients on `ip`: it listens on that address by name, or it balances (reverse_proxy, selector)
 * on every address. A management console never counts, and neither does a wildcard web_server: Debian's example
 * perlbal.conf serves /usr/share/doc on 0.0.0.0:8080, which is not the cluster the VIP is for.
 */
export function servesAddress(s: ServiceModel, ip: string, port?: number): boolean {
  if (!s.enabled || s.listen === null || s.role === 'management') return false;
  if (port !== undefined && s.listen.port !== port) return false;
  return s.listen.host === ip || (s.listen.host === WILDCARD && BALANCING.has(s.role ?? ''));
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}

export function checkAcrossFiles(perlbal: PerlbalConfig, ha: HaDirConfig, facts: CrossCheckFacts): ConfigDiagnostic[] {
  const d = createDiagnostics();
  const services = listening(perlbal);
  const vips = clusterVips(ha);
  for (const vip of vips) {
    if (services.some((s) => servesAddress(s, vip.ip))) continue;
    const others = services.filter((s) => s.role !== 'management').map((s) => `${s.name} on ${where(s)}`);
    d.warn(vip.loc, `VIP ${vip.ip} is served by no enabled service in ${perlbal.file}: the cluster moves it, but no client request to it is answered` +
      (others.length > 0 ? ` (${others.join(', ')})` : ''),
      `SET listen = ${vip.ip}:80 on the reverse_proxy service clients should reach`);
  }
  const vipSet = new Set(vips.map((v) => v.ip));
  if (facts.nonlocalBind === false) {
    for (const s of services) {
      if (!vipSet.has(s.listen!.host)) continue;
      d.warn(s.loc, `service ${s.name} listens on the VIP ${s.listen!.host}, which the standby node can bind only with net.ipv4.ip_nonlocal_bind=1 (it is 0 here)`,
        'tsbal setup writes the sysctl drop-in; or run sysctl -w net.ipv4.ip_nonlocal_bind=1');
    }
  }
  d.list.push(...checkListenAddresses(perlbal, vipSet, facts.localAddresses));
  return d.list;
}

/**
 * A service that listens on an address that is neither this host's nor a VIP receives nothing: `tsbal run` (like
 * Perlbal with ip_nonlocal_bind on) starts anyway and waits for the address, so this is a warning, not an error.
 */
export function checkListenAddresses(perlbal: PerlbalConfig, vips: ReadonlySet<string>, local: ReadonlySet<string> | null): ConfigDiagnostic[] {
  const d = createDiagnostics();
  if (local === null) return d.list;
  for (const s of listening(perlbal)) {
    const host = s.listen!.host;
    if (host === WILDCARD || host === '::' || isLoopback(host) || vips.has(host) || local.has(host)) continue;
    const anyAddress = formatHostPort({ host: wildcardOf(host), port: s.listen!.port });
    d.warn(s.loc, `service ${s.name} listens on ${where(s)}, which is neither an address of this host nor a VIP in haresources: it receives nothing until that address is added here`,
      vips.size > 0 ? `listen on the VIP (${[...vips].join(', ')}) or on ${anyAddress}` : `listen on an address of this host, or on ${anyAddress}`);
  }
  return d.list;
}
