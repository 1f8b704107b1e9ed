// The one place where the config model (Perlbal's option names; times in ms, sizes in bytes) becomes the proxy
// engine's typed options. Defaults here repeat the option table's, so a model built in code may leave keys out.
import type { BalanceMethod, HostPort, OptionValue, PoolModel, PoolNode, ServiceModel } from '../config/model.ts';
import type { HeaderRules } from './http/forward.ts';
import { parseNetmask, type Netmask } from './trust.ts';
import type { StickyMode } from './upstream/affinity.ts';
import type { UploadPolicy } from './spool.ts';

export interface ReverseProxyOptions {
  name: string;
  /** null: a selector target that only takes requests handed over by a selector. */
  listen: HostPort | null;
  pool: string;
  nodes: PoolNode[];
  balanceMethod: BalanceMethod;
  /** Pool's max_conns: requests in flight per backend (0: no limit); beyond it requests queue. */
  maxConns: number;
  /** Pool's queue_timeout: how long a request may wait for a backend slot before it gets 503. */
  queueTimeoutMs: number;

  // Perlbal's options
  persistClient: boolean;
  persistClientIdleTimeoutMs: number;
  idleTimeoutMs: number;
  persistBackend: boolean;
  verifyBackend: boolean;
  verifyBackendPath: string;
  backendPersistCache: number;
  /** 0 = unlimited; otherwise a backend connection serves exactly this many requests. */
  maxBackendUses: number;
  connectAhead: number;
  alwaysTrusted: boolean;
  trustedUpstreamProxies: Netmask[];
  blindProxy: boolean;
  serverTokens: boolean;
  clientSndbufSize: number;
  headerRules: HeaderRules | null;
  /** buffer_backend_connect, buffer_uploads and its path and thresholds (spool.ts). */
  upload: UploadPolicy;
  /** Honour X-Reproxy-File / X-Reproxy-URL answers (src/proxy/reproxy/). */
  enableReproxy: boolean;
  /** Entries of the reproxy-URL cache (X-Reproxy-Cache-For); 0: no cache. */
  reproxyCacheMaxSize: number;
  /** high_priority_cookie (name) and high_priority_cookie_contents (default ''); null when no cookie is named. */
  highPriorityCookie: { name: string; contents: string } | null;

  // tsbal extensions
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  backendIdleTimeoutMs: number;
  maxRetries: number;
  downBackoffMs: number;
  downBackoffMaxMs: number;
  /** A file path, 'stdout', or null (off). */
  accessLog: string | null;
  headerTimeoutMs: number;
  maxHeaderSize: number;
  maxHeaderCount: number;
  maxUrlLength: number;
  /** 0 = unlimited. */
  maxBodySize: number;
  /** Session affinity (`sticky`, `sticky_learn_cookie`); null when off. */
  sticky: StickySettings | null;
}

/** What `sticky*` options ask for; the key is resolved when the service is compiled (compile.ts). */
export interface StickySettings {
  mode: StickyMode;
  /** cookie: tsbal's cookie (sticky_cookie, TSBALID); prefix: the application's (sticky_learn_cookie); source: ''. */
  cookie: string;
  /** sticky_secret, or null: the cluster's key (authkeys, else generated into the state dir). */
  secret: string | null;
}

/**
 * The `sticky*` options of a service: `sticky_learn_cookie` means prefix mode (with `sticky = cookie` or unset);
 * with `sticky = source` it is a contradiction, refused by stickyConflict (roles.ts) for check and run alike.
 */
export function stickySettings(o: Options): StickySettings | null {
  const learn = typeof o.sticky_learn_cookie === 'string' && o.sticky_learn_cookie !== '' ? o.sticky_learn_cookie : null;
  const mode = typeof o.sticky === 'string' ? o.sticky : 'off';
  const secret = typeof o.sticky_secret === 'string' && o.sticky_secret !== '' ? o.sticky_secret : null;
  if (mode === 'source') return { mode: 'source', cookie: '', secret };
  if (learn !== null) return { mode: 'prefix', cookie: learn, secret };
  if (mode === 'cookie') return { mode: 'cookie', cookie: typeof o.sticky_cookie === 'string' ? o.sticky_cookie : 'TSBALID', secret };
  return null;
}

/** `sticky = source` with `sticky_learn_cookie`: which one is meant cannot be guessed. */
export function stickyConflict(o: Options): string | null {
  const learn = typeof o.sticky_learn_cookie === 'string' && o.sticky_learn_cookie !== '';
  return learn && o.sticky === 'source'
    ? 'sticky_learn_cookie (prefix mode) needs sticky = cookie, but sticky = source: keep one of the two'
    : null;
}

export const DEFAULTS = {
  persist_client: false,
  persist_client_idle_timeout: 30_000,
  idle_timeout: 30_000,
  persist_backend: false,
  verify_backend: false,
  verify_backend_path: '*',
  backend_persist_cache: 2,
  max_backend_uses: 0,
  connect_ahead: 0,
  always_trusted: false,
  blind_proxy: false,
  server_tokens: true,
  client_sndbuf_size: 0,
  connect_timeout: 3_000,
  response_timeout: 30_000,
  backend_idle_timeout: 30_000,
  max_retries: 2,
  down_backoff: 1_000,
  down_backoff_max: 30_000,
  access_log: 'off',
  header_timeout: 10_000,
  max_header_size: 65_536,
  max_header_count: 100,
  max_url_length: 8_192,
  max_body_size: 0,
  max_conns: 0,
  enable_reproxy: false,
  reproxy_cache_maxsize: 0,
  queue_timeout: 10_000,
  buffer_backend_connect: 102_400,
  buffer_uploads: false,
  buffer_uploads_path: '',
  buffer_upload_threshold_size: 256_000,
  buffer_upload_threshold_rate: 0,
  buffer_upload_threshold_time: 5_000,
} as const;

type Options = Record<string, OptionValue>;

function bool(o: Options, key: keyof typeof DEFAULTS): boolean {
  const v = o[key];
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return /^(1|on|true|yes)$/i.test(v);
  if (typeof v === 'number') return v !== 0;
  return DEFAULTS[key] as boolean;
}

function num(o: Options, key: keyof typeof DEFAULTS): number {
  const v = o[key];
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : (DEFAULTS[key] as number);
}

function str(o: Options, key: keyof typeof DEFAULTS): string {
  const v = o[key];
  return typeof v === 'string' ? v : (DEFAULTS[key] as string);
}

function list(v: OptionValue | undefined): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === 'string') return v.split(/[\s,]+/).filter((s) => s.length > 0);
  return [];
}

export function compileHeaderRules(service: ServiceModel): HeaderRules | null {
  const reproxy = service.role === 'reverse_proxy' && bool(service.options, 'enable_reproxy');
  if (service.headers.length === 0 && !reproxy) return null;
  const rules: HeaderRules = { remove: new Set(), insert: [] };
  // Perlbal tells backends they may answer with X-Reproxy-File (set, so a client cannot claim it).
  if (reproxy) rules.insert.push({ name: 'X-Proxy-Capabilities', lower: 'x-proxy-capabilities', value: 'reproxy-file' });
  for (const h of service.headers) {
    if (h.op === 'remove') rules.remove.add(h.name.toLowerCase());
    else rules.insert.push({ name: h.name, lower: h.name.toLowerCase(), value: h.value ?? '' });
  }
  return rules;
}

/** Perlbal options that parse but do nothing yet: set to anything but their default, they earn a warning. */
export function unimplementedOptions(service: ServiceModel): string[] {
  const o = service.options;
  const set = (k: string): boolean => {
    const v = o[k];
    return v !== undefined && v !== null && v !== false && v !== 0 && v !== '' && !(Array.isArray(v) && v.length === 0);
  };
  return [
    'enable_error_retries',
    'queue_relief_size',
    'upload_status_listeners',
    'server_process',
    'client_sndbuf_size',
  ].filter(set);
}

/** What deserves a warning when a service (re)starts with these options. */
export function serviceWarnings(service: ServiceModel, o: ReverseProxyOptions): string[] {
  const out: string[] = [];
  const ignored = unimplementedOptions(service);
  if (ignored.length > 0) out.push(`service ${o.name}: not implemented yet, ignored: ${ignored.join(', ')}`);
  if (o.nodes.length === 0 && service.role === 'reverse_proxy') out.push(`service ${o.name}: pool '${o.pool}' has no nodes; every request gets 503`);
  return out;
}

/**
 * Throws with the service's location if the model cannot run (unknown pool). Also used for selectors, which read the
 * client-side options (listen, persist_client, timeouts, limits, trust, HEADER rules); the backend ones keep defaults.
 */
export function reverseProxyOptions(service: ServiceModel, pools: readonly PoolModel[]): ReverseProxyOptions {
  const where = `${service.loc.file}:${service.loc.line}`;
  const pool = pools.find((p) => p.name === service.pool);
  if (service.pool !== null && pool === undefined) {
    throw new Error(`${where}: service '${service.name}' uses pool '${service.pool}', which does not exist`);
  }
  const o = service.options;
  const masks: Netmask[] = [];
  for (const spec of list(o.trusted_upstream_proxies)) {
    const m = parseNetmask(spec);
    if (m === null) throw new Error(`${where}: bad trusted_upstream_proxies entry '${spec}'`);
    masks.push(m);
  }
  const accessLog = str(o, 'access_log');
  const sticky = stickySettings(o);
  return {
    name: service.name,
    listen: service.listen,
    pool: pool?.name ?? '',
    nodes: pool?.nodes ?? [],
    // sticky = source is the source hash policy, whatever the pool's balance_method.
    balanceMethod: sticky?.mode === 'source' ? 'source' : (pool?.balance_method ?? 'random'),
    maxConns: Math.floor(num(pool?.options ?? {}, 'max_conns')),
    queueTimeoutMs: num(pool?.options ?? {}, 'queue_timeout'),
    persistClient: bool(o, 'persist_client'),
    persistClientIdleTimeoutMs: num(o, 'persist_client_idle_timeout'),
    idleTimeoutMs: num(o, 'idle_timeout'),
    persistBackend: bool(o, 'persist_backend'),
    verifyBackend: bool(o, 'verify_backend'),
    verifyBackendPath: str(o, 'verify_backend_path'),
    backendPersistCache: Math.floor(num(o, 'backend_persist_cache')),
    maxBackendUses: Math.floor(num(o, 'max_backend_uses')),
    connectAhead: Math.floor(num(o, 'connect_ahead')),
    alwaysTrusted: bool(o, 'always_trusted'),
    trustedUpstreamProxies: masks,
    blindProxy: bool(o, 'blind_proxy'),
    serverTokens: bool(o, 'server_tokens'),
    clientSndbufSize: num(o, 'client_sndbuf_size'),
    headerRules: compileHeaderRules(service),
    upload: {
      bufferBackendConnect: num(o, 'buffer_backend_connect'),
      bufferUploads: bool(o, 'buffer_uploads') && str(o, 'buffer_uploads_path') !== '',
      path: str(o, 'buffer_uploads_path'),
      thresholdSize: num(o, 'buffer_upload_threshold_size'),
      thresholdRate: num(o, 'buffer_upload_threshold_rate'),
      thresholdTimeMs: num(o, 'buffer_upload_threshold_time'),
    },
    enableReproxy: bool(o, 'enable_reproxy'),
    reproxyCacheMaxSize: Math.floor(num(o, 'reproxy_cache_maxsize')),
    highPriorityCookie:
      typeof o.high_priority_cookie === 'string' && o.high_priority_cookie !== ''
        ? { name: o.high_priority_cookie, contents: typeof o.high_priority_cookie_contents === 'string' ? o.high_priority_cookie_contents : '' }
        : null,
    connectTimeoutMs: num(o, 'connect_timeout'),
    responseTimeoutMs: num(o, 'response_timeout'),
    backendIdleTimeoutMs: num(o, 'backend_idle_timeout'),
    maxRetries: Math.floor(num(o, 'max_retries')),
    downBackoffMs: Math.max(1, num(o, 'down_backoff')),
    downBackoffMaxMs: Math.max(num(o, 'down_backoff'), num(o, 'down_backoff_max')),
    accessLog: accessLog === 'off' || accessLog === '' ? null : accessLog,
    headerTimeoutMs: num(o, 'header_timeout'),
    maxHeaderSize: Math.max(1024, num(o, 'max_header_size')),
    maxHeaderCount: Math.max(1, num(o, 'max_header_count')),
    maxUrlLength: Math.max(16, num(o, 'max_url_length')),
    maxBodySize: num(o, 'max_body_size'),
    sticky,
  };
}
