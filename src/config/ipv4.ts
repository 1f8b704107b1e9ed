// Dotted-quad IPv4 literals, the only address form Perlbal and heartbeat's IPaddr accept.

/** Strict a.b.c.d with each part 0..255 and no leading zeros (which some tools read as octal). */
export function isIpv4(s: string): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  return parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

export function ipv4ToInt(s: string): number {
  return s.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** True when `ip` lies in `network/prefix`. */
export function inSubnet(ip: string, network: string, prefix: number): boolean {
  // Bitwise ops are signed 32-bit in JS; compare the network parts arithmetically instead.
  const size = 2 ** (32 - prefix);
  return Math.floor(ipv4ToInt(ip) / size) === Math.floor(ipv4ToInt(network) / size);
}

/** An IPv4 network: the addresses n with `network <= n < network + size`. */
export interface Ipv4Network {
  network: number;
  bits: number;
}

export type NetmaskParse = { ok: true; value: Ipv4Network } | { ok: false; message: string };

/** The prefix length of a contiguous dotted mask (`255.255.0.0` → 16), or -1. */
function maskBits(mask: string, inverted: boolean): number {
  if (!isIpv4(mask)) return -1;
  const n = inverted ? 0xffffffff - ipv4ToInt(mask) : ipv4ToInt(mask);
  for (let bits = 0; bits <= 32; bits++) if (n === 2 ** 32 - 2 ** (32 - bits)) return bits;
  return -1;
}

function network(ip: string, bits: number): Ipv4Network {
  const size = 2 ** (32 - bits);
  return { network: Math.floor(ipv4ToInt(ip) / size) * size, bits };
}

/**
 * The IPv4 forms Net::Netmask's new2 takes (what Perlbal's ACCESS netmask uses): `a.b.c.d`, `a.b.c.d/bits`,
 * `a.b.c.d/mask`, `a.b.c.d:mask`, `a.b.c.d#hostmask`, `a.b.c.d-e.f.g.h` (an exact CIDR block), `any`, `default`.
 * Host bits are cleared (`127.0.0.5/24` is 127.0.0.0/24), as Net::Netmask does.
 */
export function parseNetmaskSpec(spec: string): NetmaskParse {
  const s = spec.toLowerCase();
  if (s === 'any' || s === 'default') return { ok: true, value: { network: 0, bits: 0 } };
  const bad = (why: string): NetmaskParse => ({ ok: false, message: `'${spec}': ${why}` });
  const m = /^([^/:#-]+)(?:([/:#-])(.*))?$/.exec(s);
  if (m === null || !isIpv4(m[1]!)) return bad('not a.b.c.d, a.b.c.d/bits or a.b.c.d/mask');
  const [, ip, sep, rest] = m as unknown as [string, string, string | undefined, string | undefined];
  if (sep === undefined) return { ok: true, value: network(ip, 32) };
  if (sep === '-') {
    if (rest === undefined || !isIpv4(rest)) return bad('a range needs two addresses (a.b.c.d-e.f.g.h)');
    const first = ipv4ToInt(ip);
    const count = ipv4ToInt(rest) - first + 1;
    const bits = 32 - Math.log2(count);
    if (!Number.isInteger(bits) || first % count !== 0) return bad('the range is not one CIDR block');
    return { ok: true, value: { network: first, bits } };
  }
  if (sep === '/' && rest !== undefined && /^\d{1,2}$/.test(rest)) {
    if (Number(rest) > 32) return bad('more than 32 bits');
    return { ok: true, value: network(ip, Number(rest)) };
  }
  const bits = maskBits(rest ?? '', sep === '#');
  if (bits < 0) return bad(`'${rest ?? ''}' is not a prefix length or a contiguous mask`);
  return { ok: true, value: network(ip, bits) };
}

/** True when the dotted-quad `ip` lies in `net`; false for anything that is not an IPv4 literal. */
export function inNetwork(ip: string, net: Ipv4Network): boolean {
  if (!isIpv4(ip)) return false;
  const n = ipv4ToInt(ip);
  return n >= net.network && n < net.network + 2 ** (32 - net.bits);
}
