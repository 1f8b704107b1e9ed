// Checks between perlbal.conf and /etc/ha.d: the VIP heartbeat moves should be where the proxy listens.
import type { ConfigDiagnostic, SourceLocation } from './errors.ts';
import type { HaDirConfig, PerlbalConfig } from './model.ts';
import { createDiagnostics } from './diagnostics.ts';

export interface CrossCheckFacts {
  /** net.ipv4.ip_nonlocal_bind on this host, or null if unknown (then nothing is said about it). */
  nonlocalBind: boolean | null;
}

/** Every address haresources moves between the nodes (IPaddr/IPaddr2 resources). */
export function clusterVips(ha: HaDirConfig): Array<{ ip: string; node: string; loc: SourceLocation }> {
  return ha.haresources.groups.flatMap((g) => g.resources.flatMap((r) => (r.kind === 'ip' ? [{ ip: r.ip, node: g.node, loc: g.loc }] : [])));
}

export function checkAcrossFiles(perlbal: PerlbalConfig, ha: HaDirConfig, facts: CrossCheckFacts): ConfigDiagnostic[] {
  const d = createDiagnostics();
  const listening = perlbal.services.filter((s) => s.enabled && s.listen !== null);
  const vips = clusterVips(ha);
  for (const vip of vips) {
    const onVip = listening.filter((s) => s.listen!.host === vip.ip || s.listen!.host === '0.0.0.0');
    if (onVip.length === 0) {
      d.warn(vip.loc, `VIP ${vip.ip} is not the listen address of any enabled service in ${perlbal.file}`,
        `SET listen = ${vip.ip}:80 on the service clients should reach`);
    }
  }
  const vipSet = new Set(vips.map((v) => v.ip));
  if (facts.nonlocalBind === false) {
    for (const s of listening) {
      if (!vipSet.has(s.listen!.host)) continue;
      d.warn(s.loc, `service ${s.name} listens on the VIP ${s.listen!.host}, which the standby node can bind only with net.ipv4.ip_nonlocal_bind=1 (it is 0 here)`,
        'tsbal setup writes the sysctl drop-in; or run sysctl -w net.ipv4.ip_nonlocal_bind=1');
    }
  }
  return d.list;
}
