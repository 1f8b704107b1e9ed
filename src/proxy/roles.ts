// Which Perlbal roles this version of `tsbal run` serves. One list, read by `tsbal run` (which refuses a config it
// cannot serve rather than leave a port silently unbound) and by `tsbal check` (which says so before a restart does).
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
