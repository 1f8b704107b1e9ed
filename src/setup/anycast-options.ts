// `tsbal setup --anycast VIP` flags, checked and turned into one typed record. Pure: the caller passes this host's
// addresses (to find the BGP router-id) and how the system is run.
import { isIPv6 } from 'node:net';
import { inSubnet, isIpv4 } from '../config/ipv4.ts';
import { parseSetupArgs, type ForceChoice, type InitSystem } from './options.ts';

/**
 * The files `--force NAME` can name in anycast mode (the netdev and network files are named after --anycast-dev;
 * FRR's daemons file is edited in place, like rc.local, so it needs no --force).
 */
export const ANYCAST_FORCEABLE: readonly string[] = ['60-tsbal.conf', 'perlbal.conf', 'frr.conf', 'tsbal.service', 'tsbal-vip0.netdev', 'tsbal-vip0.network'];

export type DeviceKind = 'dummy' | 'ifb';

export interface AnycastOptions {
  node: string;
  /** The VIP without its prefix: IPv4 (announced as /32) or IPv6 (/128). */
  anycast: string;
  /** The interface that holds the announced copy of the VIP, and its kind (`dummy`; `ifb` where the kernel has none). */
  dev: string;
  devKind: DeviceKind;
  /** The BGP neighbours (the upstream routers), each with the same ASN. */
  routers: string[];
  routerAsn: number;
  asn: number;
  /** BGP router-id: fixed, so adding the VIP never changes it (which would reset the sessions). */
  routerId: string;
  backends: string[];
  port: number;
  mgmtPort: number;
  sticky: 'cookie' | 'source' | 'off';
  healthPath: string;
  /** From --sticky-secret-file; null: the one in the existing perlbal.conf, else a new random one. */
  stickySecret: string | null;
  root: string;
  init: Exclude<InitSystem, 'rc.local'>;
  force: ForceChoice;
  dryRun: boolean;
  apply: boolean;
}

export interface RawAnycastArgs {
  node?: string;
  anycast?: string;
  'anycast-dev'?: string;
  'anycast-dev-kind'?: string;
  router?: string | string[];
  'router-asn'?: string;
  asn?: string;
  'router-id'?: string;
  backend?: string | string[];
  port?: string;
  'mgmt-port'?: string;
  sticky?: string;
  'health-path'?: string;
  'sticky-secret-file'?: string;
  root?: string;
  init?: string;
  force?: string[];
  'dry-run'?: boolean;
  apply?: boolean;
}

/** The heartbeat flags: anycast mode has no peer and no heartbeat (issue 16: the two modes are not combined). */
export const HEARTBEAT_ONLY_FLAGS = ['peer', 'primary', 'vip', 'iface', 'peer-ip', 'keepalive', 'deadtime', 'ping', 'auto-failback', 'auth', 'auth-key', 'auth-key-file'] as const;

/** An address of this host, as os.networkInterfaces() gives it. */
export interface HostAddress {
  address: string;
  cidr: string | null;
  family: string | number;
}

export type AnycastOptionsResult = { ok: true; value: AnycastOptions } | { ok: false; errors: string[] };

const IFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

const list = (value: string | string[] | undefined): string[] =>
  (value === undefined ? [] : Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');

function parseAnycast(value: string | undefined, errors: string[]): string {
  if (value === undefined || value === '') {
    errors.push('--anycast is required: the VIP every node announces (e.g. --anycast 198.18.2.1)');
    return '';
  }
  const [ip = '', bits, ...extra] = value.split('/');
  const v6 = isIPv6(ip);
  if ((!isIpv4(ip) && !v6) || extra.length > 0) {
    errors.push(`--anycast ${value}: not an IPv4 or IPv6 address`);
    return ip;
  }
  const host = v6 ? '128' : '32';
  if (bits !== undefined && bits !== host) errors.push(`--anycast ${value}: an anycast VIP is one address, announced as /${host} (write ${ip} or ${ip}/${host})`);
  return ip;
}

function asnOf(value: string | undefined, flag: string, errors: string[], example: string): number {
  if (value === undefined) {
    errors.push(`--${flag} is required (e.g. --${flag} ${example})`);
    return 0;
  }
  const n = /^\d{1,10}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 4_294_967_295)) errors.push(`--${flag} ${value}: not an AS number (1 to 4294967295; private: 64512-65534, 4200000000-4294967294)`);
  return Number.isNaN(n) ? 0 : n;
}

/**
 * This host's IPv4 address on the first router's subnet: the address the router peers with, and a stable router-id
 * (never the VIP, which comes and goes).
 */
export function findRouterId(router: string, vip: string, addresses: readonly HostAddress[]): string | null {
  if (!isIpv4(router)) return null;
  for (const a of addresses) {
    if (!(a.family === 'IPv4' || a.family === 4) || a.address === vip || a.cidr === null) continue;
    const bits = Number(a.cidr.split('/')[1]);
    if (bits < 32 && inSubnet(router, a.address, bits)) return a.address;
  }
  return null;
}

/** Checks every flag and reports every problem at once. */
/** The secret in a `--sticky-secret-file`: one word on one line (blank lines and `#` comments skipped). */
export function secretFromFileText(text: string, path: string): { ok: true; secret: string } | { ok: false; error: string } {
  const words = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (words.length !== 1 || !/^[!-~]+$/.test(words[0]!)) return { ok: false, error: `--sticky-secret-file ${path}: expected the secret, one word of printable characters on one line` };
  return { ok: true, secret: words[0]! };
}

export function parseAnycastArgs(
  raw: RawAnycastArgs & Record<string, unknown>,
  host: { addresses: readonly HostAddress[]; liveInit: InitSystem; readSecretFile?: (path: string) => string },
): AnycastOptionsResult {
  const errors: string[] = [];
  let stickySecret: string | null = null;
  const secretFile = raw['sticky-secret-file'];
  if (secretFile !== undefined) {
    try {
      if (host.readSecretFile === undefined) throw new Error('cannot be read here');
      const r = secretFromFileText(host.readSecretFile(secretFile), secretFile);
      if (r.ok) stickySecret = r.secret;
      else errors.push(r.error);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      errors.push(`--sticky-secret-file ${secretFile}: cannot read: ${e.code ?? e.message}`);
    }
  }
  for (const flag of HEARTBEAT_ONLY_FLAGS) {
    if (raw[flag] !== undefined) errors.push(`--${flag}: not used with --anycast (an anycast node has no heartbeat peer; the router spreads clients over the nodes)`);
  }
  // The flags both modes share are checked as the heartbeat mode checks them, on a stand-in cluster.
  const shared = parseSetupArgs(
    { node: raw.node, peer: 'anycast-peer', vip: '192.0.2.1/32', iface: 'lo', backend: raw.backend, port: raw.port, 'mgmt-port': raw['mgmt-port'], sticky: raw.sticky, 'health-path': raw['health-path'] },
    { liveInit: 'systemd' },
  );
  if (!shared.ok) errors.push(...shared.errors);
  const anycast = parseAnycast(raw.anycast, errors);
  const dev = raw['anycast-dev'] ?? 'vip0';
  if (!IFACE_NAME.test(dev)) errors.push(`--anycast-dev ${dev}: not an interface name`);
  const kind = raw['anycast-dev-kind'] ?? 'dummy';
  if (kind !== 'dummy' && kind !== 'ifb') errors.push(`--anycast-dev-kind ${kind}: expected dummy (the usual) or ifb (a kernel without dummy)`);
  const routers = list(raw.router);
  if (routers.length === 0) errors.push('--router is required: the BGP neighbour (the upstream router) each node peers with (e.g. --router 198.18.0.1); repeat for two routers');
  for (const r of routers) if (!isIpv4(r) && !isIPv6(r)) errors.push(`--router ${r}: not an IP address`);
  const routerAsn = asnOf(raw['router-asn'], 'router-asn', errors, '65000');
  const asn = asnOf(raw.asn, 'asn', errors, '65001');
  // iBGP would need the router's `maximum-paths ibgp` and other settings than the eBGP router side setup prints.
  if (asn !== 0 && asn === routerAsn) errors.push(`--asn ${asn}: the router's own AS (--router-asn); the nodes peer over eBGP, so give them another one (e.g. --asn ${asn === 65001 ? 65002 : 65001}, the same on every node)`);
  let routerId = raw['router-id'] ?? null;
  if (routerId !== null && !isIpv4(routerId)) errors.push(`--router-id ${routerId}: not an IPv4 address (BGP's router-id is one, even for IPv6)`);
  if (routerId === null && routers.length > 0 && anycast !== '') {
    routerId = findRouterId(routers[0]!, anycast, host.addresses);
    if (routerId === null) {
      errors.push(`--router-id is required: this host has no IPv4 address on ${routers[0]}'s subnet to use (give this node's own address, e.g. --router-id 198.18.0.11)`);
    }
  }
  if (routerId !== null && routerId === anycast) errors.push(`--router-id ${routerId}: not the VIP (it comes and goes; the router-id must not)`);
  const init = raw.init ?? null;
  if (init === 'rc.local') errors.push('--init rc.local: anycast mode needs systemd, whose ExecStopPost takes the VIP away when tsbal dies (use --init systemd, or none to write no unit)');
  else if (init !== null && init !== 'systemd' && init !== 'none') errors.push(`--init ${init}: expected systemd or none`);
  const force = raw.force ?? [];
  const names = new Set<string>();
  let all = false;
  for (const f of force) {
    if (f === '') all = true;
    for (const name of f.split(',').map((n) => n.trim()).filter((n) => n !== '')) {
      const base = name.slice(name.lastIndexOf('/') + 1);
      if (ANYCAST_FORCEABLE.includes(base) || /^tsbal-[^/]+\.(netdev|network)$/.test(base)) names.add(base);
      else errors.push(`--force ${name}: not a file anycast setup writes (one of ${ANYCAST_FORCEABLE.join(', ')}; --force alone means all of them)`);
    }
  }
  const staged = raw.root !== undefined;
  if (errors.length > 0 || !shared.ok) return { ok: false, errors };
  const s = shared.value;
  return {
    ok: true,
    value: {
      node: s.node,
      anycast,
      dev,
      devKind: kind as DeviceKind,
      routers,
      routerAsn,
      asn,
      routerId: routerId!,
      backends: s.backends,
      port: s.port,
      mgmtPort: s.mgmtPort,
      sticky: s.sticky,
      healthPath: s.healthPath,
      stickySecret,
      root: raw.root ?? '/',
      init: (init as 'systemd' | 'none' | null) ?? (staged || host.liveInit === 'systemd' ? 'systemd' : 'none'),
      force: all ? { kind: 'all' } : { kind: 'files', names },
      dryRun: raw['dry-run'] === true,
      apply: raw.apply ?? !staged,
    },
  };
}
