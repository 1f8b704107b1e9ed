// What a reload changes: the running config and the new one, reduced to comparable shapes, diffed into a plan
// (listeners to keep, bind and close; services added, removed and changed; backends in and out). Pure: the plan is
// data, applied by reload.ts, and summarised in one log line.
import type { HostPort, PerlbalConfig, ServiceModel } from '../config/model.ts';
import { servedServices } from './roles.ts';
import { formatHostPort } from '../config/perlbal/values.ts';

/** One served service as far as a reload is concerned. */
export interface ServiceShape {
  name: string;
  /** null: a selector target that is not enabled (it takes handed-over requests only). */
  listen: HostPort | null;
  /** Backends as `host:port`, in pool order. */
  backends: string[];
  /** Everything else that shapes the service, by user-facing name, as canonical text (compared, never parsed). */
  settings: Record<string, string>;
}

export type ListenerStep =
  /** The address stays bound: the same socket goes on accepting, for `to` (which may be a renamed `from`). */
  | { kind: 'keep'; address: string; from: string; to: string }
  | { kind: 'bind'; address: string; service: string }
  /** Stop accepting; connections accepted on it finish what they are doing. */
  | { kind: 'close'; address: string; service: string };

export interface ServiceChange {
  name: string;
  /** Setting names whose value changed (options, pool, HEADER rules, plugins, vhosts, ...). */
  settings: string[];
  backendsAdded: string[];
  backendsRemoved: string[];
}

export interface ReloadPlan {
  added: string[];
  removed: string[];
  changed: ServiceChange[];
  listeners: ListenerStep[];
}

export function addressKey(a: HostPort): string {
  return formatHostPort(a);
}

/** JSON with source locations left out: moving a line in the file is not a change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) => (key === 'loc' || key === 'pluginsLoc' ? undefined : v)) ?? 'null';
}

/** The shapes of the services `tsbal run` serves for this config, in config order. */
export function serviceShapes(config: PerlbalConfig): ServiceShape[] {
  return servedServices(config.services).map((s: ServiceModel): ServiceShape => {
    const pool = s.pool === null ? undefined : config.pools.find((p) => p.name === s.pool);
    const settings: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.options)) settings[k] = canonical(v);
    settings.role = canonical(s.role);
    settings.pool = canonical(s.pool);
    settings.balance_method = canonical(pool?.balance_method ?? null);
    settings['pool options'] = canonical(pool?.options ?? {});
    settings.HEADER = canonical(s.headers);
    settings.plugins = canonical(s.plugins);
    settings.VHOST = canonical(s.vhosts);
    settings.VPATH = canonical(s.vpaths);
    settings.extra = canonical(s.extra);
    settings.ACCESS = canonical(Object.hasOwn(config.access, s.name) ? config.access[s.name] : null);
    settings.REDIRECT = canonical(Object.hasOwn(config.redirects, s.name) ? config.redirects[s.name] : null);
    return {
      name: s.name,
      listen: s.enabled && s.role !== 'management' ? s.listen : null,
      backends: (pool?.nodes ?? []).map(addressKey),
      settings,
    };
  });
}

/**
 * Listeners are matched by address, not by service: a renamed service on the same address keeps its socket. Port 0
 * (any free port) matches only the same service's port 0, since each such listen got a port of its own.
 */
function planListeners(old: readonly ServiceShape[], next: readonly ServiceShape[]): ListenerStep[] {
  const steps: ListenerStep[] = [];
  const matched = new Set<ServiceShape>();
  const findOld = (n: ServiceShape, listen: HostPort): ServiceShape | undefined =>
    old.find(
      (o) =>
        !matched.has(o) &&
        o.listen !== null &&
        addressKey(o.listen) === addressKey(listen) &&
        (listen.port !== 0 || o.name === n.name),
    );
  for (const n of next) {
    if (n.listen === null) continue;
    const o = findOld(n, n.listen);
    if (o === undefined) {
      steps.push({ kind: 'bind', address: addressKey(n.listen), service: n.name });
      continue;
    }
    matched.add(o);
    steps.push({ kind: 'keep', address: addressKey(n.listen), from: o.name, to: n.name });
  }
  for (const o of old) {
    if (o.listen !== null && !matched.has(o)) steps.push({ kind: 'close', address: addressKey(o.listen), service: o.name });
  }
  return steps;
}

export function planReload(old: readonly ServiceShape[], next: readonly ServiceShape[]): ReloadPlan {
  const oldByName = new Map(old.map((s) => [s.name, s]));
  const nextNames = new Set(next.map((s) => s.name));
  const added: string[] = [];
  const changed: ServiceChange[] = [];
  for (const n of next) {
    const o = oldByName.get(n.name);
    if (o === undefined) {
      added.push(n.name);
      continue;
    }
    const keys = new Set([...Object.keys(o.settings), ...Object.keys(n.settings)]);
    const settings = [...keys].filter((k) => o.settings[k] !== n.settings[k]);
    if (canonical(o.listen) !== canonical(n.listen)) settings.unshift('listen');
    const backendsAdded = n.backends.filter((b) => !o.backends.includes(b));
    const backendsRemoved = o.backends.filter((b) => !n.backends.includes(b));
    if (settings.length > 0 || backendsAdded.length > 0 || backendsRemoved.length > 0) {
      changed.push({ name: n.name, settings, backendsAdded, backendsRemoved });
    }
  }
  const removed = old.filter((o) => !nextNames.has(o.name)).map((o) => o.name);
  return { added, removed, changed, listeners: planListeners(old, next) };
}

export function isEmptyPlan(plan: ReloadPlan): boolean {
  return (
    plan.added.length === 0 &&
    plan.removed.length === 0 &&
    plan.changed.length === 0 &&
    plan.listeners.every((l) => l.kind === 'keep' && l.from === l.to)
  );
}

/** One line for the log: `services +a -b ~c (persist_backend, backends +h:p -h:p); listeners +x -y, kept N`. */
export function summarizePlan(plan: ReloadPlan): string {
  if (isEmptyPlan(plan)) return 'no changes';
  const parts: string[] = [];
  const services = [
    ...plan.added.map((n) => `+${n}`),
    ...plan.removed.map((n) => `-${n}`),
    ...plan.changed.map((c) => {
      const what = [...c.settings];
      if (c.backendsAdded.length + c.backendsRemoved.length > 0) {
        what.push(`backends ${[...c.backendsAdded.map((b) => `+${b}`), ...c.backendsRemoved.map((b) => `-${b}`)].join(' ')}`);
      }
      return `~${c.name} (${what.join(', ')})`;
    }),
  ];
  if (services.length > 0) parts.push(`services ${services.join(' ')}`);
  const bound = plan.listeners.filter((l) => l.kind === 'bind').map((l) => `+${l.address}`);
  const closed = plan.listeners.filter((l) => l.kind === 'close').map((l) => `-${l.address}`);
  const moved = plan.listeners.flatMap((l) => (l.kind === 'keep' && l.from !== l.to ? [`${l.address} ${l.from}→${l.to}`] : []));
  const kept = plan.listeners.filter((l) => l.kind === 'keep').length;
  parts.push(`listeners ${[...bound, ...closed, ...moved, `kept ${kept}`].join(' ')}`);
  return parts.join('; ');
}
