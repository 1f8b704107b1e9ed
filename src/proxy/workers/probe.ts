// SERVER workers: is an address free for this tsbal's workers? With SO_REUSEPORT a second tsbal (same user) could
// join a port silently, so the owner looks before any worker binds: a socket listening on the port (on the address,
// or on a wildcard that covers it) in /proc/net/tcp{,6} means another program, often another tsbal, serves there.
// Looking rather than binding: a socket the owner listened on, even for a moment, would accept connections that
// nobody then answers (a client, or a readiness check, would take it for tsbal being up).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import type { HostPort } from '../../config/model.ts';
import { procNet6Address } from '../../cli/pidfile.ts';

/** /proc/net's hex of an IPv4 address (little-endian on x86 and arm64, as the kernel prints the u32). */
function hex4(host: string): string | null {
  const o = host.split('.').map(Number);
  if (o.length !== 4 || o.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) return null;
  return o.reverse().map((n) => n.toString(16).toUpperCase().padStart(2, '0')).join('');
}

const WILDCARD_V4 = '00000000';
const WILDCARD_V6 = '0'.repeat(32);

/** tcp6's prefix of an IPv4-mapped address (::ffff:a.b.c.d): an IPv4 client reaches such a socket. */
const MAPPED = '0000000000000000FFFF0000';

/**
 * Whether a TCP socket listens on `port` at an address that takes connections for `host` (`host` itself, or a
 * wildcard; for a wildcard `host`, any address of its family). tsbal binds `[::]` IPv6-only (listener.ts), as a
 * single process would: an IPv6 host never collides with an IPv4 socket, and an IPv4 host collides in tcp6 only
 * with `[::]` (which may be another program's dual-stack socket) or an IPv4-mapped address. Sockets whose inode is in
 * `own` are this process's (a single process binding its second address, or a reload adding one) and do not count.
 * Pure: the tables' text in.
 */
export function listensThere(tcp: string, tcp6: string, host: string, port: number, own: ReadonlySet<string> = new Set()): boolean {
  const p = port.toString(16).toUpperCase().padStart(4, '0');
  let in4: (addr: string) => boolean;
  let in6: (addr: string) => boolean;
  if (host.includes(':')) {
    // An IPv6 host ([::1]:80, an IPv6 VIP) in tcp6's form: without it a second tsbal on [::1]:80 joined the port.
    const v6 = procNet6Address(host, port)?.split(':')[0] ?? null;
    in4 = () => false;
    in6 = host === '::' ? () => true : (a) => a === WILDCARD_V6 || a === v6;
  } else {
    const v4 = hex4(host);
    in4 = host === '0.0.0.0' ? () => true : (a) => a === WILDCARD_V4 || a === v4;
    in6 = host === '0.0.0.0' ? (a) => a === WILDCARD_V6 || a.startsWith(MAPPED) : (a) => a === WILDCARD_V6 || a === `${MAPPED}${v4}`;
  }
  for (const [table, matches] of [[tcp, in4], [tcp6, in6]] as const) {
    for (const line of table.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== '0A') continue;
      const [addr = '', fport] = (f[1] ?? '').split(':');
      if (fport === p && matches(addr) && !own.has(f[9] ?? '')) return true;
    }
  }
  return false;
}

function readTable(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The inodes of this process's sockets (/proc/self/fd links `socket:[N]`). */
function ownSocketInodes(): Set<string> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m !== null) inodes.add(m[1]!);
    } catch {
      // Closed since the listing.
    }
  }
  return inodes;
}

/** How long a port found in use is looked at again before it counts (see probeAddress). */
const IN_USE_RETRY_MS = 1000;

/**
 * Throws the address's own bind error (EADDRNOTAVAIL for an address not local yet, e.g. a VIP) from a bind of port 0
 * there, then EADDRINUSE when something listens where `addr` would. For a second a port in use is looked at again:
 * the workers of an owner killed a moment ago (kill -9, restarted by --supervise) let go of it when they notice.
 */
export async function probeAddress({ host, port }: HostPort): Promise<void> {
  // First whether the address is local at all (a VIP not added yet is pending, whatever else listens on the port),
  // with port 0: nobody connects to the ephemeral port it gets.
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0, ipv6Only: host === '::' }, () => resolve());
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const until = Date.now() + IN_USE_RETRY_MS;
  for (;;) {
    const tcp = readTable('/proc/net/tcp');
    if (tcp === null || !listensThere(tcp, readTable('/proc/net/tcp6') ?? '', host, port, ownSocketInodes())) return;
    if (Date.now() >= until) throw Object.assign(new Error(`listen EADDRINUSE: address already in use ${host}:${port}`), { code: 'EADDRINUSE' });
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
