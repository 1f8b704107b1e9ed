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
