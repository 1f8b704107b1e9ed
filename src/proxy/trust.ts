// trusted_upstream_proxies: IPv4 netmasks (`10.0.0.0/8`, `192.168.1.5`) matched against client addresses.

export interface Netmask {
  /** Network address as an unsigned 32-bit integer. */
  base: number;
  mask: number;
  /** As written, for messages. */
  spec: string;
}

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
  return { base: (base & mask) >>> 0, mask, spec: spec.trim() };
}

/** Node reports IPv4 peers on dual-stack sockets as `::ffff:a.b.c.d`; the backend should see `a.b.c.d`. */
export function normalizePeerIp(address: string | undefined): string {
  if (address === undefined) return '0.0.0.0';
  return address.startsWith('::ffff:') && address.indexOf('.') !== -1 ? address.slice(7) : address;
}

export function isTrusted(ip: string, masks: readonly Netmask[]): boolean {
  if (masks.length === 0) return false;
  const n = ipv4ToInt(ip);
  if (n === null) return false;
  for (const m of masks) if (((n & m.mask) >>> 0) === m.base) return true;
  return false;
}
