// Which Perlbal roles this version of `tsbal run` serves. One list, read by `tsbal run` (which refuses a config it
// cannot serve rather than leave a port silently unbound) and by `tsbal check` (which says so before a restart does).
import type { SourceLocation } from '../config/errors.ts';
import type { Role, ServiceModel } from '../config/model.ts';
import { stickyConflict } from './options.ts';
import { webServerRefusals } from './webserver/options.ts';
import { throttleRefusal } from './throttle.ts';

export type RoleSupport = 'served' | 'skipped' | 'refused';

const SUPPORT: Record<Role, RoleSupport> = {
  reverse_proxy: 'served',
  // The console (src/proxy/management/): Perlbal's line protocol, plus Prometheus metrics on GET /metrics.
  management: 'served',
  selector: 'served',
  // Static files from docroot (src/proxy/webserver/); PUT, DELETE and ?? concatenation are refused at load.
  web_server: 'served',
  upload_tracker: 'refused',
  // EchoService's line echo (src/proxy/echo.ts), started beside the consoles.
  echo: 'served',
};

export function roleSupport(role: Role | null): RoleSupport {
  return role === null ? 'skipped' : SUPPORT[role];
}

/** Does a service of this role take HTTP requests on its own listener? (A management service's port is the console.) */
function takesRequests(role: Role | null): boolean {
  return roleSupport(role) === 'served' && role !== 'management' && role !== 'echo';
}

/** Can a selector hand a request to a service of this role? A management service answers with its status pages. */
function takesHandover(role: Role | null): boolean {
  return roleSupport(role) === 'served';
}

/** The enabled services `tsbal run` would refuse to start, with the reason, in config order. */
export function unservedServices(services: readonly ServiceModel[]): Array<{ service: ServiceModel; support: RoleSupport }> {
  return services
    .filter((s) => s.enabled && roleSupport(s.role) !== 'served')
    .map((service) => ({ service, support: roleSupport(service.role) }));
}

/**
 * Plugins `tsbal run` enforces on a served service, by role. A plugin a served service registers that is not listed
 * here would be silently ignored, so `tsbal run` refuses the config instead: an AccessControl or Throttle that does
 * nothing is an open door.
 */
const ENFORCED_PLUGINS: Record<Role, readonly string[]> = {
  reverse_proxy: ['accesscontrol', 'redirect', 'notmodified', 'maxcontentlength', 'xffextras', 'queues', 'throttle', 'stats', 'highpri'],
  management: [],
  selector: ['vhosts', 'vpaths', 'accesscontrol', 'redirect', 'notmodified', 'maxcontentlength'],
  web_server: ['accesscontrol', 'redirect', 'notmodified', 'maxcontentlength', 'autoremoveleadingdir', 'stats'],
  upload_tracker: [],
  echo: [],
};

/** The plugins `tsbal run` enforces on a service of this role, in the order its messages list them. */
export function enforcedPlugins(role: Role): readonly string[] {
  return ENFORCED_PLUGINS[role];
}

export interface UnenforcedPlugin {
  service: ServiceModel;
  plugin: string;
  /** The SET plugins line (the service's line if none). */
  loc: SourceLocation;
  message: string;
}

/** Services a selector can hand a request to: VHOST and VPATH targets, then default_service (lowercased names). */
export function selectorTargets(s: ServiceModel): Array<{ name: string; loc: SourceLocation; what: string }> {
  const out = [...s.vhosts, ...s.vpaths].map((r) => ({ name: r.service, loc: r.loc, what: 'pattern' in r ? `VHOST ${r.pattern}` : `VPATH ${r.regex}` }));
  const def = s.options.default_service;
  if (typeof def === 'string' && def !== '') out.push({ name: def.toLowerCase(), loc: s.loc, what: 'default_service' });
  return out;
}

/**
 * The HTTP services `tsbal run` runs (the management console is started apart): enabled ones of a served role, plus every service a served selector can hand a
 * request to, enabled or not (Perlbal's adopt_base_client does not look at ENABLE), in config order.
 */
export function servedServices(services: readonly ServiceModel[]): ServiceModel[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const served = new Set(services.filter((s) => s.enabled && takesRequests(s.role)));
  const queue = [...served];
  while (queue.length > 0) {
    const s = queue.pop()!;
    if (s.role !== 'selector') continue;
    for (const t of selectorTargets(s)) {
      const target = byName.get(t.name);
      if (target === undefined || served.has(target) || !takesHandover(target.role)) continue;
      served.add(target);
      queue.push(target);
    }
  }
  return services.filter((s) => served.has(s));
}

/** Targets of served selectors that exist but whose role `tsbal run` cannot hand a request to. */
export function unservableTargets(services: readonly ServiceModel[]): Array<{ loc: SourceLocation; message: string }> {
  const byName = new Map(services.map((s) => [s.name, s]));
  const out: Array<{ loc: SourceLocation; message: string }> = [];
  for (const s of servedServices(services)) {
    if (s.role !== 'selector') continue;
    for (const t of selectorTargets(s)) {
      const target = byName.get(t.name);
      if (target === undefined || takesHandover(target.role)) continue;
      out.push({
        loc: t.loc,
        message: `selector ${s.name}: ${t.what} hands requests to ${target.name} (role ${target.role ?? '(none)'}), which this version of tsbal run does not serve (it serves reverse_proxy, web_server and selector targets)`,
      });
    }
  }
  return out;
}

/** Plugins registered on services `tsbal run` serves that it does not enforce, in config order. */
export function unenforcedPlugins(services: readonly ServiceModel[]): UnenforcedPlugin[] {
  const out: UnenforcedPlugin[] = [];
  for (const service of servedServices(services)) {
    if (service.role === null) continue;
    const enforced = ENFORCED_PLUGINS[service.role];
    for (const plugin of service.plugins) {
      if (enforced.includes(plugin)) continue;
      const loc = service.pluginsLoc ?? service.loc;
      out.push({
        service,
        plugin,
        loc,
        message:
          `service ${service.name}: plugin ${plugin} is not enforced by this version of tsbal run ` +
          `on a ${service.role} service (it enforces: ${enforced.join(', ') || 'none'}); remove it from SET plugins or run Perlbal`,
      });
    }
  }
  return out;
}

/** Everything that makes `tsbal run` refuse a config Perlbal would run (besides refused roles), as located messages. */
export function runRefusals(services: readonly ServiceModel[]): Array<{ loc: SourceLocation; message: string }> {
  return [
    ...unservableTargets(services),
    ...unenforcedPlugins(services).map(({ loc, message }) => ({ loc, message })),
    ...servedServices(services).flatMap(webServerRefusals),
    ...servedServices(services).flatMap((s) => throttleRefusal(s) ?? []),
    ...servedServices(services).flatMap((s) => {
      const conflict = s.role === 'reverse_proxy' ? stickyConflict(s.options) : null;
      return conflict === null ? [] : [{ loc: s.loc, message: `service ${s.name}: ${conflict}` }];
    }),
  ];
}
