// The selector role's choice of a target service (Perlbal::Plugin::Vhosts and ::Vpaths, Service.pm selector):
// which service takes a request, or the page the selector answers itself. Pure: Host, path and the names of the
// services that exist in, a decision out.
import type { ServiceModel } from '../config/model.ts';
import { hostCandidates } from './redirect.ts';

export interface SelectorRules {
  /** The plugin that selects: the last of vhosts/vpaths registered (each registration replaces the selector). */
  plugin: 'vhosts' | 'vpaths' | null;
  /** Lowercased pattern → target service. */
  vhosts: ReadonlyMap<string, string>;
  vpaths: ReadonlyArray<{ re: RegExp; service: string }>;
  /** Used when vpaths matches nothing (vhosts always decides itself). */
  defaultService: string | null;
}

export type Selection =
  /** `host`: the Host the target sees instead (the vhosts `/__using/<host>/...` twiddle). */
  | { kind: 'service'; service: string; host?: string }
  /** The selector answers itself (Perlbal's _simple_response page). */
  | { kind: 'page'; status: 404 | 500; message: string };

export function compileSelector(s: ServiceModel): SelectorRules {
  const selecting = s.plugins.filter((p) => p === 'vhosts' || p === 'vpaths');
  const def = s.options.default_service;
  return {
    plugin: (selecting[selecting.length - 1] as 'vhosts' | 'vpaths' | undefined) ?? null,
    vhosts: new Map(s.vhosts.map((v) => [v.pattern.toLowerCase(), v.service])),
    vpaths: s.vpaths.map((v) => ({ re: new RegExp(v.regex), service: v.service })),
    defaultService: typeof def === 'string' && def !== '' ? def.toLowerCase() : null,
  };
}

/**
 * Vhosts: the Host (one trailing dot and a `:port` stripped; lowercased, where Perlbal is case-sensitive) is looked up
 * exactly, then as `*.host`, then one label less at a time, then `*`. A rule whose target does not exist is skipped;
 * nothing found is Perlbal's 404.
 */
export function selectVhost(
  vhosts: ReadonlyMap<string, string>,
  host: string | null,
  target: string,
  exists: (name: string) => boolean,
): Selection {
  const h = (host === null ? '' : host.endsWith('.') ? host.slice(0, -1) : host).toLowerCase();
  // `VHOST a.com;using:b.com = svc`: /__using/b.com/<word> on Host a.com goes to svc as Host b.com (port kept in the key).
  const twiddle = h === '' ? null : /^\/__using\/([\w.]+)(?:\/\w+)(?:\?.*)?$/.exec(target);
  if (twiddle !== null) {
    const service = vhosts.get(`${h};using:${twiddle[1]!.toLowerCase()}`);
    if (service === undefined || !exists(service)) return { kind: 'page', status: 404, message: 'Vhost twiddling not configured for requested pair.' };
    return { kind: 'service', service, host: twiddle[1]! };
  }
  for (const key of hostCandidates(h)) {
    const target = vhosts.get(key);
    if (target !== undefined && exists(target)) return { kind: 'service', service: target };
  }
  return { kind: 'page', status: 404, message: 'Not Found (no configured vhost)' };
}

/** Vpaths: the first regex matching the request target (query included) picks the service; null when none does. */
export function selectVpath(vpaths: SelectorRules['vpaths'], target: string, exists: (name: string) => boolean): Selection | null {
  for (const row of vpaths) {
    if (!row.re.test(target)) continue;
    if (!exists(row.service)) return { kind: 'page', status: 404, message: `Not Found (${row.service} not a defined service)` };
    return { kind: 'service', service: row.service };
  }
  return null;
}

/**
 * The selector's decision. When vpaths matches nothing, default_service takes the request; without one Perlbal leaves
 * the client hanging until idle_timeout, tsbal answers 404 at once.
 */
export function select(rules: SelectorRules, host: string | null, target: string, exists: (name: string) => boolean): Selection {
  if (rules.plugin === null) return { kind: 'page', status: 500, message: 'No service selector configured.' };
  if (rules.plugin === 'vhosts') return selectVhost(rules.vhosts, host, target, exists);
  const chosen = selectVpath(rules.vpaths, target, exists);
  if (chosen !== null) return chosen;
  if (rules.defaultService !== null && exists(rules.defaultService)) return { kind: 'service', service: rules.defaultService };
  return { kind: 'page', status: 404, message: 'Not Found (no configured vpath)' };
}
