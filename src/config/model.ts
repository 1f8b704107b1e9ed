// The typed model that the config parsers produce and the engines run.
// Names of Perlbal options keep Perlbal's spelling (snake_case) so docs, config and code say the same thing.
import type { BalanceMethod } from '../proxy/upstream/select.ts';
import type { ConfigDiagnostic, SourceLocation } from './errors.ts';

// ---------------------------------------------------------------------------------------------
// perlbal.conf

export interface HostPort {
  /**
   * IPv4 literal (Perlbal accepts no names), '0.0.0.0' for a bare-port listen; or (listen only, a tsbal extension)
   * a canonical IPv6 literal without brackets.
   */
  host: string;
  port: number;
}

/** Perlbal's built-in roles, plus `echo`, the role the EchoService plugin adds (`LOAD EchoService`). */
export type Role = 'reverse_proxy' | 'web_server' | 'management' | 'selector' | 'upload_tracker' | 'echo';

/**
 * Perlbal's only method is random; roundrobin and leastconn are tsbal additions. The names come from the one
 * registry of policies (a pure file of the proxy: adding a method there makes it valid in config and console).
 */
export type { BalanceMethod };

/** A pool member: `ip:port`, and the `weight=N` of POOL ADD or a nodefile line (tsbal; absent means 1). */
export interface PoolNode extends HostPort {
  weight?: number;
}

export interface PoolModel {
  /** Lowercased, as Perlbal stores it. */
  name: string;
  nodes: PoolNode[];
  balance_method: BalanceMethod;
  /** Path given to `SET nodefile`, or null. Nodes read from it are already in `nodes`. */
  nodefile: string | null;
  /** Extension keys set on the pool (tsbal additions such as health checks), as typed values. */
  options: Record<string, OptionValue>;
  loc: SourceLocation;
}

export type OptionValue = string | number | boolean | string[] | number[] | null;

export interface HeaderRule {
  op: 'insert' | 'remove';
  /** As written after Perlbal's lowercasing rule (everything before the first `=` is lowercased). */
  name: string;
  value?: string;
  loc: SourceLocation;
}

export interface VhostRule {
  /** Lowercased pattern: `*.site.com`, `site.com`, `*`. */
  pattern: string;
  /**
   * Target service name, lowercased (tsbal names are case-insensitive); it may be created after the VHOST line.
   * A missing target is a warning at load time and falls through at run time, as in Perlbal.
   */
  service: string;
  loc: SourceLocation;
}

export interface VpathRule {
  /** The regex source as Perlbal sees it (lowercased up to the first `=`). */
  regex: string;
  service: string;
  loc: SourceLocation;
}

export interface ServiceModel {
  /** Lowercased. */
  name: string;
  role: Role | null;
  enabled: boolean;
  listen: HostPort | null;
  /** Name of the pool (reverse_proxy). */
  pool: string | null;
  /**
   * Every option valid for the role, with defaults filled in (see the option table in the parser).
   * Keys are Perlbal's names; values are typed: bool, int, times in ms, sizes in bytes, string, string[]
   * (lists), number[] (error_retry_schedule, ms); null for options without a default that were not set.
   * `src/config/perlbal/options.ts` is the table of keys, types and defaults.
   */
  options: Record<string, OptionValue>;
  /** `HEADER <svc> INSERT|REMOVE`, in the order given. */
  headers: HeaderRule[];
  /** `SET plugins`, lowercased, in registration order. */
  plugins: string[];
  /** The `SET plugins` line that registered them (absent when none did). */
  pluginsLoc?: SourceLocation;
  vhosts: VhostRule[];
  vpaths: VpathRule[];
  /** `SET extra.<k>` and `SET <plugin>.<k>` free-form keys. */
  extra: Record<string, string>;
  loc: SourceLocation;
  /** Where options were SET (only those set explicitly), so run-time errors about a file name its line. */
  optionLocs?: Record<string, SourceLocation>;
}

export interface AccessRule {
  action: 'allow' | 'deny' | 'queue_low';
  kind: 'ip' | 'netmask';
  value: string;
  loc: SourceLocation;
}

export interface PerlbalConfig {
  /** The top file that was loaded. */
  file: string;
  /** Where relative paths in options resolve (the working directory, as for Perlbal); absent: process.cwd(). */
  cwd?: string;
  /** Every file read, INCLUDEs too, in order. */
  files: string[];
  /** Services in creation order. */
  services: ServiceModel[];
  /** Pools in creation order. */
  pools: PoolModel[];
  /** `SERVER <key> = <value>`: pidfile, max_connections, ... */
  server: Record<string, string | number>;
  /** Plugins named by LOAD, lowercased. */
  loadedPlugins: string[];
  /** Per-service ACCESS rules and policy (AccessControl plugin). */
  access: Record<string, { policy: 'allow' | 'deny'; rules: AccessRule[] }>;
  /** REDIRECT HOST rules (Redirect plugin), per service. */
  redirects: Record<string, Array<{ from: string; to: string; loc: SourceLocation }>>;
  /** Warnings (things Perlbal would silently do); errors are thrown as ConfigError instead. */
  warnings: ConfigDiagnostic[];
}

// ---------------------------------------------------------------------------------------------
// /etc/ha.d/ha.cf

export type Medium =
  | { kind: 'bcast'; iface: string; loc: SourceLocation }
  | { kind: 'mcast'; iface: string; group: string; port: number; ttl: number; loop: boolean; loc: SourceLocation }
  | { kind: 'ucast'; iface: string; peer: string; loc: SourceLocation };

export type AutoFailback = 'on' | 'off' | 'legacy';

export interface HaConfig {
  file: string;
  /** All times in milliseconds, after heartbeat's defaults and derivations. */
  keepaliveMs: number;
  deadtimeMs: number;
  warntimeMs: number;
  initdeadMs: number;
  deadpingMs: number;
  udpPort: number;
  media: Medium[];
  /** Lowercased node names, in order. */
  nodes: string[];
  autoFailback: AutoFailback;
  /** `ping` pseudo-nodes (IPv4), and `ping_group NAME IP...`. */
  pingNodes: string[];
  pingGroups: Array<{ name: string; members: string[] }>;
  logfacility: string | null;
  logfile: string | null;
  debugfile: string | null;
  debug: number;
  msgfmt: 'classic' | 'netstring';
  hbgenmethod: 'file' | 'time';
  maxRexmitDelayMs: number;
  respawn: Array<{ user: string; command: string; loc: SourceLocation }>;
  /** Directives we parse and keep but do not act on (name -> raw values), for `tsbal check` to list. */
  ignored: Array<{ directive: string; value: string; loc: SourceLocation }>;
  warnings: ConfigDiagnostic[];
}

// ---------------------------------------------------------------------------------------------
// /etc/ha.d/authkeys

export type AuthMethod = 'sha1' | 'md5' | 'crc';

export interface AuthKey {
  index: number;
  method: AuthMethod;
  /** Empty for crc. */
  key: string;
}

export interface AuthKeys {
  file: string;
  /** The `auth N` index used for outbound packets. */
  activeIndex: number;
  keys: AuthKey[];
  /** Things heartbeat accepts but that deserve a look (a crc key, text after a key). */
  warnings?: ConfigDiagnostic[];
}

// ---------------------------------------------------------------------------------------------
// /etc/ha.d/haresources

export type Resource =
  | {
      kind: 'ip';
      /** `IPaddr` for a bare IP or `IPaddr::`, `IPaddr2` for `IPaddr2::`. */
      agent: 'IPaddr' | 'IPaddr2';
      ip: string;
      /** Prefix length if given. */
      cidr: number | null;
      iface: string | null;
      /** IPaddr2's `IFACE:LABEL`. */
      label: string | null;
      broadcast: string | null;
      /** The token as written, e.g. `IPaddr::198.18.0.99/24/eth0`. */
      raw: string;
    }
  | {
      kind: 'script';
      /** Script name, looked up in /etc/ha.d/resource.d then /etc/init.d. */
      name: string;
      args: string[];
      raw: string;
    };

export interface ResourceGroup {
  /** Home (preferred) node, lowercased. */
  node: string;
  /** The group key heartbeat uses on the wire: the first resource token as written. */
  key: string;
  resources: Resource[];
  loc: SourceLocation;
}

export interface HaResources {
  file: string;
  groups: ResourceGroup[];
  warnings?: ConfigDiagnostic[];
}

/** Everything under --ha-dir. */
export interface HaDirConfig {
  dir: string;
  hacf: HaConfig;
  authkeys: AuthKeys;
  haresources: HaResources;
  /** Every warning from the three files and the checks across them, in file order. */
  warnings?: ConfigDiagnostic[];
}
