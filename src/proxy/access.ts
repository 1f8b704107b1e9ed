// The AccessControl plugin's decision (Perlbal::Plugin::AccessControl): ACCESS rules are tried in order and the
// first whose ip or netmask matches the client decides; with no match, ACCESS POLICY does (allow by default).
// Pure: the caller passes the client's address and, for use_observed_ip, its X-Forwarded-For.
import type { AccessRule } from '../config/model.ts';
import type { BlockList } from 'node:net';
import { inNetwork, parseNetmaskSpec, type Ipv4Network } from '../config/ipv4.ts';
import { ipv6Matcher, looksIpv6, parseIpv6Network, unmapIpv4 } from '../config/ipv6.ts';

export type CompiledAccessRule =
  | { action: AccessRule['action']; kind: 'ip'; ip: string }
  | { action: AccessRule['action']; kind: 'netmask'; net: Ipv4Network }
  | { action: AccessRule['action']; kind: 'netmask6'; net: BlockList };

export interface AccessPolicy {
  denyByDefault: boolean;
  rules: CompiledAccessRule[];
  /** `SET <svc>.accesscontrol.use_observed_ip`: match a trusted peer's first X-Forwarded-For entry instead. */
  useObservedIp: boolean;
}

/**
 * What to do with the request. `queue_low` lets it through (Perlbal puts it in its low-priority queue; tsbal has no
 * priority queues). `rule` is the index of the deciding rule, -1 for the policy.
 */
export type AccessDecision = { kind: 'allow' | 'deny' | 'queue_low'; rule: number };

/** Rules as the config parser checked them; a netmask it accepted always compiles. */
export function compileAccess(cfg: { policy: 'allow' | 'deny'; rules: readonly AccessRule[] }, useObservedIp: boolean): AccessPolicy {
  const rules = cfg.rules.map((r): CompiledAccessRule => {
    // tsbal: IPv6 rules; an address is compared in its canonical form, as the socket reports the client.
    if (r.kind === 'ip') return { action: r.action, kind: 'ip', ip: looksIpv6(r.value) ? canonical(r.value) : r.value };
    if (looksIpv6(r.value)) {
      const v6 = parseIpv6Network(r.value);
      if (!v6.ok) throw new Error(`${r.loc.file}:${r.loc.line}: Error parsing netmask (${v6.message})`);
      return { action: r.action, kind: 'netmask6', net: ipv6Matcher([v6.value]) };
    }
    const parsed = parseNetmaskSpec(r.value);
    if (!parsed.ok) throw new Error(`${r.loc.file}:${r.loc.line}: Error parsing netmask (${parsed.message})`);
    return { action: r.action, kind: 'netmask', net: parsed.value };
  });
  return { denyByDefault: cfg.policy === 'deny', rules, useObservedIp };
}

function canonical(ip: string): string {
  const v6 = parseIpv6Network(ip);
  return v6.ok ? v6.value.address : ip;
}

/**
 * The address a trusted upstream proxy reports for its client: the first X-Forwarded-For entry (Perlbal splits on
 * `,\s*`), or null when there is none.
 */
export function observedIp(xForwardedFor: string | undefined): string | null {
  if (xForwardedFor === undefined) return null;
  const first = xForwardedFor.split(',')[0]!.trim();
  return first === '' ? null : first;
}

/**
 * `clientIp` is the peer address, or the observed address when use_observed_ip is on and the peer is trusted
 * (Perlbal falls back to the peer when the observed one is empty). An `ip` rule is an exact string match, as in
 * Perlbal; an IPv4 netmask never matches something that is not an IPv4 literal, an IPv6 one (tsbal) only IPv6 clients.
 */
export function accessDecision(p: AccessPolicy, peerOrObservedIp: string): AccessDecision {
  // An IPv4 client on a dual-stack socket ([::]) matches IPv4 rules; an IPv6 one, only IPv6 netmasks and ip rules.
  const clientIp = unmapIpv4(peerOrObservedIp);
  const v6 = clientIp.includes(':');
  for (let i = 0; i < p.rules.length; i++) {
    const r = p.rules[i]!;
    const match = r.kind === 'ip' ? r.ip === clientIp : r.kind === 'netmask' ? inNetwork(clientIp, r.net) : v6 && r.net.check(clientIp, 'ipv6');
    if (match) return { kind: r.action, rule: i };
  }
  return { kind: p.denyByDefault ? 'deny' : 'allow', rule: -1 };
}

/** The address AccessControl matches for this client. */
export function accessClientIp(p: AccessPolicy, peerIp: string, trusted: boolean, xForwardedFor: () => string | undefined): string {
  if (!p.useObservedIp || !trusted) return peerIp;
  return observedIp(xForwardedFor()) ?? peerIp;
}
