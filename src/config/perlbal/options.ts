// The option table: every key `SET` accepts, per role, with its type and default.
// Rows mirror Perlbal 1.80's Service.pm tunables and Pool.pm; tsbal's additions are in their own section below.
// Defaults are written as Perlbal writes them (strings) and go through the same type check as a SET, the way
// Perlbal's init applies them when `SET role` runs.
import type { Role } from '../model.ts';

export type OptionType =
  | { kind: 'bool' }
  | { kind: 'int'; min?: number; max?: number; message?: string }
  | { kind: 'size' }
  /** Stored in ms; a bare number is seconds (Perlbal's int-second options), or Nms / Ns / Nm. */
  | { kind: 'time' }
  | { kind: 'string' }
  | { kind: 'enum'; values: readonly string[] }
  /** Split on commas and spaces (index_files). */
  | { kind: 'list' }
  /** Comma-separated seconds, stored as ms (error_retry_schedule). */
  | { kind: 'seconds_list' }
  /** Comma-separated CIDRs or addresses (trusted_upstream_proxies). */
  | { kind: 'cidr_list' }
  /** Comma-separated ip:port UDP endpoints (upload_status_listeners). */
  | { kind: 'udp_endpoints' }
  /** A single ip:port (LazyCDN's fallback_udp_ping_addr). */
  | { kind: 'ip_port' }
  /** Perlbal's file_or_none: an existing file, or exactly the default. */
  | { kind: 'file_or_default' }
  /** Perlbal's directory_or_none. */
  | { kind: 'dir_or_none' }
  /** An existing directory; the trailing `/` is dropped (docroot, buffer_uploads_path). */
  | { kind: 'dir_required' }
  | { kind: 'executable' }
  /** The name of an existing service (default_service). */
  | { kind: 'service_ref' }
  /** A cookie name (an RFC 6265 token: sticky_cookie, sticky_learn_cookie). */
  | { kind: 'cookie_name' }
  /** `off`, `stdout` or an absolute path (tsbal's access_log). */
  | { kind: 'log_target' }
  /** An origin-form request path `/...` (health_check_path). */
  | { kind: 'check_path' }
  /** HTTP statuses: `200`, `200-399`, `200,301-302` (health_check_expect). */
  | { kind: 'status_list' }
  /** Handled by their own code: role, listen, pool, persist_client_timeout. */
  | { kind: 'special' };

export type RoleScope = '*' | readonly Role[];

export interface OptionSpec {
  name: string;
  roles: RoleScope;
  type: OptionType;
  /** As Perlbal writes it; null = no default (the model holds null until set). */
  default: string | null;
  /** 'perlbal', 'tsbal', or the plugin (canonical name) that adds it when loaded. */
  origin: string;
}

const BOOL: OptionType = { kind: 'bool' };
const INT: OptionType = { kind: 'int' };
const SIZE: OptionType = { kind: 'size' };
const TIME: OptionType = { kind: 'time' };
const STRING: OptionType = { kind: 'string' };
const SPECIAL: OptionType = { kind: 'special' };

const RP: readonly Role[] = ['reverse_proxy'];
const WS: readonly Role[] = ['web_server'];
const SEL: readonly Role[] = ['selector'];

function rows(origin: string, list: Array<[string, RoleScope, OptionType, string | null]>): OptionSpec[] {
  return list.map(([name, roles, type, def]) => ({ name, roles, type, default: def, origin }));
}

/** Perlbal 1.80 Service.pm $tunables. */
export const PERLBAL_SERVICE_OPTIONS: readonly OptionSpec[] = rows('perlbal', [
  ['role', '*', SPECIAL, null],
  ['listen', '*', SPECIAL, null],
  ['pool', RP, SPECIAL, null],
  ['persist_client_timeout', '*', SPECIAL, null],
  ['backend_persist_cache', RP, INT, '2'],
  ['persist_client', '*', BOOL, '0'],
  ['persist_backend', RP, BOOL, '0'],
  ['verify_backend', RP, BOOL, '0'],
  ['verify_backend_path', RP, STRING, '*'],
  ['max_backend_uses', RP, INT, '0'],
  ['max_put_size', WS, SIZE, '0'],
  ['max_chunked_request_size', '*', SIZE, '209715200'],
  ['buffer_size', RP, SIZE, '256k'],
  ['buffer_size_reproxy_url', RP, SIZE, '50k'],
  ['queue_relief_size', RP, INT, '0'],
  ['queue_relief_chance', RP, { kind: 'int', min: 0, max: 100, message: 'Expecting integer value between 0 and 100, inclusive.' }, '0'],
  ['buffer_backend_connect', RP, SIZE, '100k'],
  ['docroot', WS, { kind: 'dir_required' }, null],
  ['enable_put', WS, BOOL, '0'],
  ['enable_md5', WS, BOOL, '1'],
  ['enable_delete', WS, BOOL, '0'],
  ['enable_reproxy', RP, BOOL, '0'],
  ['reproxy_cache_maxsize', RP, INT, '0'],
  ['upload_status_listeners', RP, { kind: 'udp_endpoints' }, ''],
  ['min_put_directory', WS, INT, '0'],
  ['dirindexing', WS, BOOL, '0'],
  ['enable_concatenate_get', WS, BOOL, '0'],
  ['connect_ahead', RP, INT, '0'],
  ['always_trusted', '*', BOOL, '0'],
  ['blind_proxy', RP, BOOL, '0'],
  ['high_priority_cookie', RP, STRING, null],
  ['high_priority_cookie_contents', RP, STRING, null],
  ['trusted_upstream_proxies', '*', { kind: 'cidr_list' }, null],
  ['index_files', WS, { kind: 'list' }, 'index.html'],
  ['default_service', SEL, { kind: 'service_ref' }, null],
  ['server_process', RP, { kind: 'executable' }, null],
  ['persist_client_idle_timeout', '*', TIME, '30'],
  ['idle_timeout', '*', TIME, '30'],
  ['buffer_uploads_path', RP, { kind: 'dir_required' }, null],
  ['buffer_uploads', RP, BOOL, '0'],
  ['buffer_upload_threshold_time', RP, TIME, '5'],
  ['buffer_upload_threshold_size', RP, SIZE, '250k'],
  ['buffer_upload_threshold_rate', RP, INT, '0'],
  ['latency', SEL, INT, '0'],
  ['enable_ssl', '*', BOOL, '0'],
  ['ssl_key_file', '*', { kind: 'file_or_default' }, 'certs/server-key.pem'],
  ['ssl_cert_file', '*', { kind: 'file_or_default' }, 'certs/server-cert.pem'],
  ['ssl_cipher_list', '*', STRING, 'ALL:!LOW:!EXP'],
  ['ssl_ca_path', '*', { kind: 'dir_or_none' }, null],
  ['ssl_verify_mode', '*', INT, '0'],
  ['enable_error_retries', RP, BOOL, '0'],
  ['error_retry_schedule', RP, { kind: 'seconds_list' }, '0,.25,.50,1,1,1,1,1'],
  ['client_sndbuf_size', '*', SIZE, '0'],
  ['server_tokens', '*', BOOL, '1'],
]);

/** Tunables that bundled plugins add when loaded (Perlbal::Service::add_tunable), by canonical plugin name. */
export const PLUGIN_SERVICE_OPTIONS: Readonly<Record<string, readonly OptionSpec[]>> = {
  EchoService: rows('EchoService', [['echo_delay', ['echo'], INT, '0']]),
  LazyCDN: rows('LazyCDN', [
    ['fallback_service', WS, STRING, null],
    ['fallback_udp_ping_addr', WS, { kind: 'ip_port' }, null],
  ]),
  MaxContentLength: rows('MaxContentLength', [['max_content_length', '*', INT, '0']]),
  XFFExtras: rows('XFFExtras', [
    ['send_backend_port', RP, BOOL, '0'],
    ['send_backend_proto', RP, BOOL, '0'],
  ]),
  Throttle: rows('Throttle', [
    ['ban_expiration', '*', INT, '60'],
    ['ban_threshold', '*', INT, '0'],
    ['blacklist_action', '*', { kind: 'enum', values: ['deny', 'throttle'] }, 'deny'],
    ['blacklist_file', '*', { kind: 'file_or_default' }, null],
    ['default_action', '*', { kind: 'enum', values: ['allow', 'throttle'] }, 'throttle'],
    ['initial_delay', '*', INT, '3'],
    ['instance_name', '*', STRING, 'Throttle'],
    ['log_events', '*', STRING, 'all'],
    ['log_only', '*', BOOL, '0'],
    ['max_concurrent', '*', INT, '2'],
    ['max_delay', '*', INT, '300'],
    ['memcached_async_clients', '*', INT, '10'],
    ['memcached_servers', '*', STRING, null],
    ['method_regex', '*', STRING, null],
    ['path_regex', '*', STRING, null],
    ['throttle_threshold_seconds', '*', INT, '60'],
    ['whitelist_file', '*', { kind: 'file_or_default' }, null],
  ]),
};

/** Plugin setters (`SET <svc>.<plugin>.<key> = v`), valid once the plugin is registered on the service. */
export const PLUGIN_SETTERS: Readonly<Record<string, readonly string[]>> = {
  AccessControl: ['use_observed_ip'],
  Highpri: ['uri_pattern', 'host_pattern'],
  NotModified: ['host_pattern'],
};

/** Keys a pool takes in Perlbal (Pool.pm set); anything else fails there without a message. */
export const PERLBAL_POOL_KEYS: readonly string[] = ['nodefile', 'balance_method'];

// =============================================================================================
// tsbal extensions (not in Perlbal 1.80). The proxy reads them from `service.options` and
// `pool.options`. To add one, append a row here and document it in docs/compat.md.
// =============================================================================================

const HTTP_ROLES: readonly Role[] = ['reverse_proxy', 'selector', 'web_server'];

/** Pool balancing methods (the proxy's registry); Perlbal has only `random`. */
export { BALANCE_METHODS } from '../../proxy/upstream/select.ts';

export const TSBAL_SERVICE_OPTIONS: readonly OptionSpec[] = rows('tsbal', [
  // reverse_proxy: backend connections, retries, passive health
  ['connect_timeout', RP, TIME, '3s'],
  ['response_timeout', RP, TIME, '30s'],
  ['backend_idle_timeout', RP, TIME, '30s'],
  ['max_retries', RP, INT, '2'],
  ['down_backoff', RP, TIME, '1s'],
  ['down_backoff_max', RP, TIME, '30s'],
  ['access_log', RP, { kind: 'log_target' }, 'off'],
  // reverse_proxy: session affinity (proxy/upstream/affinity.ts)
  ['sticky', RP, { kind: 'enum', values: ['off', 'cookie', 'source'] }, 'off'],
  ['sticky_cookie', RP, { kind: 'cookie_name' }, 'TSBALID'],
  ['sticky_learn_cookie', RP, { kind: 'cookie_name' }, null],
  ['sticky_secret', RP, STRING, null],
  // every HTTP role: request limits
  ['header_timeout', HTTP_ROLES, TIME, '10s'],
  ['max_header_size', HTTP_ROLES, SIZE, '64k'],
  ['max_header_count', HTTP_ROLES, INT, '100'],
  ['max_url_length', HTTP_ROLES, SIZE, '8k'],
  ['max_body_size', HTTP_ROLES, SIZE, '0'],
  // TLS on the listener (beside Perlbal's ssl_* options): SNI certificates, OCSP staple, plain-to-HTTPS redirect
  ['ssl_cert_dir', HTTP_ROLES, { kind: 'dir_or_none' }, null],
  ['ssl_ocsp_file', HTTP_ROLES, { kind: 'file_or_default' }, null],
  ['ssl_ticket_rotation', HTTP_ROLES, TIME, '720m'],
  ['ssl_http2', HTTP_ROLES, BOOL, '1'],
  // tsbal extension: HTTP/2 with prior knowledge (h2c, RFC 9113 3.3) on a plain listener, told from HTTP/1.1 by the preface
  ['http2_cleartext', HTTP_ROLES, BOOL, '0'],
  ['http2_max_concurrent_streams', HTTP_ROLES, { kind: 'int', min: 1, max: 10000, message: 'Expecting an integer between 1 and 10000.' }, '100'],
  ['redirect_https', HTTP_ROLES, BOOL, '0'],
  ['redirect_https_port', HTTP_ROLES, { kind: 'int', min: 1, max: 65535, message: 'Expecting a port between 1 and 65535.' }, '443'],
]);

/**
 * Active health checks and what to do when every backend is down (issue 12). Checks are on when
 * `health_check_path` is set or `health_check` is `http`/`tcp`; the proxy compiles these in upstream/check-spec.ts.
 */
const HEALTH_CHECK_POOL_OPTIONS: readonly OptionSpec[] = rows('tsbal', [
  ['health_check', '*', { kind: 'enum', values: ['off', 'http', 'tcp'] }, null],
  ['health_check_path', '*', { kind: 'check_path' }, null],
  ['health_check_method', '*', { kind: 'enum', values: ['GET', 'HEAD', 'OPTIONS'] }, 'GET'],
  ['health_check_host', '*', STRING, null],
  ['health_check_expect', '*', { kind: 'status_list' }, '200-399'],
  ['health_check_interval', '*', TIME, '2s'],
  ['health_check_timeout', '*', TIME, '1s'],
  ['health_check_rise', '*', { kind: 'int', min: 1, max: 100 }, '2'],
  ['health_check_fall', '*', { kind: 'int', min: 1, max: 100 }, '3'],
  ['health_check_reuse', '*', { kind: 'enum', values: ['on', 'off'] }, 'on'],
  ['health_check_5xx_streak', '*', INT, '0'],
  ['slow_start', '*', TIME, '0'],
  ['all_down', '*', { kind: 'enum', values: ['keep_trying', '503'] }, 'keep_trying'],
]);

/** Extension keys on pools (stored in `pool.options`); `balance_method` is a model field of its own. */
/** HTTPS to the pool's backends (tls/upstream.ts). */
const BACKEND_TLS_POOL_OPTIONS: readonly OptionSpec[] = rows('tsbal', [
  ['backend_ssl', '*', BOOL, '0'],
  ['backend_ssl_verify', '*', BOOL, '1'],
  ['backend_ssl_ca', '*', { kind: 'file_or_default' }, null],
  ['backend_ssl_sni', '*', STRING, null],
]);

export const TSBAL_POOL_OPTIONS: readonly OptionSpec[] = [
  ...rows('tsbal', [
    // per-backend limit and its queue (proxy/upstream/queue.ts)
    ['max_conns', '*', INT, '0'],
    ['queue_timeout', '*', TIME, '10s'],
  ]),
  ...HEALTH_CHECK_POOL_OPTIONS,
  ...BACKEND_TLS_POOL_OPTIONS,
];

// =============================================================================================

const CORE_SERVICE_OPTIONS = new Map<string, OptionSpec>(
  [...PERLBAL_SERVICE_OPTIONS, ...TSBAL_SERVICE_OPTIONS].map((o) => [o.name, o]),
);

/** The spec for a service key, counting tunables of the plugins loaded so far. */
export function serviceOption(name: string, loadedPlugins: readonly string[]): OptionSpec | undefined {
  const core = CORE_SERVICE_OPTIONS.get(name);
  if (core) return core;
  for (const p of loadedPlugins) {
    const found = PLUGIN_SERVICE_OPTIONS[p]?.find((o) => o.name === name);
    if (found) return found;
  }
  return undefined;
}

/** Every service option known with these plugins loaded (for defaults and suggestions). */
export function allServiceOptions(loadedPlugins: readonly string[]): OptionSpec[] {
  return [...CORE_SERVICE_OPTIONS.values(), ...loadedPlugins.flatMap((p) => PLUGIN_SERVICE_OPTIONS[p] ?? [])];
}

export function poolOption(name: string): OptionSpec | undefined {
  return TSBAL_POOL_OPTIONS.find((o) => o.name === name);
}

export function appliesTo(spec: OptionSpec, role: Role | null): boolean {
  return spec.roles === '*' || (role !== null && spec.roles.includes(role));
}

/** Perlbal's wording for one role; a list for tsbal's multi-role options. */
export function roleRestriction(spec: OptionSpec): string {
  if (spec.roles === '*') return 'any';
  const quoted = spec.roles.map((r) => `'${r}'`);
  const list = quoted.length === 1 ? quoted[0]! : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
  return `The '${spec.name}' option can only be set on a ${list} service`;
}
