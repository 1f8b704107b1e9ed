// Who is in a service's pool, and the operator's say over each member: the one place that adds, re-weighs, drains
// and removes backends, used alike by a reload, POOL ADD/REMOVE and `pool <p> drain|maint|ready|weight` on the
// management port, and a nodefile change. A backend that leaves is drained, never cut: no new requests, requests
// in flight finish, its idle connections close now and its busy ones once their response is out (pool.ts parkIdle).
import type { AdminState } from '../contracts.ts';
import type { PoolNode } from '../../config/model.ts';
import type { ServiceRuntime } from '../service.ts';
import { closeIdle, retireNode } from './conn.ts';
import { newUpstream, type Upstream } from './upstream.ts';
import { formatHostPort } from '../../config/perlbal/values.ts';

export interface MembershipChange {
  added: string[];
  removed: string[];
  /** `ip:port` whose weight changed, with the new weight. */
  reweighted: Array<[string, number]>;
}

/**
 * Makes `svc.nodes` the pool's `nodes`, in their order: backends that stay keep their record (idle connections,
 * in-flight count, admin state) with the new weight, new ones are added, the others drain. A backend listed twice
 * (Perlbal keeps nodefile duplicates) is one member, with the first line's weight.
 */
export function setMembers(svc: ServiceRuntime, nodes: readonly PoolNode[]): MembershipChange {
  const change: MembershipChange = { added: [], removed: [], reweighted: [] };
  const kept = new Map(svc.nodes.map((u) => [u.key, u]));
  const next: Upstream[] = [];
  const seen = new Set<string>();
  for (const n of nodes) {
    const key = formatHostPort(n);
    if (seen.has(key)) continue;
    seen.add(key);
    const weight = n.weight ?? 1;
    let u = kept.get(key);
    if (u === undefined) {
      u = newUpstream(svc.engine, n.host, n.port, svc.backoff, weight, svc.opts.maxConns);
      change.added.push(key);
    } else {
      u.maxConns = svc.opts.maxConns;
      if (u.weight !== weight) {
        setWeight(svc, u, weight);
        change.reweighted.push([key, weight]);
      }
    }
    next.push(u);
  }
  for (const u of svc.nodes) {
    if (seen.has(u.key)) continue;
    retire(svc, u);
    change.removed.push(u.key);
  }
  svc.nodes = next;
  return change;
}

/** Out of the pool: drained (see the file's head), and forgotten by the policy. */
export function retire(svc: ServiceRuntime, u: Upstream): void {
  retireNode(u);
  svc.balancer.upstreamDown?.(u);
}

/** `pool <p> weight <ip:port> <N>`; weight 0 drains it (idle connections close; it comes back with a weight > 0). */
export function setWeight(svc: ServiceRuntime, u: Upstream, weight: number): void {
  u.weight = weight;
  if (weight === 0) closeIdle(u);
  svc.balancer.weightChanged?.(u);
}

/**
 * `pool <p> ready|drain|maint <ip:port>`. drain and maint both take no new requests and close idle connections;
 * requests in flight finish either way. They differ for session affinity (a pinned client keeps a draining backend,
 * not one in maintenance).
 */
export function setAdmin(svc: ServiceRuntime, u: Upstream, admin: AdminState): void {
  if (u.admin === admin) return;
  u.admin = admin;
  if (admin === 'ready') {
    svc.balancer.upstreamUp?.(u);
    return;
  }
  closeIdle(u);
  svc.balancer.upstreamDown?.(u);
}

export function describeChange(c: MembershipChange): string {
  const parts: string[] = [];
  if (c.added.length > 0) parts.push(`added ${c.added.join(', ')}`);
  if (c.removed.length > 0) parts.push(`draining ${c.removed.join(', ')}`);
  if (c.reweighted.length > 0) parts.push(`weight ${c.reweighted.map(([k, w]) => `${k}=${w}`).join(', ')}`);
  return parts.length === 0 ? 'no change' : parts.join('; ');
}
