// `tsbal setup` flags, checked and turned into one typed record. Pure: no file system, no clock.
import { isIpv4 } from '../config/ipv4.ts';
import { parseHaTime } from '../config/hacf.ts';
import { keyFromFileText, type AuthMethodChoice } from './keyfile.ts';

export type InitSystem = 'systemd' | 'rc.local' | 'none';
export type { AuthMethodChoice };

export type ForceChoice = { kind: 'all' } | { kind: 'files'; names: ReadonlySet<string> };

/**
 * The files `--force NAME` can name: each file setup writes, by its base name (rc.local is not among them: setup
 * only ever edits its own block there).
 */
export const FORCEABLE: readonly string[] = ['60-tsbal.conf', 'ha.cf', 'authkeys', 'haresources', 'nodeinfo', 'perlbal.conf', 'tsbal.service'];

/** Whether --force covers the file at `path`. */
export function forces(force: ForceChoice, path: string): boolean {
  return force.kind === 'all' || force.names.has(path.slice(path.lastIndexOf('/') + 1));
}

export interface SetupOptions {
  /** This node's heartbeat name (lowercase, as heartbeat compares them). */
  node: string;
  peer: string;
  /** The home node of the VIP group in haresources: the same on both nodes. */
  primary: string;
  vip: { ip: string; cidr: number };
  iface: string;
  /** Heartbeat over `ucast IFACE PEER-IP` instead of `bcast IFACE`. */
  peerIp: string | null;
  /** `ip:port` of each backend, in the order given. */
  backends: string[];
  port: number;
  mgmtPort: number;
  /** Session affinity of the balancer service (`SET sticky`): cookie by default, the recipe's "session-aware". */
  sticky: 'cookie' | 'source' | 'off';
  /** The path the pool's health checks ask for (`SET health_check_path`). */
  healthPath: string;
  /** heartbeat time syntax as given (`2`, `500ms`), already checked. */
  keepalive: string;
  deadtime: string;
  /** null: from the existing authkeys if there is one, else sha1. */
  authMethod: AuthMethodChoice | null;
  /** null: from the existing authkeys if there is one, else a random key. */
  authKey: string | null;
  ping: string[];
  autoFailback: boolean;
  /** Where the files go: `/` on a live system, a staging directory with --root. */
  root: string;
  init: InitSystem;
  /** The files --force replaces (by their base name, e.g. `authkeys`), or all of them for a bare --force. */
  force: ForceChoice;
  dryRun: boolean;
  /** Set the live sysctl and enable the init hook. */
  apply: boolean;
}

/** The flags as citty hands them over (strings, booleans, or arrays when a flag is repeated). */
export interface RawSetupArgs {
  node?: string;
  peer?: string;
  primary?: string;
  vip?: string;
  iface?: string;
  'peer-ip'?: string;
  backend?: string | string[];
  port?: string;
  'mgmt-port'?: string;
  sticky?: string;
  'health-path'?: string;
  keepalive?: string;
  deadtime?: string;
  auth?: string;
  'auth-key'?: string;
  'auth-key-file'?: string;
  ping?: string | string[];
  'auto-failback'?: string;
  root?: string;
  init?: string;
  /** One entry per --force: '' for a bare --force (every file), else the names given (commas allowed). */
  force?: string[];
  'dry-run'?: boolean;
  apply?: boolean;
}

export interface SetupDefaults {
  /** systemd when it runs this machine (/run/systemd/system exists), else rc.local. */
  liveInit: InitSystem;
  /** Reads `--auth-key-file` (`-` is standard input); throws an errno error when it cannot. */
  readKeyFile?: (path: string) => string;
}

export type OptionsResult = { ok: true; value: SetupOptions } | { ok: false; errors: string[] };

const NODE_NAME = /^[a-z0-9][a-z0-9._-]*$/;
const IFACE_NAME = /^[A-Za-z0-9_.@-]{1,15}$/;
/** heartbeat reads a key as one whitespace-free token; `#` would start a comment at the start of a line only. */
const AUTH_KEY = /^[!-~]+$/;

/** A flag given several times, or once with commas: `--backend a --backend b` or `--backend a,b`. */
function list(value: string | string[] | undefined): string[] {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

function port(value: string | undefined, fallback: number, flag: string, errors: string[]): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    errors.push(`--${flag} ${value}: not a TCP port (1 to 65535)`);
    return fallback;
  }
  return Number(value);
}

function nodeName(value: string | undefined, flag: string, errors: string[], example: string): string {
  if (value === undefined || value.trim() === '') {
    errors.push(`--${flag} is required (e.g. --${flag} ${example})`);
    return '';
  }
  const name = value.trim().toLowerCase();
  if (!NODE_NAME.test(name)) errors.push(`--${flag} ${value}: not a node name (letters, digits, '.', '_' and '-'; the uname -n name)`);
  return name;
}

function parseVip(value: string | undefined, errors: string[]): { ip: string; cidr: number } {
  if (value === undefined) {
    errors.push('--vip is required: the virtual IP clients connect to, with its prefix (e.g. --vip 192.0.2.10/24)');
    return { ip: '', cidr: 24 };
  }
  const [ip = '', bits, ...extra] = value.split('/');
  if (!isIpv4(ip) || extra.length > 0) errors.push(`--vip ${value}: not an IPv4 address with an optional /prefix`);
  if (bits === undefined) return { ip, cidr: 24 };
  if (!/^\d+$/.test(bits) || Number(bits) > 32) {
    errors.push(`--vip ${value}: '${bits}' is not a prefix length (0 to 32)${isIpv4(bits) ? '; write the netmask as /24' : ''}`);
    return { ip, cidr: 24 };
  }
  return { ip, cidr: Number(bits) };
}

function parseBackend(value: string, errors: string[]): string {
  const m = /^([^:]+)(?::(\d+))?$/.exec(value);
  const host = m?.[1] ?? '';
  const p = m?.[2] === undefined ? 80 : Number(m[2]);
  if (!m || !isIpv4(host)) errors.push(`--backend ${value}: not IP[:PORT] (Perlbal pools hold IPv4 addresses, e.g. 10.0.0.11:80)`);
  else if (p < 1 || p > 65535) errors.push(`--backend ${value}: port ${p} is not 1 to 65535`);
  return `${host}:${p}`;
}

function haTime(value: string | undefined, fallback: string, flag: string, errors: string[]): string {
  const v = value ?? fallback;
  if (parseHaTime(v) === null) errors.push(`--${flag} ${v}: not a heartbeat time (seconds, or e.g. 500ms)`);
  return v;
}

/** An origin-form path (what a health check asks for): `/`, `/health`, `/status?full`. */
function healthPath(value: string | undefined, errors: string[]): string {
  if (value === undefined) return '/';
  if (!/^\/[!-~]*$/.test(value)) errors.push(`--health-path ${value}: expected a path starting with / (no spaces), e.g. /health`);
  return value;
}

function choice<T extends string>(value: string | undefined, allowed: readonly T[], flag: string, errors: string[]): T | null {
  if (value === undefined) return null;
  const found = allowed.find((a) => a === value.toLowerCase());
  if (found === undefined) errors.push(`--${flag} ${value}: expected ${allowed.join(', ')}`);
  return found ?? null;
}

/**
 * Every value of a flag that may be repeated (`--backend a --backend b`), from the raw argv: citty keeps only the
 * last one.
 */
export function repeatedFlag(rawArgs: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === '--') break;
    if (arg === `--${name}` && i + 1 < rawArgs.length) out.push(rawArgs[++i]!);
    else if (arg.startsWith(`--${name}=`)) out.push(arg.slice(name.length + 3));
  }
  return out;
}

function readKeyFileFlag(path: string, defaults: SetupDefaults): ReturnType<typeof keyFromFileText> {
  if (defaults.readKeyFile === undefined) return { ok: false, error: `--auth-key-file ${path}: cannot be read here` };
  let text: string;
  try {
    text = defaults.readKeyFile(path);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return { ok: false, error: `--auth-key-file ${path}: cannot read: ${e.code ?? e.message}` };
  }
  return keyFromFileText(text, path);
}

/**
 * Every --force from the raw argv: `--force` alone (''), `--force NAME[,NAME]`, `--force=NAME`. A word after --force
 * is its value: setup takes no positional arguments.
 */
export function forceFlags(rawArgs: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === '--') break;
    if (arg.startsWith('--force=')) out.push(arg.slice('--force='.length));
    else if (arg === '--force') {
      const next = rawArgs[i + 1];
      if (next !== undefined && !next.startsWith('-')) out.push(rawArgs[++i]!);
      else out.push('');
    }
  }
  return out;
}

function parseForce(values: readonly string[] | undefined, errors: string[]): ForceChoice {
  const given = values ?? [];
  if (given.includes('')) return { kind: 'all' };
  const names = new Set<string>();
  for (const value of given.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '')) {
    const name = value.slice(value.lastIndexOf('/') + 1);
    if (FORCEABLE.includes(name)) names.add(name);
    else errors.push(`--force ${value}: not a file setup writes (one of ${FORCEABLE.join(', ')}; --force alone means all of them)`);
  }
  return { kind: 'files', names };
}

/** Checks every flag and reports every problem at once, so one run of `tsbal setup` shows all there is to fix. */
export function parseSetupArgs(raw: RawSetupArgs, defaults: SetupDefaults): OptionsResult {
  const errors: string[] = [];
  const node = nodeName(raw.node, 'node', errors, 'lb1');
  const peer = nodeName(raw.peer, 'peer', errors, 'lb2');
  if (node !== '' && node === peer) errors.push(`--peer ${peer}: the peer must be the other node, not this one`);
  // Both nodes must write the same haresources, so the default home node cannot depend on which node runs setup.
  const primary = raw.primary === undefined ? [node, peer].sort()[0]! : nodeName(raw.primary, 'primary', errors, 'lb1');
  if (raw.primary !== undefined && primary !== node && primary !== peer) {
    errors.push(`--primary ${primary}: must be --node (${node}) or --peer (${peer})`);
  }
  const vip = parseVip(raw.vip, errors);
  const iface = raw.iface ?? '';
  if (raw.iface === undefined) errors.push('--iface is required: the interface that carries the VIP and the heartbeats (e.g. --iface eth0)');
  else if (!IFACE_NAME.test(iface)) errors.push(`--iface ${iface}: not an interface name`);
  const peerIp = raw['peer-ip'] ?? null;
  if (peerIp !== null && !isIpv4(peerIp)) errors.push(`--peer-ip ${peerIp}: not an IPv4 address`);
  const backends = list(raw.backend).map((b) => parseBackend(b, errors));
  if (backends.length === 0) errors.push('--backend is required: each backend as IP[:PORT], repeated or comma-separated');
  const ping = list(raw.ping);
  for (const p of ping) if (!isIpv4(p)) errors.push(`--ping ${p}: not an IPv4 address (a ping node is usually the gateway)`);
  const keepalive = haTime(raw.keepalive, '2', 'keepalive', errors);
  const deadtime = haTime(raw.deadtime, '10', 'deadtime', errors);
  let authMethod = choice(raw.auth, ['sha1', 'md5'] as const, 'auth', errors);
  if (raw.auth?.toLowerCase() === 'crc') errors.push('--auth crc authenticates nothing (anyone on the network can forge heartbeats); use sha1');
  let authKey = raw['auth-key'] ?? null;
  const keyFile = raw['auth-key-file'];
  if (keyFile !== undefined && authKey !== null) errors.push('--auth-key and --auth-key-file: give the key one way, not both');
  else if (keyFile !== undefined) {
    const fromFile = readKeyFileFlag(keyFile, defaults);
    if (!fromFile.ok) errors.push(fromFile.error);
    else {
      authKey = fromFile.key;
      if (fromFile.method !== null && authMethod !== null && fromFile.method !== authMethod) {
        errors.push(`--auth ${authMethod}: --auth-key-file ${keyFile} is an authkeys file with a ${fromFile.method} key`);
      }
      authMethod ??= fromFile.method;
    }
  }
  if (authKey !== null && !AUTH_KEY.test(authKey)) {
    errors.push(`${keyFile === undefined ? '--auth-key' : `--auth-key-file ${keyFile}`}: must be one token of printable characters without spaces (heartbeat reads one word)`);
  }
  const failback = choice(raw['auto-failback'], ['on', 'off'] as const, 'auto-failback', errors);
  const init = raw.init === undefined ? null : choice(raw.init, ['systemd', 'rc.local', 'none'] as const, 'init', errors);
  const root = raw.root ?? '/';
  const staged = raw.root !== undefined;
  const out: SetupOptions = {
    node,
    peer,
    primary,
    vip,
    iface,
    peerIp,
    backends,
    port: port(raw.port, 80, 'port', errors),
    mgmtPort: port(raw['mgmt-port'], 60000, 'mgmt-port', errors),
    sticky: choice(raw.sticky, ['cookie', 'source', 'off'] as const, 'sticky', errors) ?? 'cookie',
    healthPath: healthPath(raw['health-path'], errors),
    keepalive,
    deadtime,
    authMethod,
    authKey,
    ping,
    autoFailback: failback !== 'off',
    root,
    // A staged tree is for a package or an image: the unit is what such a tree usually ships.
    init: init ?? (staged ? 'systemd' : defaults.liveInit),
    force: parseForce(raw.force, errors),
    dryRun: raw['dry-run'] === true,
    apply: raw.apply ?? !staged,
  };
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: out };
}
