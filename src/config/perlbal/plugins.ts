// Perlbal's bundled plugins: which exist, which tsbal implements, and what registering one on a service does.
import type { ServiceModel } from '../model.ts';
import { didYouMean } from '../suggest.ts';
import { err, OK, type CommandResult, type Exec } from './result.ts';
import { metaFor } from './state.ts';

/** Canonical names of the 18 plugins Perlbal 1.80 ships (Perlbal/Plugin/*.pm). */
export const KNOWN_PLUGINS = [
  'AccessControl', 'AutoRemoveLeadingDir', 'Cgilike', 'EchoService', 'FlvStreaming', 'Highpri', 'Include',
  'LazyCDN', 'MaxContentLength', 'NotModified', 'Palimg', 'Queues', 'Redirect', 'Stats', 'Throttle',
  'Vhosts', 'Vpaths', 'XFFExtras',
] as const;

/**
 * Plugins whose behaviour tsbal provides. Loading any other known plugin is accepted with a warning
 * (its commands and settings parse; it does nothing at run time). Add a name here when the proxy implements it.
 */
export const IMPLEMENTED_PLUGINS: ReadonlySet<string> = new Set([
  'Vhosts', 'Vpaths', 'Include', 'AccessControl', 'Redirect',
  'NotModified', 'MaxContentLength', 'XFFExtras', 'Queues', 'AutoRemoveLeadingDir', 'EchoService', 'Throttle', 'Stats', 'Highpri',
]);

/** Commands a plugin adds, available only after LOAD (Perlbal's manage_command.<word> hooks). */
export const PLUGIN_COMMANDS: Readonly<Record<string, string>> = {
  vhost: 'Vhosts',
  vpath: 'Vpaths',
  include: 'Include',
  access: 'AccessControl',
  redirect: 'Redirect',
  perlrequire: 'Cgilike',
  perlhandler: 'Cgilike',
  throttle: 'Throttle',
  stats: 'Stats',
  recent: 'Stats',
  patterns: 'Highpri',
};

/** The canonical name for a plugin written in any case, or undefined if Perlbal has no such plugin. */
export function canonicalPlugin(name: string): string | undefined {
  const lower = name.toLowerCase();
  return KNOWN_PLUGINS.find((p) => p.toLowerCase() === lower);
}

export function isLoaded(x: Exec, canonical: string): boolean {
  return x.state.loadedPlugins.includes(canonical);
}

export function unknownPlugin(name: string): CommandResult {
  return err(`unknown plugin '${name}'`, didYouMean(name, KNOWN_PLUGINS) ?? `Perlbal's plugins are ${KNOWN_PLUGINS.join(', ')}`);
}

/** `SET plugins = a, b`: unregisters every plugin, then registers the list in order (hook order). */
export function setPlugins(x: Exec, service: ServiceModel, raw: string): CommandResult {
  const dropped = service.vhosts.length + service.vpaths.length;
  if (dropped > 0) {
    x.warn(`SET plugins clears the ${dropped} VHOST/VPATH rule(s) given above for ${service.name}`,
      'put SET plugins before the VHOST/VPATH lines (Perlbal behaves the same)');
  }
  service.vhosts = [];
  service.vpaths = [];
  metaFor(x.state, service.name).vhostIndex.clear();
  const registered: string[] = [];
  const problems: CommandResult[] = [];
  for (const word of raw.split(/[\s,]+/)) {
    if (word === '' || word.toLowerCase() === 'none') continue;
    const canonical = canonicalPlugin(word);
    if (!canonical) {
      problems.push(unknownPlugin(word));
      continue;
    }
    if (registered.includes(canonical)) continue;
    if (!isLoaded(x, canonical)) {
      problems.push(err(`Plugin ${word.toLowerCase()} not loaded; not registered for ${service.name}.`, `add LOAD ${canonical} before this line`));
      continue;
    }
    if ((canonical === 'Vhosts' || canonical === 'Vpaths') && service.role !== 'selector') {
      const what = canonical === 'Vhosts' ? 'vhost' : 'vpath';
      problems.push(err(`You can't load the ${what} plugin on a service not of role selector.`, 'SET role = selector first'));
      continue;
    }
    registered.push(canonical);
  }
  if (registered.includes('Vhosts') && registered.includes('Vpaths')) {
    x.warn('vhosts and vpaths cannot work together on one selector; the one registered last selects',
      'use two selectors, or one plugin');
  }
  service.plugins = registered.map((p) => p.toLowerCase());
  service.pluginsLoc = x.c.loc;
  metaFor(x.state, service.name).pluginsFailed = problems.length > 0;
  return combine(x, problems);
}

/** Several errors from one line: the first is the command's error, the rest ride along located at the line. */
export function combine(x: Exec, problems: CommandResult[]): CommandResult {
  const [first, ...rest] = problems.filter((p) => p.kind === 'error');
  if (!first || first.kind !== 'error') return OK;
  if (rest.length === 0) return first;
  const diagnostics = rest.flatMap((p) => (p.kind === 'error' ? [{ ...x.c.loc, severity: 'error' as const, message: p.message, ...(p.hint ? { hint: p.hint } : {}) }] : []));
  return { ...first, diagnostics: [...(first.diagnostics ?? []), ...diagnostics] };
}
