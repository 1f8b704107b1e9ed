// The management services' listening sockets: one console per enabled management service of the config, bound like
// the HTTP services (an address that is not local yet, e.g. a VIP, waits for the HA engine's retryBind).
import type { ConsolaInstance } from 'consola';
import type { HostPort, PerlbalConfig } from '../../config/model.ts';
import { bindOrDefer, listenServer } from '../listener.ts';
import type { ReloadTarget } from '../reload.ts';
import type { Configurer } from './configure.ts';
import { newConsole, type ManagementConsole } from './console.ts';
import { managementHttp } from './http.ts';
import { liveTarget } from './live.ts';
import type { ConnectionReport } from './connections.ts';
import type { ManagementTarget } from './commands.ts';
import { engineMetrics, type MetricFamily } from './metrics.ts';
import { formatHostPort } from '../../config/perlbal/values.ts';

export interface ConsoleListener {
  name: string;
  /** The role it serves, for logs: `management`, or `echo` (src/proxy/echo.ts, bound the same way). */
  role: string;
  listen: HostPort;
  console: ManagementConsole;
  bound: boolean;
  /** The error of the last bind that found the address not local yet. */
  bindError: NodeJS.ErrnoException | null;
}

/** The consoles of a running proxy: one per enabled management service, following the config as it changes. */
export interface Consoles {
  list: ConsoleListener[];
  /** A new, unbound console for a management service. */
  make(name: string, listen: HostPort): ConsoleListener;
  /** The HTTP pages, also served to a selector that hands a request to a management service. */
  pages(method: string, path: string): Promise<{ head: string; body: string }>;
  /** What the consoles read and change (SERVER workers: a worker applies the owner's POOL and node changes to it). */
  target: ManagementTarget;
}

/** SERVER workers, in the owner: gather the workers' counters before answering; send them each live change. */
export interface ConsoleFanOut {
  /** Gathers the workers' counters and connections (connections.ts) before an answer. */
  before(): Promise<void>;
  /** The workers' connections as gathered by the last `before`. */
  connections(): ConnectionReport | null;
  mirror(change: MirroredChange): void;
}

/** A console change made on the running state (not through a reload), repeated in every worker. */
export type MirroredChange =
  | { kind: 'changePool'; args: Parameters<ManagementTarget['changePool']> }
  | { kind: 'setMember'; args: Parameters<ManagementTarget['setMember']> };

export function applyMirroredChange(target: ManagementTarget, change: MirroredChange): void {
  if (change.kind === 'changePool') target.changePool(...change.args);
  else target.setMember(...change.args);
}

/**
 * A console for each enabled management service of the running config. They read the running state through `live`,
 * so they report what a reload or a console command put in place; `syncConsoles` follows management services that
 * appear, move or go.
 */
export function newConsoles(
  live: ReloadTarget,
  configure: Configurer['run'],
  shutdown: ((graceful: boolean, timeoutMs: number | null) => void) | null,
  extraMetrics: (() => Promise<MetricFamily[]>) | null = null,
  fanOut: ConsoleFanOut | null = null,
): Consoles {
  const startedAtMs = Date.now();
  const target = liveTarget({ engine: live.engine, current: () => ({ config: live.config, services: live.services, ...(live.parked === undefined ? {} : { parked: live.parked }) }), startedAtMs, configure, shutdown, ...(fanOut === null ? {} : { remote: () => fanOut.connections() }) });
  if (fanOut !== null) {
    const { changePool, setMember } = target;
    target.changePool = (...args) => {
      const r = changePool(...args);
      if (r === null) fanOut.mirror({ kind: 'changePool', args });
      return r;
    };
    target.setMember = (...args) => {
      const r = setMember(...args);
      if (r === null) fanOut.mirror({ kind: 'setMember', args });
      return r;
    };
  }
  const before = fanOut === null ? undefined : () => fanOut.before();
  const metrics = async (): Promise<MetricFamily[]> => [...engineMetrics(live.engine, live.services, startedAtMs, fanOut?.connections()?.backendStates ?? null), ...(extraMetrics === null ? [] : await extraMetrics())];
  const pages = async (method: string, path: string) => {
    await before?.();
    return managementHttp(target, method, path, metrics);
  };
  const make = (name: string, listen: HostPort): ConsoleListener => ({
    name,
    role: 'management',
    listen,
    console: newConsole({ target, http: pages, ...(before === undefined ? {} : { before }) }),
    bound: false,
    bindError: null,
  });
  const list = managementServices(live.config).map((m) => make(m.name, m.listen));
  return { list, make, pages, target };
}

function managementServices(config: PerlbalConfig): Array<{ name: string; listen: HostPort }> {
  return config.services
    .filter((m) => m.role === 'management' && m.enabled && m.listen !== null)
    .map((m) => ({ name: m.name, listen: m.listen! }));
}

const sameAddress = (a: HostPort, b: HostPort): boolean => a.host === b.host && a.port === b.port;

/** What syncConsoles did: bind errors (nothing else changed for those), and the changes, for the reload's log line. */
export interface ConsoleSync {
  errors: string[];
  /** `+127.0.0.1:9001`, `-127.0.0.1:9000`, `127.0.0.1:9000 mgmt→admin`. */
  changes: string[];
}

/**
 * After a reload or a console command: management services that appeared get a console, one whose address changed
 * gets its new socket bound before the old one closes (a failed bind keeps the old one), one renamed on the same
 * address keeps its socket, one that went away stops listening. Its open connections carry on after a console
 * command (one of them may have sent it); a reload (`endConnections`) ends them, as it does for any removed service.
 */
export async function syncConsoles(consoles: Consoles, config: PerlbalConfig, log: ConsolaInstance, opts: { endConnections?: boolean } = {}): Promise<ConsoleSync> {
  const wanted = managementServices(config);
  const errors: string[] = [];
  const changes: string[] = [];
  const next: ConsoleListener[] = [];
  const where = (l: HostPort): string => formatHostPort(l);
  for (const w of wanted) {
    const have = consoles.list.find((c) => c.name === w.name);
    if (have !== undefined && sameAddress(have.listen, w.listen)) {
      next.push(have);
      continue;
    }
    // Renamed in place: the socket on that address stays (binding it again would find it taken). Port 0 is this
    // service's own port, never another's.
    const renamed = w.listen.port === 0 ? undefined : consoles.list.find((c) => !next.includes(c) && !wanted.some((o) => o.name === c.name) && sameAddress(c.listen, w.listen));
    if (renamed !== undefined) {
      changes.push(`${where(w.listen)} ${renamed.name}→${w.name}`);
      renamed.name = w.name;
      next.push(renamed);
      continue;
    }
    const fresh = consoles.make(w.name, w.listen);
    try {
      await bindConsoles([fresh], log);
    } catch (error) {
      // bindOrDefer's message: `service <name>: cannot listen on <address>: <CODE> (<text>)`.
      errors.push((error as Error).message);
      if (have !== undefined) next.push(have);
      continue;
    }
    changes.push(`+${where(w.listen)}`);
    next.push(fresh);
  }
  for (const c of consoles.list) {
    if (next.includes(c)) continue;
    changes.push(`-${where(c.listen)}`);
    if (c.bound) {
      c.console.server.close();
      c.bound = false;
      log.info(`service ${c.name}: stopped listening on ${where(c.listen)} (management)`);
    }
    if (opts.endConnections === true) for (const sock of c.console.sockets) sock.end();
  }
  consoles.list.splice(0, consoles.list.length, ...next);
  return { errors, changes };
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
      log.info(`service ${c.name} listening on ${r.address} (${c.role})`);
    } else {
      const code = r.pending.code ?? 'ERROR';
      if (c.bindError === null) log.warn(`service ${c.name}: ${formatHostPort({ host, port })} is not a local address yet (${code}); the ${c.role === 'management' ? 'management port' : `${c.role} service`} opens when it is added`);
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
