// FRR's files for an anycast node, and the router side to hand to the network admin. Pure and deterministic: the
// same options render the same bytes, so a second `tsbal setup --anycast` finds nothing to change.
// The shapes are the ones measured in ../shared/reference/frr-ecmp.md (FRR 8.4): BFD 100 ms x 3, BGP timers 3/9,
// a prefix-list that permits exactly the VIP, and `redistribute connected` through a route-map on it.
import type { AnycastOptions } from './anycast-options.ts';

export const FRR_DIR = '/etc/frr';
export const FRR_CONF = `${FRR_DIR}/frr.conf`;
export const FRR_DAEMONS = `${FRR_DIR}/daemons`;

/** Names in frr.conf; `tsbal check` finds the prefix-list and route-map by what they do, not by these names. */
export const PREFIX_LIST = 'TSBAL-VIP';
export const ROUTE_MAP = 'TSBAL-VIP-ONLY';
export const BFD_PROFILE = 'tsbal';
/** BFD: a dead node is withdrawn in 3 x 100 ms (measured 330-394 ms); BGP's 3/9 s timers are the backstop. */
export const BFD_INTERVAL_MS = 100;
export const BFD_MULTIPLIER = 3;
export const BGP_TIMERS = { keepalive: 3, hold: 9 } as const;

const isV6 = (ip: string): boolean => ip.includes(':');

/** `ip` or `ipv6`: FRR's keyword for the VIP's family. */
export function familyKeyword(vip: string): 'ip' | 'ipv6' {
  return isV6(vip) ? 'ipv6' : 'ip';
}

export function vipPrefix(o: Pick<AnycastOptions, 'anycast'>): string {
  return `${o.anycast}/${isV6(o.anycast) ? 128 : 32}`;
}

export function renderFrrConf(o: AnycastOptions): string {
  const fam = familyKeyword(o.anycast);
  const af = isV6(o.anycast) ? 'ipv6' : 'ipv4';
  const neighbours = o.routers.flatMap((r) => [
    ` neighbor ${r} remote-as ${o.routerAsn}`,
    ` neighbor ${r} timers ${BGP_TIMERS.keepalive} ${BGP_TIMERS.hold}`,
    ` neighbor ${r} timers connect 1`,
    ` neighbor ${r} bfd`,
    ` neighbor ${r} bfd profile ${BFD_PROFILE}`,
  ]);
  // An IPv4 neighbour carries IPv4 unicast by default; any other family must be activated on it.
  const activate = af === 'ipv4' ? [] : o.routers.map((r) => `  neighbor ${r} activate`);
  const lines = [
    `! FRR of anycast node ${o.node}: announces ${vipPrefix(o)} to the router while tsbal holds it on ${o.dev}, and nothing else.`,
    '! Written by tsbal setup; edit freely: setup keeps a file that exists unless run with --force.',
    '! tsbal check compares the prefix-list and the neighbours with perlbal.conf (SERVER anycast_vip).',
    'frr defaults traditional',
    `hostname ${o.node}`,
    'log syslog informational',
    'service integrated-vtysh-config',
    '!',
    `${fam} prefix-list ${PREFIX_LIST} seq 5 permit ${vipPrefix(o)}`,
    '!',
    // The VIP only, and only its copy on the anycast device: a copy elsewhere (lo, kept to answer while draining) is
    // not announced, so removing it from the device withdraws the route.
    `route-map ${ROUTE_MAP} permit 10`,
    ` match ${fam} address prefix-list ${PREFIX_LIST}`,
    ` match interface ${o.dev}`,
    'exit',
    '!',
    'bfd',
    ` profile ${BFD_PROFILE}`,
    `  detect-multiplier ${BFD_MULTIPLIER}`,
    `  receive-interval ${BFD_INTERVAL_MS}`,
    `  transmit-interval ${BFD_INTERVAL_MS}`,
    ' exit',
    'exit',
    '!',
    `router bgp ${o.asn}`,
    // Fixed: by default FRR takes the highest address, which can be the VIP itself; a router-id that changes when
    // tsbal adds the VIP resets every session.
    ` bgp router-id ${o.routerId}`,
    // FRR 8 announces nothing over eBGP without an outbound policy; the route-map on redistribute is the policy here.
    ' no bgp ebgp-requires-policy',
    ...neighbours,
    ' !',
    ` address-family ${af} unicast`,
    `  redistribute connected route-map ${ROUTE_MAP}`,
    ...activate,
    ' exit-address-family',
    'exit',
    '!',
  ];
  return `${lines.join('\n')}\n`;
}

/** The daemons this node needs on (bgpd speaks BGP, bfdd detects a dead peer in 300 ms); zebra always runs. */
const WANTED_DAEMONS: ReadonlyArray<readonly [string, string]> = [
  ['bgpd', 'yes'],
  ['bfdd', 'yes'],
  ['vtysh_enable', 'yes'],
];

/** A daemons file of our own, for a host without one (FRR's package ships one: that one is edited instead). */
function minimalDaemons(): string {
  return [
    '# FRR daemons of a tsbal anycast node: bgpd announces the VIP, bfdd detects a dead router in 300 ms.',
    '# Written by tsbal setup; FRR reads it at start (systemctl restart frr).',
    ...WANTED_DAEMONS.map(([k, v]) => `${k}=${v}`),
    'zebra_options="  -A 127.0.0.1 -s 90000000"',
    'bgpd_options="   -A 127.0.0.1"',
    'bfdd_options="   -A 127.0.0.1"',
    'staticd_options="-A 127.0.0.1"',
    '',
  ].join('\n');
}

/**
 * The daemons file with bgpd and bfdd on. FRR's package ships this file with everything off, and it holds the
 * admin's other daemons: only our keys change (as setup edits only its block in rc.local), the rest stays.
 */
export function mergeFrrDaemons(existing: string | null): string {
  if (existing === null || existing.trim() === '') return minimalDaemons();
  let text = existing.endsWith('\n') ? existing : `${existing}\n`;
  for (const [key, value] of WANTED_DAEMONS) {
    const line = new RegExp(`^[ \\t]*${key}[ \\t]*=.*$`, 'm');
    text = line.test(text) ? text.replace(line, `${key}=${value}`) : `${text}${key}=${value}\n`;
  }
  return text;
}

/**
 * Whether frr.conf is the one FRR's package ships (comments, `log syslog`, and the lines vtysh adds to an empty
 * config): nothing of the admin's to keep, so setup writes its own without --force (and still keeps a copy).
 */
export function isStockFrrConf(text: string): boolean {
  const stock = /^(log syslog( \w+)?|frr (version|defaults) .*|hostname \S+|service integrated-vtysh-config|line vty|end|!.*)$/;
  return text.split('\n').map((l) => l.trim()).every((l) => l === '' || l.startsWith('#') || stock.test(l));
}

/**
 * What the network admin configures on the router (printed by setup, never written): this node as a BGP neighbour
 * with the same BFD and timers, several paths for ECMP, hashing on L4 ports, and resilient hashing where it exists.
 */
export function routerSideLines(o: AnycastOptions, nodeAddress: string): string[] {
  const af = isV6(o.anycast) ? 'ipv6' : 'ipv4';
  return [
    `On the router (ASN ${o.routerAsn}), for ${o.node} (${nodeAddress}, ASN ${o.asn}); FRR syntax, the same settings on any router:`,
    '  bfd',
    `   profile ${BFD_PROFILE}`,
    `    detect-multiplier ${BFD_MULTIPLIER}`,
    `    receive-interval ${BFD_INTERVAL_MS}`,
    `    transmit-interval ${BFD_INTERVAL_MS}`,
    `  router bgp ${o.routerAsn}`,
    '   no bgp ebgp-requires-policy',
    '   neighbor TSBAL peer-group',
    `   neighbor TSBAL remote-as ${o.asn}`,
    `   neighbor TSBAL timers ${BGP_TIMERS.keepalive} ${BGP_TIMERS.hold}`,
    '   neighbor TSBAL bfd',
    `   neighbor TSBAL bfd profile ${BFD_PROFILE}`,
    `   neighbor ${nodeAddress} peer-group TSBAL        (one such line per tsbal node)`,
    `   address-family ${af} unicast`,
    ...(af === 'ipv4' ? [] : ['    neighbor TSBAL activate']),
    '    maximum-paths 8                          (ECMP over up to 8 nodes; at least the number of nodes)',
    `  Accept only ${vipPrefix(o)} from this peer-group (a prefix-list inbound) if the router takes routes from others.`,
    '  L4 hashing, so one client\'s connections spread over the nodes and each flow stays on one:',
    `    sysctl -w net.${af}.fib_multipath_hash_policy=1   (Linux; on other routers: the ECMP hash on source/destination ports)`,
    '  Resilient hashing where the router has it (Linux: nexthop groups of type resilient; vendors: "resilient ECMP"):',
    '    adding a node then moves no existing connection (measured: 0 of 30 broken, against 7-11 of 30 with plain ECMP).',
  ];
}
