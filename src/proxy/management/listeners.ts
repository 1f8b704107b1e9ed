// The management services' listening sockets: one console per enabled management service of the config, bound like
// the HTTP services (an address that is not local yet, e.g. a VIP, waits for the HA engine's retryBind).
import type { ConsolaInstance } from 'consola';
import type { HostPort, PerlbalConfig, ServiceModel } from '../../config/model.ts';
import { bindOrDefer, listenServer } from '../listener.ts';
import type { ReloadTarget } from '../reload.ts';
import type { ServiceRuntime } from '../service.ts';
import { newConsole, type ManagementConsole } from './console.ts';
import { managementHttp } from './http.ts';
import { liveTarget } from './live.ts';
import { engineMetrics, type MetricFamily } from './metrics.ts';

export interface ConsoleListener {
  name: string;
  listen: HostPort;
  console: ManagementConsole;
  bound: boolean;
  /** The error of the last bind that found the address not local yet. */
  bindError: NodeJS.ErrnoException | null;
}

/** The management services a config runs a console for: enabled, with an address. */
export function managementServices(config: PerlbalConfig): ServiceModel[] {
  return config.services.filter((m) => m.role === 'management' && m.enabled && m.listen !== null);
}

/**
 * Makes the console of one management service. Every console reads the running state through `live`, so it reports
 * what a reload put in place.
 */
export function consoleMaker(
  live: ReloadTarget,
  bind: (svc: ServiceRuntime) => Promise<void>,
  shutdown: ((graceful: boolean, timeoutMs: number | null) => void) | null,
  extraMetrics: (() => Promise<MetricFamily[]>) | null = null,
): (m: ServiceModel) => ConsoleListener {
  const startedAtMs = Date.now();
  const target = liveTarget({ engine: live.engine, current: () => ({ config: live.config, services: live.services }), startedAtMs, bind, shutdown });
  const metrics = async (): Promise<MetricFamily[]> => [...engineMetrics(live.engine, live.services, startedAtMs), ...(extraMetrics === null ? [] : await extraMetrics())];
  return (m) => ({
    name: m.name,
    listen: m.listen!,
    console: newConsole({ target, http: (method, path) => managementHttp(target, method, path, metrics) }),
    bound: false,
    bindError: null,
  });
}

/** What a reload does to the consoles: the same address keeps its socket (even renamed), others open or close. */
export interface ConsolePlan {
  keep: Array<{ console: ConsoleListener; name: string }>;
  open: ServiceModel[];
  close: ConsoleListener[];
}

const sameAddress = (c: ConsoleListener, m: ServiceModel): boolean =>
  m.listen !== null &&
  c.listen.host === m.listen.host &&
  c.listen.port === m.listen.port &&
  // Port 0 got a port of its own: only the same service's port 0 is the same listener.
  (m.listen.port !== 0 || c.name === m.name);

/** Matches the running consoles to the management services of the next config (pure). */
export function planConsoles(running: readonly ConsoleListener[], next: readonly ServiceModel[]): ConsolePlan {
  const plan: ConsolePlan = { keep: [], open: [], close: [] };
  const matched = new Set<ConsoleListener>();
  for (const m of next) {
    const c = running.find((r) => !matched.has(r) && sameAddress(r, m));
    if (c === undefined) {
      plan.open.push(m);
      continue;
    }
    matched.add(c);
    plan.keep.push({ console: c, name: m.name });
  }
  plan.close = running.filter((c) => !matched.has(c));
  return plan;
}

/** One clause for the reload's log line: `management +127.0.0.1:9001 -127.0.0.1:9000`, or '' when nothing moves. */
export function summarizeConsolePlan(plan: ConsolePlan): string {
  const renamed = plan.keep.filter((k) => k.console.name !== k.name).map((k) => `${k.console.listen.host}:${k.console.listen.port} ${k.console.name}→${k.name}`);
  const moves = [...plan.open.map((m) => `+${m.listen!.host}:${m.listen!.port}`), ...plan.close.map((c) => `-${c.listen.host}:${c.listen.port}`), ...renamed];
  return moves.length === 0 ? '' : `management ${moves.join(' ')}`;
}

/** Binds the consoles not bound yet; those whose address is not local yet are returned. Other errors throw. */
export async function bindConsoles(consoles: readonly ConsoleListener[], log: ConsolaInstance): Promise<Array<{ service: string; host: string; port: number; code: string }>> {
  const pending: Array<{ service: string; host: string; port: number; code: string }> = [];
  for (const c of consoles) {
    if (c.bound) continue;
    const { host, port } = c.listen;
    const r = await bindOrDefer(c.name, c.listen, async () => {
      await listenServer(c.console.server, c.listen);
      return c.console.server;
    });
    if (r.pending === undefined) {
      c.bound = true;
      c.bindError = null;
      log.info(`service ${c.name} listening on ${r.address} (management)`);
    } else {
      const code = r.pending.code ?? 'ERROR';
      if (c.bindError === null) log.warn(`service ${c.name}: ${host}:${port} is not a local address yet (${code}); the management port opens when it is added`);
      c.bindError = r.pending;
      pending.push({ service: c.name, host, port, code });
    }
  }
  return pending;
}

/** Stops accepting and ends the console connections (end, not destroy: a SHUTDOWN's OK may still be on its way). */
export function closeConsoles(consoles: readonly ConsoleListener[]): void {
  for (const c of consoles) {
    if (c.bound) c.console.server.close();
    c.bound = false;
    for (const s of c.console.sockets) s.end();
  }
}
