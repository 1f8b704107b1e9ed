// The management services' listening sockets: one console per enabled management service of the config, bound like
// the HTTP services (an address that is not local yet, e.g. a VIP, waits for the HA engine's retryBind).
import type { ConsolaInstance } from 'consola';
import type { HostPort } from '../../config/model.ts';
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

/**
 * A console for each enabled management service of the running config. They read the running state through `live`,
 * so they report what a reload put in place; a changed management service itself needs a restart.
 */
export function newConsoles(
  live: ReloadTarget,
  bind: (svc: ServiceRuntime) => Promise<void>,
  shutdown: ((graceful: boolean, timeoutMs: number | null) => void) | null,
  extraMetrics: (() => Promise<MetricFamily[]>) | null = null,
): ConsoleListener[] {
  const startedAtMs = Date.now();
  const target = liveTarget({ engine: live.engine, current: () => ({ config: live.config, services: live.services }), startedAtMs, bind, shutdown });
  const metrics = async (): Promise<MetricFamily[]> => [...engineMetrics(live.engine, live.services, startedAtMs), ...(extraMetrics === null ? [] : await extraMetrics())];
  return live.config.services
    .filter((m) => m.role === 'management' && m.enabled && m.listen !== null)
    .map((m) => ({
      name: m.name,
      listen: m.listen!,
      console: newConsole({ target, http: (method, path) => managementHttp(target, method, path, metrics) }),
      bound: false,
      bindError: null,
    }));
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
