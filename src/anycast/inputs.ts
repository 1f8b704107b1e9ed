// What the announce decision needs, read from the running proxy: each enabled service that listens on the VIP (or on
// its family's wildcard, 0.0.0.0 or ::, which takes the VIP's traffic too), whether it is bound, and how many of its
// backends can take a request.
import type { ProxyHandle } from '../proxy/index.ts';
import type { ServiceRuntime } from '../proxy/service.ts';
import type { Upstream } from '../proxy/upstream/upstream.ts';
import type { ServiceOnVip } from './decide.ts';
import { wildcardOf } from '../config/perlbal/values.ts';

/**
 * A backend that may take a new request: health up or starting, admin ready, weight above 0. A backend that active
 * checks watch and that has not been checked yet does not count: at start, health begins `up` before the first
 * check, and a node must not announce into backends it has not seen answer.
 */
export function backendCanServe(u: Upstream): boolean {
  const h = u.health;
  if (u.admin !== 'ready' || u.weight <= 0 || h.state === 'down') return false;
  return h.checkers === 0 || h.checks > 0;
}

/** A listen on the VIP itself or on its family's wildcard (hosts are canonical: the config parser made them so). */
function onVip(host: string, vipHost: string): boolean {
  return host === vipHost || host === wildcardOf(vipHost);
}

function serviceOnVip(s: ServiceRuntime): ServiceOnVip {
  const needsBackends = s.web === null && s.selector === null && !s.management;
  let healthy = 0;
  if (needsBackends) for (const u of s.nodes) if (backendCanServe(u)) healthy++;
  return { name: s.name, listening: s.server !== null, needsBackends, healthy, total: s.nodes.length };
}

/** The services the decision weighs, in config order; management services (run apart) by their listeners. */
export function servicesOnVip(proxy: ProxyHandle, vipHost: string): ServiceOnVip[] {
  const out: ServiceOnVip[] = [];
  const known = new Set<string>();
  for (const s of proxy.services) {
    known.add(s.name);
    const listen = s.opts.listen;
    if (!s.enabled || listen === null || !onVip(listen.host, vipHost)) continue;
    out.push(serviceOnVip(s));
  }
  for (const l of proxy.listeners()) {
    if (known.has(l.service) || !onVip(l.host, vipHost)) continue;
    known.add(l.service);
    out.push({ name: l.service, listening: true, needsBackends: false, healthy: 0, total: 0 });
  }
  for (const p of proxy.pendingBinds()) {
    if (known.has(p.service) || !onVip(p.host, vipHost)) continue;
    known.add(p.service);
    out.push({ name: p.service, listening: false, needsBackends: false, healthy: 0, total: 0 });
  }
  return out;
}
