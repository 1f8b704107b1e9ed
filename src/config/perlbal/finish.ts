// After the last line: the model the engines run (defaults filled in, copies, not the live state), and the
// checks across the whole file that Perlbal only hits at run time (or never).
import type { PerlbalConfig, PoolModel, ServiceModel } from '../model.ts';
import type { Diagnostics } from '../diagnostics.ts';
import { allServiceOptions, appliesTo } from './options.ts';
import type { CommandEnv, PerlbalState } from './state.ts';
import { parseOptionValue, resolvePath } from './typed.ts';
import { formatHostPort, isLoopbackHost, listensOverlap } from './values.ts';
import { cloneRecord } from '../records.ts';
import { cipherListProblem } from '../tls.ts';
import { checkAnycast } from './anycast.ts';
import { loadServiceTls, tlsFilesOf, tlsLocator, tlsSettings, TSBAL_DEFAULT_CIPHERS } from './tls.ts';

// management: tsbal answers with the management port's pages (Perlbal 1.80: 500 Can't map to service type).
const ADOPTABLE = new Set(['reverse_proxy', 'web_server', 'selector', 'management']);

/** Options valid for the role that no SET or init touched (plugin tunables loaded after SET role) get their defaults. */
function withDefaults(state: PerlbalState, env: CommandEnv, s: ServiceModel): ServiceModel {
  const copy: ServiceModel = { ...structuredClone(s), options: cloneRecord(s.options), extra: cloneRecord(s.extra) };
  if (copy.role === null) return copy;
  for (const spec of allServiceOptions(state.loadedPlugins)) {
    if (spec.type.kind === 'special' || !appliesTo(spec, copy.role) || spec.name in copy.options) continue;
    const r = spec.default === null ? null : parseOptionValue(spec, spec.default, { state, env, service: s.name });
    copy.options[spec.name] = r?.ok ? r.value : null;
  }
  const explicit = state.meta.get(s.name)?.explicit;
  if (explicit !== undefined && explicit.size > 0) copy.optionLocs = Object.fromEntries(explicit);
  return copy;
}

export function snapshot(state: PerlbalState, env: CommandEnv, file: string, warnings: PerlbalConfig['warnings']): PerlbalConfig {
  const services = [...state.services.values()];
  return {
    file,
    files: [...state.files],
    cwd: env.cwd,
    services: services.map((s) => withDefaults(state, env, s)),
    pools: [...state.pools.values()].map((p) => ({ ...structuredClone(p), options: cloneRecord(p.options) })),
    server: cloneRecord(state.server),
    loadedPlugins: state.loadedPlugins.map((p) => p.toLowerCase()),
    access: cloneRecord(state.access),
    redirects: cloneRecord(state.redirects),
    warnings,
  };
}

function referencedServices(state: PerlbalState): Set<string> {
  const refs = new Set<string>();
  for (const s of state.services.values()) {
    for (const r of [...s.vhosts, ...s.vpaths]) refs.add(r.service);
    const def = s.options.default_service;
    if (typeof def === 'string') refs.add(def);
  }
  return refs;
}

function checkSelectorTargets(state: PerlbalState, s: ServiceModel, d: Diagnostics): void {
  for (const r of [...s.vhosts, ...s.vpaths]) {
    const what = 'pattern' in r ? `VHOST ${r.pattern}` : `VPATH ${r.regex}`;
    const target = state.services.get(r.service);
    if (!target) d.warn(r.loc, `${what} points at service '${r.service}', which does not exist; requests for it fall through`);
    else if (target.role === null || !ADOPTABLE.has(target.role)) {
      d.warn(r.loc, `${what} points at service '${r.service}' (role ${target.role ?? 'none'}), which cannot take requests from a selector`);
    }
  }
}

/** A TLS listener's files and settings, judged exactly as `tsbal run` and a reload will load them. */
function checkTls(state: PerlbalState, env: CommandEnv, raw: ServiceModel, d: Diagnostics): void {
  const s = withDefaults(state, env, raw);
  const explicit = state.meta.get(s.name)?.explicit;
  const enableLoc = explicit?.get('enable_ssl') ?? s.loc;
  if (s.options.redirect_https === true && s.options.enable_ssl === true) {
    d.error(explicit?.get('redirect_https') ?? s.loc, `service ${s.name} has both enable_ssl and redirect_https on: every HTTPS request would be redirected to itself`, 'set redirect_https on the plain-HTTP service');
  }
  if (s.options.http2_cleartext === true) {
    const loc = explicit?.get('http2_cleartext') ?? s.loc;
    if (s.options.enable_ssl === true) {
      d.error(loc, `service ${s.name} has both enable_ssl and http2_cleartext on: http2_cleartext is HTTP/2 without TLS`, 'over TLS, HTTP/2 is offered by ALPN (ssl_http2, on by default); drop http2_cleartext');
    } else if (s.listen === null) {
      d.warn(loc, `service ${s.name}: http2_cleartext set but the service has no listen address; it has no effect`, 'it applies to the service that listens (the selector)');
    }
  }
  if (s.options.enable_ssl !== true) {
    // tsbal's TLS options on a plain service: nothing would use them.
    const idle = ['ssl_cert_dir', 'ssl_ocsp_file', 'ssl_http2'].filter((k) => explicit?.has(k) && s.options[k] !== null && s.options[k] !== false);
    if (idle.length > 0) d.warn(explicit!.get(idle[0]!)!, `service ${s.name}: ${idle.join(', ')} set but enable_ssl is off; ${idle.length === 1 ? 'it has' : 'they have'} no effect`, 'SET enable_ssl = on');
    return;
  }
  if (s.role === 'management') {
    d.error(enableLoc, `service ${s.name}: enable_ssl on a management service is not supported`, 'keep the management port on 127.0.0.1 without TLS');
    return;
  }
  const settings = tlsSettings(s, env.cwd)!;
  if (settings.main !== null && settings.certDir === null) {
    // Perlbal's own words for its own check (Service.pm enable), before anything else about these files.
    let missing = false;
    const failed = state.meta.get(s.name)?.failedKeys;
    for (const [key, path] of [['ssl_key_file', settings.main.keyFile], ['ssl_cert_file', settings.main.certFile]] as const) {
      if (failed?.has(key)) missing = true;
      else if (env.fs.kind(path) !== 'file') {
        d.error(explicit?.get(key) ?? enableLoc, `SSL ${key === 'ssl_key_file' ? 'key' : 'cert'} file (${raw.options[key] as string}) doesn't exist`, `service ${s.name} has enable_ssl on; looked for ${path}`);
        missing = true;
      }
    }
    if (missing) return;
  }
  if (settings.ciphers !== TSBAL_DEFAULT_CIPHERS) {
    const why = cipherListProblem(settings.ciphers);
    if (why !== null) d.error(explicit?.get('ssl_cipher_list') ?? enableLoc, `ssl_cipher_list '${settings.ciphers}' is refused by OpenSSL (${why})`, 'e.g. ECDHE+AESGCM:ECDHE+CHACHA20');
  }
  const { problems } = loadServiceTls(tlsFilesOf(env.fs), settings, Date.now(), tlsLocator(s, env.cwd, explicit));
  for (const p of problems) (p.severity === 'error' ? d.error : d.warn)(p.loc, `service ${s.name}: ${p.message}`, p.hint);
}

/** A pool's backend_ssl settings: the CA file must hold PEM certificates (SET already checked that it exists). */
function checkBackendTls(env: CommandEnv, pool: PoolModel, d: Diagnostics): void {
  const o = pool.options;
  const ca = o.backend_ssl_ca;
  if (o.backend_ssl !== true) {
    const set = ['backend_ssl_verify', 'backend_ssl_ca', 'backend_ssl_sni'].filter((k) => o[k] !== undefined && o[k] !== null);
    if (set.length > 0) d.warn(pool.loc, `pool ${pool.name}: ${set.join(', ')} set but backend_ssl is off; they have no effect`, `SET backend_ssl = on on pool ${pool.name}`);
    return;
  }
  if (typeof ca === 'string') {
    const path = resolvePath(env, ca);
    let text = '';
    try {
      text = env.fs.readFile(path);
    } catch (e) {
      d.error(pool.loc, `pool ${pool.name}: backend_ssl_ca ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      return;
    }
    if (!/-----BEGIN CERTIFICATE-----/.test(text)) d.error(pool.loc, `pool ${pool.name}: backend_ssl_ca ${path} holds no PEM certificate`);
  }
  if (o.backend_ssl_verify === false) d.warn(pool.loc, `pool ${pool.name}: backend_ssl_verify is off: backend certificates are not checked (anyone on the path can read and change the traffic)`);
}

/** Options that only matter with active checks on (health_check_5xx_streak is passive: it works without). */
const CHECK_ONLY_KEYS = ['health_check_method', 'health_check_host', 'health_check_expect', 'health_check_interval', 'health_check_timeout', 'health_check_rise', 'health_check_fall', 'health_check_reuse', 'slow_start', 'all_down'];

/** A pool's health-check settings that cannot do what they say. */
function checkPoolHealth(pool: PoolModel, d: Diagnostics): void {
  const o = pool.options;
  const on = o.health_check === 'http' || o.health_check === 'tcp' || (o.health_check !== 'off' && typeof o.health_check_path === 'string');
  if (!on) {
    const idle = CHECK_ONLY_KEYS.filter((k) => k in o);
    if (idle.length > 0) d.warn(pool.loc, `pool ${pool.name}: ${idle.join(', ')} ${idle.length === 1 ? 'has' : 'have'} no effect: health checks are off`, 'SET health_check_path = /health (or health_check = tcp) on the pool');
    return;
  }
  const interval = typeof o.health_check_interval === 'number' ? o.health_check_interval : 2000;
  const timeout = typeof o.health_check_timeout === 'number' ? o.health_check_timeout : 1000;
  if (timeout >= interval) {
    const which = typeof o.health_check_timeout === 'number' ? 'health_check_timeout' : 'the default health_check_timeout';
    d.warn(pool.loc, `pool ${pool.name}: ${which} (${timeout} ms) is not shorter than health_check_interval (${interval} ms); a silent backend then takes fall × timeout to be taken out`, `SET health_check_timeout = ${Math.max(1, Math.floor(interval / 2))}ms (shorter than the interval)`);
  }
}

/** Checks across the whole config; errors stop `tsbal run`, warnings are printed by `tsbal check`. */
export function checkConfig(state: PerlbalState, env: CommandEnv, d: Diagnostics): void {
  const refs = referencedServices(state);
  const listeners: Array<{ service: ServiceModel }> = [];
  for (const s of state.services.values()) {
    if (s.role === 'selector') checkSelectorTargets(state, s, d);
    if (!s.enabled) {
      if (!refs.has(s.name)) d.warn(s.loc, `service ${s.name} is never enabled and no selector uses it`, `add ENABLE ${s.name}`);
      continue;
    }
    if (s.role === null) {
      d.error(s.loc, `service ${s.name} is enabled but has no role`, 'SET role = reverse_proxy (or web_server, selector, management)');
      continue;
    }
    if (s.role === 'reverse_proxy') {
      if (s.pool === null) {
        if (!state.meta.get(s.name)?.failedKeys.has('pool')) d.error(s.loc, `service ${s.name} (reverse_proxy) has no pool`, 'CREATE POOL, POOL <pool> ADD ip:port, then SET pool = <pool>');
      } else {
        const pool = state.pools.get(s.pool);
        if (pool && pool.nodes.length === 0 && pool.nodefile === null) d.warn(pool.loc, `pool ${pool.name} has no backends; service ${s.name} will answer 503`);
      }
    }
    // A web_server that only redirects (SET plugins = redirect) needs none, as in Perlbal: unredirected requests get
    // Perlbal's `500 Docroot unconfigured`.
    if (s.role === 'web_server' && s.options.docroot == null && !s.plugins.includes('redirect') && !state.meta.get(s.name)?.failedKeys.has('docroot')) {
      d.error(s.loc, `service ${s.name} (web_server) has no docroot`, 'SET docroot = /var/www, or SET plugins = redirect for a web_server that only redirects');
    }
    if (s.role === 'selector' && !s.plugins.includes('vhosts') && !s.plugins.includes('vpaths') && !state.meta.get(s.name)?.pluginsFailed) {
      d.error(s.loc, `selector ${s.name} has no selector plugin; every request would get 500`, 'LOAD vhosts, then SET plugins = vhosts and VHOST lines');
    }
    checkTls(state, env, s, d);
    if (s.role === 'reverse_proxy' && s.options.buffer_uploads === true && s.options.buffer_uploads_path == null && !state.meta.get(s.name)?.failedKeys.has('buffer_uploads_path')) {
      d.error(s.loc, `service ${s.name} has buffer_uploads on but no buffer_uploads_path`, 'SET buffer_uploads_path = /var/spool/tsbal (an existing directory, writable by tsbal)');
    }
    if (s.role === 'management' && s.listen && !isLoopbackHost(s.listen.host)) {
      d.warn(s.loc, `management service ${s.name} listens on ${formatHostPort(s.listen)}; the management port has no authentication`, 'listen on 127.0.0.1');
    }
    if (s.listen) {
      const listen = s.listen;
      const clash = listeners.find(({ service: o }) => listensOverlap(o.listen!, listen));
      if (clash) {
        d.error(s.loc, `service ${s.name} listens on ${formatHostPort(listen)}, which service ${clash.service.name} (line ${clash.service.loc.line}) already uses`);
      } else listeners.push({ service: s });
    }
  }
  for (const pool of state.pools.values()) checkBackendTls(env, pool, d);
  for (const [name, cfg] of Object.entries(state.access)) {
    const s = state.services.get(name);
    if (s && cfg.rules.length > 0 && !s.plugins.includes('accesscontrol')) {
      d.warn(cfg.rules[0]!.loc, `ACCESS rules for ${name} have no effect: the accesscontrol plugin is not registered on it`, `SET ${name}.plugins = accesscontrol`);
    }
  }
  for (const [name, rules] of Object.entries(state.redirects)) {
    const s = state.services.get(name);
    if (s && rules.length > 0 && !s.plugins.includes('redirect')) {
      d.warn(rules[0]!.loc, `REDIRECT rules for ${name} have no effect: the redirect plugin is not registered on it`, `SET ${name}.plugins = redirect`);
    }
  }
  for (const pool of state.pools.values()) checkPoolHealth(pool, d);
  checkAnycast(state, d);
  // Only when nothing else is wrong: a broken line above is the likelier cause.
  if (listeners.length === 0 && !d.list.some((x) => x.severity === 'error')) {
    d.error({ file: state.files[0] ?? '', line: 0 }, 'No services or management port configured. Nothing to do.', 'ENABLE a service that has a listen address');
  }
}
