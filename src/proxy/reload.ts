// Applies a new config to a running proxy without dropping a connection (SIGHUP): everything that can fail is done
// first (compiling the services, binding new addresses), and only then, in one synchronous step, the new config
// takes over. Unchanged addresses keep their listening socket; services keep their runtime record, so backend health,
// idle keep-alive connections and requests in flight carry on. Removed backends and services finish what they carry.
import { closeSync, openSync } from 'node:fs';
import type { Server } from 'node:net';
import type { ConsolaInstance } from 'consola';
import type { HostPort, PerlbalConfig, ServiceModel } from '../config/model.ts';
import { openAccessLog, type AccessLog } from './access-log.ts';
import { closeIdle } from './upstream/conn.ts';
import { describeChange, setMembers } from './upstream/members.ts';
import { drainClient } from './client.ts';
import { goAwaySessions } from './h2/session.ts';
import type { Engine } from './engine.ts';
import { compileService } from './compile.ts';
import { isNotYetLocal, listenOn, retarget } from './listener.ts';
import { serviceWarnings } from './options.ts';
import { addressKey, planReload, serviceShapes, summarizePlan, type ReloadPlan } from './reload-plan.ts';
import { runRefusals, servedServices } from './roles.ts';
import { newServiceRuntime, type ServiceConfig, type ServiceRuntime } from './service.ts';
import { newSelector } from './upstream/select.ts';
import { attachTls, pointTlsAt } from './tls/attach.ts';
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
  /**
   * Services that left the running set (DISABLEd, or gone from the file), by name: one that comes back takes its
   * record again, so its counters carry on as a Perlbal service's do across DISABLE and ENABLE.
   */
  parked?: Map<string, ServiceRuntime>;
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

interface Prepared {
  model: ServiceModel;
  /** The service's new compiled config. */
  config: ServiceConfig;
  /** The running service of that name (updated in place on commit), if any. */
  existing: ServiceRuntime | undefined;
}

const where = (m: ServiceModel): string => `${m.loc.file}:${m.loc.line}`;

/** Compiles every service of the new config; touches nothing that runs. */
function prepare(t: ReloadTarget, next: PerlbalConfig): { prepared: Prepared[]; errors: string[] } {
  const errors = runRefusals(next.services).map((r) => `${r.loc.file}:${r.loc.line}: ${r.message}`);
  const prepared: Prepared[] = [];
  const running = new Map([...(t.parked ?? new Map<string, ServiceRuntime>()), ...t.services.map((s) => [s.name, s] as const)]);
  for (const model of servedServices(next.services)) {
    let config: ServiceConfig;
    try {
      config = compileService(model, next, t.engine.affinityKey);
    } catch (error) {
      // Messages that carry their own file:line go as they are.
      const message = (error as Error).message;
      errors.push(/^\S+:\d+: /.test(message) ? message : `${where(model)}: service ${model.name}: ${message}`);
      continue;
    }
    const opts = config.opts;
    if (opts.accessLog !== null && opts.accessLog !== 'stdout' && !t.accessLogs.has(opts.accessLog)) {
      try {
        closeSync(openSync(opts.accessLog, 'a'));
      } catch (error) {
        errors.push(`${where(model)}: service ${model.name}: cannot open access_log ${opts.accessLog}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        continue;
      }
    }
    const existing = running.get(model.name);
    // Certificates are read again at every reload (a renewed one is served from now on); a bad one fails the reload
    // and the running certificates stay. The errors are `file:line: ...` already.
    try {
      attachTls(config, model, next, t.engine.now, existing?.tls ?? null, t.log);
    } catch (error) {
      errors.push((error as Error).message);
      continue;
    }
    prepared.push({ model, config, existing });
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
 * Gives a running service its new config, keeping its state (ServiceState): its identity (exchanges and client
 * connections point at it), the nodes that stay (idle connections, in-flight counts) while the others drain, the
 * listener, the balancer's position unless the method changed. The config is replaced whole.
 */
function updateService(svc: ServiceRuntime, cfg: ServiceConfig): void {
  if (svc.balancer.method !== cfg.opts.balanceMethod) svc.balancer = newSelector(cfg.opts.balanceMethod);
  Object.assign(svc, cfg);
  const change = setMembers(svc, cfg.opts.nodes);
  if (change.added.length + change.removed.length + change.reweighted.length > 0) svc.engine.log.info(`service ${svc.name}: reload: ${describeChange(change)}`);
}

/** A service gone from the config: no new connections, no keep-alive, its requests in flight finish. */
function retireService(t: ReloadTarget, svc: ServiceRuntime): void {
  // Its backends stay selectable for the requests it still carries (a retry may go to another one of them); no
  // connection to them is kept after use, no spare is opened, the idle ones close now.
  svc.opts = { ...svc.opts, persistClient: false, persistBackend: false, connectAhead: 0 };
  for (const n of svc.nodes) closeIdle(n);
  for (const c of t.engine.clients) if (c.listener === svc) drainClient(c);
  goAwaySessions(svc.h2Sessions);
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
  const byName = new Map(prepared.map((p) => [p.model.name, p.existing ?? newServiceRuntime(t.engine, p.config)]));
  const models = new Map(prepared.map((p) => [p.model.name, p.model]));
  // A new service's listener may be bound (and take connections) before the commit; a running one's new TLS
  // listener is reachable only after it.
  for (const p of prepared) pointTlsAt(p.config.tls, byName.get(p.model.name)!);
  // New selectors may take connections as soon as their address is bound, before the commit.
  for (const p of prepared) {
    const svc = byName.get(p.model.name)!;
    if (p.existing === undefined && svc.selector !== null) svc.selector.services = byName;
  }
  const { bound, error } = await bindNew(plan, byName, models);
  if (error !== null) return { ok: false, errors: [error] };

  // --- Commit: synchronous from here, so no connection sees half of the old config and half of the new. ---
  t.engine.configGeneration++;
  const oldByName = new Map(t.services.map((s) => [s.name, s]));
  const oldServer = new Map(t.services.map((s) => [s, { server: s.server, bindError: s.bindError }]));
  const toClose: Server[] = [];
  for (const step of plan.listeners) {
    if (step.kind !== 'close') continue;
    const s = oldServer.get(oldByName.get(step.service)!)!.server;
    if (s !== null) toClose.push(s);
  }
  for (const p of prepared) {
    for (const line of certificateChanges(p.model.name, p.existing?.tls ?? null, p.config.tls)) t.log.info(line);
    if (p.existing !== undefined) updateService(p.existing, p.config);
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
  for (const old of t.services) {
    if (nextRuntimes.has(old)) continue;
    retireService(t, old);
    t.parked?.set(old.name, old);
  }
  for (const svc of nextRuntimes) if (t.parked?.get(svc.name) === svc) t.parked.delete(svc.name);
  t.services.splice(0, t.services.length, ...prepared.map((p) => byName.get(p.model.name)!));
  const touched = new Set([...plan.added, ...plan.changed.map((c) => c.name)]);
  for (const p of prepared) if (touched.has(p.model.name)) for (const w of serviceWarnings(p.model, p.config.opts)) t.log.warn(w);
  t.config = next;
  return { ok: true, plan, summary: summarizePlan(plan), pending };
}

function describeAddress(server: Server, listen: HostPort | null): string {
  const a = server.address();
  if (typeof a === 'object' && a !== null) return `${a.address}:${a.port}`;
  return listen === null ? '?' : addressKey(listen);
}
