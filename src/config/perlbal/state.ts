// The executor's state: what the commands have built so far. The same state serves a config file
// and, later, the management port (which keeps one state for the life of the process).
import type { AccessRule, PerlbalConfig, PoolModel, ServiceModel } from '../model.ts';
import type { ConfigDiagnostic, SourceLocation } from '../errors.ts';
import type { ConfigFs } from './fs.ts';
import { emptyRecord, own } from '../records.ts';

/** Per-service bookkeeping the model does not carry. */
export interface ServiceMeta {
  /** Options set explicitly (key -> line), to warn when `SET role` resets them. */
  explicit: Map<string, SourceLocation>;
  /** A SET role failed: role-dependent errors that follow would only repeat it. */
  roleFailed: boolean;
  /** VHOST pattern -> its index in `vhosts`, so a repeated pattern replaces its rule without a scan. */
  vhostIndex: Map<string, number>;
  /** The last SET plugins had an error, so checks about missing plugins would only repeat it. */
  pluginsFailed: boolean;
  /** Options whose last SET failed, so "has no pool/docroot" would only repeat that error. */
  failedKeys: Set<string>;
}

export interface PerlbalState {
  /** Services and pools share one namespace in Perlbal; both maps are keyed by the lowercased name. */
  services: Map<string, ServiceModel>;
  pools: Map<string, PoolModel>;
  meta: Map<string, ServiceMeta>;
  server: Record<string, string | number>;
  /** Where each SERVER key was last set, for checks across lines (anycast_vip with no service on it). */
  serverLocs: Map<string, SourceLocation>;
  /** Loaded plugins, canonical case (`Vhosts`); the model lists them lowercased. */
  loadedPlugins: string[];
  /** `DEFAULT key = value`, raw, applied when a later `SET role` initialises a service. */
  defaults: Map<string, { value: string; loc: SourceLocation }>;
  access: PerlbalConfig['access'];
  redirects: PerlbalConfig['redirects'];
  /** Perlbal auto-creates `<svc>_pool` for obsolete service-level nodefile until any CREATE POOL. */
  vivifyPools: boolean;
  files: string[];
  /** Warnings from commands, located; errors are returned by each command instead. A long-lived (management) state should take and clear them. */
  warnings: ConfigDiagnostic[];
}

/** One reader of commands: a config file (and each INCLUDEd file) or a management connection. */
export interface CommandContext {
  /** Object named by the last CREATE or USE; SET/VHOST/... without a name apply to it. */
  lastCreated: string | null;
  /** The last CREATE/USE failed: context-relative lines are skipped, not blamed on the previous object. */
  contextLost: boolean;
  verbose: boolean;
  mode: 'config' | 'management';
}

/** What the commands may touch outside the state. */
export interface CommandEnv {
  env: Readonly<Record<string, string | undefined>>;
  fs: ConfigFs;
  /** Relative paths (INCLUDE, nodefile, docroot) resolve against this, as Perlbal's do against its cwd. */
  cwd: string;
  /** `${ip:eth0}`: the interface's first IPv4 address, or null. */
  interfaceAddress: (iface: string) => string | null;
  /** Files being read right now (INCLUDE cycle detection), outermost first. */
  includeStack: string[];
}

export function createPerlbalState(): PerlbalState {
  return {
    services: new Map(),
    pools: new Map(),
    meta: new Map(),
    server: emptyRecord(),
    serverLocs: new Map(),
    loadedPlugins: [],
    defaults: new Map(),
    access: emptyRecord(),
    redirects: emptyRecord(),
    vivifyPools: true,
    files: [],
    warnings: [],
  };
}

export function createCommandContext(mode: CommandContext['mode'] = 'config'): CommandContext {
  return { lastCreated: null, contextLost: false, verbose: mode === 'management', mode };
}

export function newService(name: string, loc: SourceLocation): ServiceModel {
  return {
    name,
    role: null,
    enabled: false,
    listen: null,
    pool: null,
    options: emptyRecord(),
    headers: [],
    plugins: [],
    vhosts: [],
    vpaths: [],
    extra: emptyRecord(),
    loc,
  };
}

export function newServiceMeta(): ServiceMeta {
  return { explicit: new Map(), roleFailed: false, vhostIndex: new Map(), pluginsFailed: false, failedKeys: new Set() };
}

export function newPool(name: string, loc: SourceLocation): PoolModel {
  return { name, nodes: [], balance_method: 'random', nodefile: null, options: emptyRecord(), loc };
}

export function accessFor(state: PerlbalState, service: string): { policy: 'allow' | 'deny'; rules: AccessRule[] } {
  let cfg = own(state.access, service);
  if (!cfg) {
    cfg = { policy: 'allow', rules: [] };
    state.access[service] = cfg;
  }
  return cfg;
}

export function metaFor(state: PerlbalState, service: string): ServiceMeta {
  let m = state.meta.get(service);
  if (!m) {
    m = newServiceMeta();
    state.meta.set(service, m);
  }
  return m;
}
