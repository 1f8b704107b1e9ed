// The files of an anycast node besides FRR's (frr.ts): perlbal.conf with the anycast lines, the sysctl drop-in, and
// the VIP's interface for systemd-networkd. Pure and deterministic.
import type { AnycastOptions } from './anycast-options.ts';
import { vipPrefix } from './frr.ts';
import { renderPerlbalConf } from './render.ts';

export const NETWORKD_DIR = '/etc/systemd/network';
export const netdevPath = (o: Pick<AnycastOptions, 'dev'>): string => `${NETWORKD_DIR}/tsbal-${o.dev}.netdev`;
export const networkPath = (o: Pick<AnycastOptions, 'dev'>): string => `${NETWORKD_DIR}/tsbal-${o.dev}.network`;

const HEADER = (what: string): string =>
  `# ${what}\n# Written by tsbal setup; edit freely: setup keeps a file that exists unless run with --force.\n`;

/**
 * `stickySecret`: the affinity key every node shares (a client's next connection may land on any node, and its cookie
 * must name the same backend there); null with --sticky off.
 */
export function renderAnycastPerlbalConf(o: AnycastOptions, stickySecret: string | null): string {
  // anycast_require is left at its default (every service on the VIP healthy), the safe choice for N nodes.
  const server = [`SERVER anycast_vip = ${vipPrefix(o)}`, `SERVER anycast_dev = ${o.dev}`];
  const { backends, healthPath, port, mgmtPort, sticky } = o;
  const options = { backends, healthPath, port, mgmtPort, sticky, vip: { ip: o.anycast }, ...(stickySecret === null ? {} : { stickySecret }) };
  return renderPerlbalConf(options, server, `Perlbal configuration of anycast node ${o.node}; tsbal run serves it and announces ${vipPrefix(o)} while it can.`);
}

/** tsbal listens on the VIP before it puts the address on the device (it announces only once it serves). */
export function renderAnycastSysctl(o: AnycastOptions): string {
  const v6 = o.anycast.includes(':');
  return `${HEADER('Lets tsbal listen on the anycast VIP before it holds it (read at boot by systemd-sysctl or procps).')}${v6 ? 'net.ipv6.ip_nonlocal_bind = 1' : 'net.ipv4.ip_nonlocal_bind = 1'}\n`;
}

/** The interface that holds the announced copy of the VIP: a `dummy` (`ifb` on a kernel without it: the same here). */
export function renderNetdev(o: AnycastOptions): string {
  return `${HEADER(`The interface tsbal puts the anycast VIP on; FRR announces the address while it is there.`)}[NetDev]
Name=${o.dev}
Kind=${o.devKind}
`;
}

/**
 * Up, and no addresses of networkd's own: tsbal adds and removes the VIP. KeepConfiguration keeps networkd from
 * dropping the VIP tsbal put there when networkd restarts or reconfigures the link.
 */
export function renderNetwork(o: AnycastOptions): string {
  return `${HEADER(`${o.dev}: up, no addresses of its own; tsbal adds the anycast VIP while it serves.`)}[Match]
Name=${o.dev}

[Link]
RequiredForOnline=no

[Network]
ConfigureWithoutCarrier=yes
LinkLocalAddressing=no
IPv6AcceptRA=no
KeepConfiguration=yes
`;
}
