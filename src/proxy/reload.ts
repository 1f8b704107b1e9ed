// Applies a new config to a running proxy without dropping a connection (SIGHUP): everything that can fail is done
// first (compiling the services, binding new addresses), and only then, in one synchronous step, the new config
// takes over. Unchanged addresses keep their listening socket; services keep their runtime record, so backend health,
// idle keep-alive connections and requests in flight carry on. Removed backends and services finish what they carry.
import { closeSync, openSync } from 'node:fs';
import type { Server } from 'node:net';
import type { ConsolaInstance } from 'consola';
import type { HostPort, PerlbalConfig, ServiceModel } from '../config/model.ts';
import { openAccessLog, type AccessLog } from './access-log.ts';
import { retireNode } from './backend.ts';
import { drainClient } from './client.ts';
import type { Engine } from './engine.ts';
import { compileRequestHooks } from './hooks.ts';
import { isNotYetLocal, listenOn, retarget } from './listener.ts';
import { reverseProxyOptions, serviceWarnings, type ReverseProxyOptions } from './options.ts';
import { addressKey, planReload, serviceShapes, summarizePlan, type ReloadPlan } from './reload-plan.ts';
import { runRefusals, servedServices } from './roles.ts';
import { compileSelector } from './selector.ts';
import { webServerOptions } from './webserver/options.ts';
import { newServiceRuntime, type ServiceNode, type ServiceRuntime } from './service.ts';
import { tlsForService } from './tls/attach.ts';
import { backendTlsFor } from './tls/upstream.ts';
import { certificateChanges } from './tls/context.ts';

/** What a reload works on: the running proxy's state, owned by startProxy. */
export interface ReloadTarget {
  engine: Engine;
  /** The running services, in config order; replaced in place by a reload. */
  services: ServiceRuntime[];
  /** Access logs by path, shared by the services writing to them. */
  accessLogs: Map<string, AccessLog>;
  log: ConsolaInstance;
  config: PerlbalConfig;
}

export interface PendingBind {
  service: string;
  address: string;
  code: string;
}

export type ReloadOutcome =
  | { ok: true; plan: ReloadPlan; summary: string; pending: PendingBind[] }
  /** Nothing changed: the old config runs on. `errors` are `file:line: message` where a line is known. */
  | { ok: false; errors: string[] };

/** A new address not being ours yet is not an error: the HA engine binds it when it adds the VIP (as at startup). */
interface Prepared {
  model: ServiceModel;
  /** The new runtime record: a fresh one, or (for an existing service) a template merged into it on commit. */
  fresh: ServiceRuntime;
  existing: ServiceRuntime | undefined;
}

const where = (m: ServiceModel): string => `${m.loc.file}:${m.loc.line}`;

/** Compiles every service of the new config; touches nothing that runs. */
function prepare(t: ReloadTarget, next: PerlbalConfig): { prepared: Prepared[]; errors: string[] } {
  const errors = runRefusals(next.services).map((r) => `${r.loc.file}:${r.loc.line}: ${r.message}`);
  const prepared: Prepared[] = [];
  const running = new Map(t.services.map((s) => [s.name, s]));
  for (const model of servedServices(next.services)) {
    let opts: ReverseProxyOptions;
    try {
      opts = { ...reverseProxyOptions(model, next.pools), ...(model.enabled ? {} : { listen: null }) };
    } catch (error) {
      errors.push((error as Error).message);
      continue;
    }
    if (opts.accessLog !== null && opts.accessLog !== 'stdout' && !t.accessLogs.has(opts.accessLog)) {
      try {
        closeSync(openSync(opts.accessLog, 'a'));
      } catch (error) {
        errors.push(`${where(model)}: service ${model.name}: cannot open access_log ${opts.accessLog}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        continue;
      }
    }
    try {
      const fresh = newServiceRuntime(t.engine, opts, null, compileRequestHooks(model, next));
      fresh.enabled = model.enabled;
      if (model.role === 'selector') fresh.selector = { rules: compileSelector(model), services: new Map() };
      if (model.role === 'web_server') fresh.web = webServerOptions(model);
      prepared.push({ model, fresh, existing: running.get(model.name) });
    } catch (error) {
      errors.push(`${where(model)}: service ${model.name}: ${(error as Error).message}`);
      continue;
    }
    // Certificates are read again at every reload (a renewed one is served from now on); a bad one fails the reload
    // and the running certificates stay. The errors are `file:line: service S: ...` already.
    const p = prepared[prepared.length - 1]!;
    try {
      p.fresh.backendTls = backendTlsFor(next.pools.find((pool) => pool.name === model.pool), next.cwd);
      p.fresh.tls = tlsForService(model, next.cwd, p.existing ?? p.fresh, opts.headerTimeoutMs, p.existing?.tls ?? null, t.log);
    } catch (error) {
      errors.push((error as Error).message);
    }
  }
  return { prepared, errors };
}

type Bound = { kind: 'bound'; server: Server } | { kind: 'pending'; error: NodeJS.ErrnoException };

/** Binds every new address, or none: on the first real failure the ones bound so far are closed again. */
async function bindNew(
  plan: ReloadPlan,
  byName: ReadonlyMap<string, ServiceRuntime>,
  models: ReadonlyMap<string, ServiceModel>,
): Promise<{ bound: Map<string, Bound>; error: string | null }> {
  const bound = new Map<string, Bound>();
  for (const step of plan.listeners) {
    if (step.kind !== 'bind') continue;
    const svc = byName.get(step.service)!;
    const model = models.get(step.service)!;
    if (model.listen === null) continue;
    try {
      bound.set(step.service, { kind: 'bound', server: await listenOn(svc, model.listen) });
    } catch (error) {
      const err = error as NodeJS.ErrnoException;
      if (isNotYetLocal(err)) {
        bound.set(step.service, { kind: 'pending', error: err });
        continue;
      }
      for (const b of bound.values()) if (b.kind === 'bound') b.server.close();
      return { bound, error: `${where(model)}: service ${step.service}: cannot listen on ${step.address}: ${err.code ?? 'ERROR'} (${err.message})` };
    }
  }
  return { bound, error: null };
}

/**
 * The fields of a ServiceRuntime that hold run-time state rather than something derived from the config: a reload
 * keeps them (nodes and balancer are merged, see updateService) and takes every other field from the new config.
 */
export const RUNTIME_STATE = ['name', 'engine', 'nodes', 'balancer', 'idleCount', 'sparesOpening', 'server', 'bindError', 'scratch', 'stats'] as const satisfies ReadonlyArray<keyof ServiceRuntime>;

/**
 * Gives a running service its new settings, keeping what it holds at run time: its identity (exchanges and client
 * connections point at it), the nodes that stay (idle connections, in-flight counts), the listener, the
 * round-robin position unless the method changed.
 */
function updateService(svc: ServiceRuntime, fresh: ServiceRuntime): void {
  const kept = new Map(svc.nodes.map((n) => [n.key, n]));
  const nodes = fresh.nodes.map((n) => kept.get(n.key) ?? n);
  for (const n of svc.nodes) if (!nodes.includes(n)) retireNode(n);
  const balancer = svc.balancer.method === fresh.balancer.method ? svc.balancer : fresh.balancer;
  const state: Partial<ServiceRuntime> = {};
  for (const k of RUNTIME_STATE) (state as Record<string, unknown>)[k] = svc[k];
  Object.assign(svc, fresh, state, { nodes, balancer });
}

/** A service gone from the config: no new connections, no keep-alive, its requests in flight finish. */
function retireService(t: ReloadTarget, svc: ServiceRuntime): void {
  svc.opts = { ...svc.opts, persistClient: false };
  for (const n of svc.nodes) retireNode(n);
  for (const c of t.engine.clients) if (c.listener === svc) drainClient(c);
}

function accessLogFor(t: ReloadTarget, path: string | null): AccessLog | null {
  if (path === null) return null;
  let log = t.accessLogs.get(path);
  if (log === undefined) {
    log = openAccessLog(path);
    t.accessLogs.set(path, log);
  }
  return log;
}

export async function reloadProxy(t: ReloadTarget, next: PerlbalConfig): Promise<ReloadOutcome> {
  const { prepared, errors } = prepare(t, next);
  if (errors.length > 0) return { ok: false, errors };
  const plan = planReload(serviceShapes(t.config), serviceShapes(next));

  // The runtime each service will have: the running one where the name stays, else the fresh one.
  const byName = new Map(prepared.map((p) => [p.model.name, p.existing ?? p.fresh]));
  const models = new Map(prepared.map((p) => [p.model.name, p.model]));
  // New selectors may take connections as soon as their address is bound, before the commit.
  for (const p of prepared) if (p.existing === undefined && p.fresh.selector !== null) p.fresh.selector.services = byName;
  const { bound, error } = await bindNew(plan, byName, models);
  if (error !== null) return { ok: false, errors: [error] };

  // --- Commit: synchronous from here, so no connection sees half of the old config and half of the new. ---
  const oldByName = new Map(t.services.map((s) => [s.name, s]));
  const oldServer = new Map(t.services.map((s) => [s, { server: s.server, bindError: s.bindError }]));
  const toClose: Server[] = [];
  for (const step of plan.listeners) {
    if (step.kind !== 'close') continue;
    const s = oldServer.get(oldByName.get(step.service)!)!.server;
    if (s !== null) toClose.push(s);
  }
  for (const p of prepared) {
    for (const line of certificateChanges(p.model.name, p.existing?.tls ?? null, p.fresh.tls)) t.log.info(line);
    if (p.existing !== undefined) updateService(p.existing, p.fresh);
    const svc = byName.get(p.model.name)!;
    svc.accessLog = accessLogFor(t, svc.opts.accessLog);
    if (svc.selector !== null) svc.selector = { rules: svc.selector.rules, services: byName };
    svc.server = null;
    svc.bindError = null;
  }
  const pending: PendingBind[] = [];
  for (const step of plan.listeners) {
    if (step.kind === 'close') continue;
    const svc = byName.get(step.kind === 'keep' ? step.to : step.service)!;
    if (step.kind === 'keep') {
      const held = oldServer.get(oldByName.get(step.from)!)!;
      svc.server = held.server;
      svc.bindError = held.bindError;
      if (held.server !== null && step.from !== step.to) retarget(held.server, svc);
      continue;
    }
    const b = bound.get(step.service);
    if (b === undefined) continue;
    if (b.kind === 'bound') {
      svc.server = b.server;
      t.log.info(`service ${svc.name} listening on ${describeAddress(b.server, svc.opts.listen)}`);
    } else {
      svc.bindError = b.error;
      pending.push({ service: svc.name, address: step.address, code: b.error.code ?? 'ERROR' });
      t.log.warn(`service ${svc.name}: ${step.address} is not a local address yet (${b.error.code}); it will be bound when the address is added`);
    }
  }
  for (const s of toClose) s.close();
  const nextRuntimes = new Set(byName.values());
  for (const old of t.services) if (!nextRuntimes.has(old)) retireService(t, old);
  t.services.splice(0, t.services.length, ...prepared.map((p) => byName.get(p.model.name)!));
  const touched = new Set([...plan.added, ...plan.changed.map((c) => c.name)]);
  for (const p of prepared) if (touched.has(p.model.name)) for (const w of serviceWarnings(p.model, p.fresh.opts)) t.log.warn(w);
  t.config = next;
  return { ok: true, plan, summary: summarizePlan(plan), pending };
}

function describeAddress(server: Server, listen: HostPort | null): string {
  const a = server.address();
  if (typeof a === 'object' && a !== null) return `${a.address}:${a.port}`;
  return listen === null ? '?' : addressKey(listen);
}
