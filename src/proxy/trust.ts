// trusted_upstream_proxies: IPv4 netmasks (`10.0.0.0/8`, `192.168.1.5`) and, a tsbal extension, IPv6 ones
// (`2001:db8::/32`, `::1`) matched against client addresses.
import type { BlockList } from 'node:net';
import { F, fieldValue, type Fields } from './http/fields.ts';
import { ipv6Matcher, looksIpv6, parseIpv6Network, unmapIpv4 } from '../config/ipv6.ts';

export type Netmask =
  /** base: network address as an unsigned 32-bit integer; spec: as written, for messages. */
  | { family: 4; base: number; mask: number; spec: string }
  | { family: 6; net: BlockList; spec: string };

function ipv4ToInt(ip: string): number | null {
  const parts = ip.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n >>> 0;
}

/** Parses `a.b.c.d` or `a.b.c.d/len`; null if invalid. */
export function parseNetmask(spec: string): Netmask | null {
  if (looksIpv6(spec)) {
    const v6 = parseIpv6Network(spec.trim());
    return v6.ok ? { family: 6, net: ipv6Matcher([v6.value]), spec: spec.trim() } : null;
  }
  const [ip, len, ...rest] = spec.trim().split('/');
  if (rest.length > 0 || ip === undefined) return null;
  const base = ipv4ToInt(ip);
  if (base === null) return null;
  let bits = 32;
  if (len !== undefined) {
    if (!/^[0-9]{1,2}$/.test(len) || Number(len) > 32) return null;
    bits = Number(len);
  }
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { family: 4, base: (base & mask) >>> 0, mask, spec: spec.trim() };
}

/** Node reports IPv4 peers on dual-stack sockets as `::ffff:a.b.c.d`; the backend should see `a.b.c.d`. */
export function normalizePeerIp(address: string | undefined): string {
  if (address === undefined) return '0.0.0.0';
  return address.startsWith('::ffff:') && address.indexOf('.') !== -1 ? address.slice(7) : address;
}

/**
 * The client behind trusted proxies: the last address of the last X-Forwarded-For field (the one the trusted proxy
 * in front of us added), or the peer itself when there is none or it is not an address.
 */
export function forwardedClientIp(f: Fields, peerIp: string): string {
  for (let i = f.count - 1; i >= 0; i--) {
    if (f.codes[i] !== F.X_FORWARDED_FOR) continue;
    const v = fieldValue(f, i);
    const last = v.slice(v.lastIndexOf(',') + 1).trim();
    return last.length > 0 && last.length <= 45 && /^[0-9A-Fa-f.:]+$/.test(last) ? last : peerIp;
  }
  return peerIp;
}

export function isTrusted(peerIp: string, masks: readonly Netmask[]): boolean {
  if (masks.length === 0) return false;
  // An IPv4 peer on a dual-stack socket (::ffff:a.b.c.d) matches IPv4 masks.
  const ip = unmapIpv4(peerIp);
  if (ip.includes(':')) {
    for (const m of masks) if (m.family === 6 && m.net.check(ip, 'ipv6')) return true;
    return false;
  }
  const n = ipv4ToInt(ip);
  if (n === null) return false;
  for (const m of masks) if (m.family === 4 && ((n & m.mask) >>> 0) === m.base) return true;
  return false;
}
