// Which Perlbal roles this version of `tsbal run` serves. One list, read by `tsbal run` (which refuses a config it
// cannot serve rather than leave a port silently unbound) and by `tsbal check` (which says so before a restart does).
import type { SourceLocation } from '../config/errors.ts';
import type { Role, ServiceModel } from '../config/model.ts';

export type RoleSupport = 'served' | 'skipped' | 'refused';

const SUPPORT: Record<Role, RoleSupport> = {
  reverse_proxy: 'served',
  // Carries no client traffic; a missing console must not keep the balancer down.
  management: 'skipped',
  selector: 'refused',
  web_server: 'refused',
  upload_tracker: 'refused',
  echo: 'refused',
};

export function roleSupport(role: Role | null): RoleSupport {
  return role === null ? 'skipped' : SUPPORT[role];
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
  reverse_proxy: ['accesscontrol', 'redirect'],
  management: [],
  selector: [],
  web_server: [],
  upload_tracker: [],
  echo: [],
};

export interface UnenforcedPlugin {
  service: ServiceModel;
  plugin: string;
  /** The SET plugins line (the service's line if none). */
  loc: SourceLocation;
  message: string;
}

/** Plugins registered on services `tsbal run` serves that it does not enforce, in config order. */
export function unenforcedPlugins(services: readonly ServiceModel[]): UnenforcedPlugin[] {
  const out: UnenforcedPlugin[] = [];
  for (const service of services) {
    if (!service.enabled || roleSupport(service.role) !== 'served' || service.role === null) continue;
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
