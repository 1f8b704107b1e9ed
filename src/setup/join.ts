// The join line: what the first node's `tsbal setup` prints for the second one (as `kubeadm init` prints
// `kubeadm join ...`), and the key file that line feeds back in. Pure: the caller supplies the interfaces and the file.
import { ipv4ToInt, isIpv4 } from '../config/ipv4.ts';
import { STDIN_KEY_FILE } from './keyfile.ts';
import type { SetupOptions } from './options.ts';
import { quoteWord, type ResolvedAuth } from './render.ts';

export interface InterfaceAddress {
  address: string;
  family: string | number;
  internal: boolean;
}

/**
 * This node's own address on `iface`, for the peer's `--peer-ip` (its ucast target): an IPv4 address that is not the
 * VIP (which this node may hold right now), the one closest to the peer's address when there are several.
 */
export function ownAddress(iface: string, interfaces: Readonly<Record<string, readonly InterfaceAddress[] | undefined>>, vip: string, peerIp: string | null): string | null {
  const candidates = (interfaces[iface] ?? [])
    .filter((a) => (a.family === 'IPv4' || a.family === 4) && isIpv4(a.address) && a.address !== vip)
    .map((a) => a.address);
  if (candidates.length === 0) return null;
  if (peerIp === null) return candidates[0]!;
  const common = (a: string): number => Math.clz32((ipv4ToInt(a) ^ ipv4ToInt(peerIp)) >>> 0);
  return candidates.reduce((best, a) => (common(a) > common(best) ? a : best));
}

export interface JoinAdvice {
  /** The line to paste on the peer, the key inside it. */
  line: string;
  /** What to tell the admin around it. */
  lines: string[];
}

/** The placeholder when this node's address on --iface is not known (a staged --root tree, an interface not up). */
export function addressPlaceholder(o: SetupOptions): string {
  return `${o.node.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_ADDRESS`;
}

/**
 * The setup command for the peer: the same cluster seen from the other side (`--node`/`--peer` swapped, `--peer-ip`
 * pointing back here), every flag both nodes must agree on, and the key on standard input so it stays out of `ps`.
 * Per-host flags (--init, --exec, --root, --apply, --force) are left to the admin.
 */
export function joinCommand(o: SetupOptions, auth: ResolvedAuth, selfAddress: string | null): string {
  const flags: string[] = ['--node', o.peer, '--peer', o.node];
  if (o.primary !== [o.node, o.peer].sort()[0]) flags.push('--primary', o.primary);
  flags.push('--vip', `${o.vip.ip}/${o.vip.cidr}`, '--iface', o.iface);
  if (o.peerIp !== null) flags.push('--peer-ip', selfAddress ?? addressPlaceholder(o));
  flags.push('--backend', o.backends.join(','));
  if (o.port !== 80) flags.push('--port', String(o.port));
  if (o.mgmtPort !== 60000) flags.push('--mgmt-port', String(o.mgmtPort));
  if (o.sticky !== 'cookie') flags.push('--sticky', o.sticky);
  if (o.healthPath !== '/') flags.push('--health-path', o.healthPath);
  if (o.keepalive !== '2') flags.push('--keepalive', o.keepalive);
  if (o.deadtime !== '10') flags.push('--deadtime', o.deadtime);
  if (o.ping.length > 0) flags.push('--ping', o.ping.join(','));
  if (!o.autoFailback) flags.push('--auto-failback', 'off');
  if (auth.method !== 'sha1') flags.push('--auth', auth.method);
  flags.push('--auth-key-file', STDIN_KEY_FILE);
  // The leading space keeps the line out of bash history where HISTCONTROL has ignorespace (Debian's default
  // .bashrc sets ignoreboth); printf is a builtin of bash and dash, so the key never appears in a process list.
  return ` printf '%s\\n' ${quoteWord(auth.key)} | tsbal setup ${flags.map(quoteWord).join(' ')}`;
}

export function joinAdvice(o: SetupOptions, auth: ResolvedAuth, selfAddress: string | null, authkeysPath: string): JoinAdvice {
  const line = joinCommand(o, auth, selfAddress);
  const lines = [
    `join: to add ${o.peer}, run this one line on ${o.peer} as root (it installs tsbal's files there with the same key and flags):`,
    '',
    line,
    '',
    `  SECRET: the line above holds the cluster's ${auth.method} key, printed only this once. Anyone who has it can forge`,
    `  heartbeats and take the VIP: do not paste it into tickets or chat. It stays in ${authkeysPath} (mode 600) here.`,
    `  Or put the key alone in a file of mode 600 on ${o.peer} and pass --auth-key-file FILE instead of the printf.`,
    `  The line assumes ${o.peer}'s interface is ${o.iface} too; change --iface if it has another name there.`,
  ];
  if (o.peerIp !== null && selfAddress === null) {
    lines.push(`  Replace ${addressPlaceholder(o)} with ${o.node}'s address on ${o.iface} (${o.peer} sends its heartbeats there).`);
  }
  if (o.peerIp !== null && selfAddress !== null) {
    lines.push(`  --peer-ip ${selfAddress} is ${o.node}'s address on ${o.iface}; change it if ${o.peer} reaches ${o.node} by another one.`);
  }
  return { line, lines };
}
