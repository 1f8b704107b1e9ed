// IPv6 networks for ACCESS netmask and trusted_upstream_proxies (tsbal extensions: Perlbal 1.80 takes IPv4 only).
import { BlockList, isIP } from 'node:net';

/** An IPv6 network `address/bits`, address canonical (RFC 5952). */
export interface Ipv6Network {
  address: string;
  bits: number;
}

export type Ipv6NetworkParse = { ok: true; value: Ipv6Network } | { ok: false; message: string };

/** `2001:db8::/32` or a single address (`::1`, a /128); no brackets, no zone (`%eth0`). */
export function parseIpv6Network(spec: string): Ipv6NetworkParse {
  const [ip = '', bits, ...rest] = spec.split('/');
  const bad = (why: string): Ipv6NetworkParse => ({ ok: false, message: `'${spec}': ${why}` });
  if (rest.length > 0 || !/^[0-9A-Fa-f:.]+$/.test(ip) || isIP(ip) !== 6) return bad('not an IPv6 address or ipv6/bits (e.g. 2001:db8::/32)');
  if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > 128)) return bad('the prefix length must be 0 to 128');
  const address = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  return { ok: true, value: { address, bits: bits === undefined ? 128 : Number(bits) } };
}

/** A matcher for IPv6 networks (node:net's BlockList, which compares the address bits, not the text). */
export function ipv6Matcher(nets: readonly Ipv6Network[]): BlockList {
  const list = new BlockList();
  for (const n of nets) list.addSubnet(n.address, n.bits, 'ipv6');
  return list;
}

/** `::ffff:a.b.c.d` (how a dual-stack socket reports an IPv4 peer) as `a.b.c.d`, so it keeps matching IPv4 rules. */
export const unmapIpv4 = (ip: string): string => (ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip);

/** Two colons or more: an IPv6 form (Net::Netmask's IPv4 `a.b.c.d:mask` has one). */
export const looksIpv6 = (s: string): boolean => s.indexOf(':') !== s.lastIndexOf(':');
