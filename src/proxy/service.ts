// One service at run time: its compiled config (ServiceConfig, replaced whole by a reload) and its state
// (ServiceState: backends with their idle connections and in-flight counts, balancer, listener, counters; kept).
import type { ReproxyCache, ReproxyInstruction } from './reproxy/plan.ts';
import type { Exchange } from './exchange.ts';
import type { BackendConn } from './upstream/conn.ts';
import type { ResponseHead } from './http/response.ts';
import type { Server } from 'node:net';
import type { AccessLog } from './access-log.ts';
import type { Selector } from './contracts.ts';
import type { Engine } from './engine.ts';
import type { ResponseSuffixes } from './http/response-head.ts';
import type { HeadLimits } from './http/parser.ts';
import type { RequestHook } from './hooks.ts';
import type { AssignHooks } from './assign-hooks.ts';
import type { ThrottleState } from './throttle.ts';
import type { PluginStats } from './plugin-stats.ts';
import type { HighpriPatterns } from './plugin-options.ts';
import type { SelectorRules } from './selector.ts';
import type { ReverseProxyOptions } from './options.ts';
import type { WebServerOptions } from './webserver/options.ts';
import type { TlsListener } from './tls/context.ts';
import type { BackendTls } from './tls/upstream.ts';
import type { H2Limits } from './h2/session.ts';
import { newServiceStats, type ServiceStats } from './management/stats.ts';
import type { Sticky } from './upstream/affinity.ts';
import type { BackoffPolicy } from './upstream/health.ts';
import type { PoolHealthOptions } from './upstream/check-spec.ts';
import { newSelector } from './upstream/select.ts';
import { newUpstream, type Upstream } from './upstream/upstream.ts';
import { newWaitQueue, type WaitQueue } from './upstream/queue.ts';

/**
 * What a service's config compiles to (compile.ts): replaced whole by a reload. Everything a reload must not
 * reset belongs in ServiceState instead; nothing is listed by hand.
 */
export interface ServiceConfig {
  opts: ReverseProxyOptions;
  limits: HeadLimits;
  backoff: BackoffPolicy;
  /** The pool's active checks, slow start, 5xx streak and all_down (upstream/check-spec.ts). */
  health: PoolHealthOptions;
  /** Keep-Alive `timeout=` value sent to clients, in whole seconds. */
  keepAliveTimeoutSec: number;
  /** The last lines of client response heads, pre-encoded. */
  suffixes: ResponseSuffixes;
  /** Opened (shared by path) by whoever runs the service: startProxy, or a reload at its commit. */
  accessLog: AccessLog | null;
  /** start_http_request hooks of the plugins registered on the service (AccessControl, Redirect), in order. */
  hooks: readonly RequestHook[];
  /** backend_client_assigned hooks (XFFExtras, Queues): fields set on the backend's request; null without them. */
  assign: AssignHooks | null;
  /** The Throttle plugin on a reverse_proxy (its counters start afresh on a reload); null without it. */
  throttle: ThrottleState | null;
  /** The Stats plugin's counters (reset by a reload); null without it. */
  pstats: PluginStats | null;
  /** Highpri's patterns; null without it. A matching request waits in the queue's high-priority lane (and counts in Stats). */
  highpri: HighpriPatterns | null;
  /**
   * For a selector: its rules and every service it may hand a request to (by name, filled in once every service
   * of the config exists); null for a reverse_proxy.
   */
  selector: { rules: SelectorRules; services: ReadonlyMap<string, ServiceRuntime> } | null;
  /** For a web_server: what it serves; null for other roles. */
  web: WebServerOptions | null;
  /** A management service reached through a selector: it answers with the management port's pages. */
  management: boolean;
  /** ENABLE in the config; DISABLE on the management port clears it (the listener closes, retryBind skips it). */
  enabled: boolean;
  /** Session affinity with its key and per-backend ids (upstream/affinity.ts); null when `sticky` is off. */
  sticky: Sticky | null;
  /**
   * enable_ssl: accepted connections do their TLS handshake here first. Built by the caller from the certificate
   * files (tls/attach.ts: I/O), at start and at every reload, so renewed certificates come with the new config.
   */
  tls: TlsListener | null;
  /** backend_ssl on the pool: backend connections speak TLS with these settings (tls/upstream.ts, by the caller). */
  backendTls: BackendTls | null;
  /** ssl_http2 on a TLS listener: HTTP/2 limits (h2/session.ts); null when only HTTP/1.1 is offered. */
  h2: H2Limits | null;
  /** The reproxy-URL cache (reproxy_cache_maxsize with enable_reproxy; emptied by a reload); null when off. */
  reproxyCache: ReproxyCache | null;
  /**
   * enable_reproxy's entry points (reproxy/serve.ts REPROXY_HANDLERS), set by compile.ts; null when off. Handed in
   * rather than imported, so relay.ts does not depend on reproxy/ (no import cycle through it).
   */
  reproxy: ReproxyHandlers | null;
}

export interface ReproxyHandlers {
  /** A backend answered with reproxy instructions: free it and serve what they name. */
  takeOver(x: Exchange, be: BackendConn, res: ResponseHead, rest: Buffer, bodyStart: number, ins: ReproxyInstruction): void;
  /** Answers from the reproxy-URL cache without a backend; false when nothing live is cached for the request. */
  fromCache(x: Exchange): boolean;
}

/** What a running service holds across reloads: its identity, backends, connections' bookkeeping, listener, counters. */
export interface ServiceState {
  /** Exchanges and client connections point at the record: a reload updates it in place. */
  readonly name: string;
  readonly engine: Engine;
  /** The pool's backends; a reload keeps those that stay (idle connections, in-flight counts) and drains the rest. */
  nodes: Upstream[];
  /** The pool's balance_method, with its own state (round-robin position); kept unless the method changes. */
  balancer: Selector<Upstream>;
  /** Idle connections across nodes (backend_persist_cache and connect_ahead count these). */
  idleCount: number;
  /** connect_ahead spares being opened. */
  sparesOpening: number;
  server: Server | null;
  /** Set while the listen address is not (yet) bindable, e.g. a VIP not added yet. */
  bindError: NodeJS.ErrnoException | null;
  /** Counters for /metrics. */
  stats: ServiceStats;
  /** Reused for candidate selection, so picking a backend allocates nothing. */
  scratch: Upstream[];
  /** Requests waiting for a backend slot (max_conns), oldest first (exchange.ts queues and serves them). */
  queue: WaitQueue;
  /** A serveQueue is due on the next tick. */
  queueScheduled: boolean;
  /** queue_timeout 503s since the last warning about them, and when that was. */
  queueTimeoutsUnlogged: number;
  queueTimeoutLoggedAt: number;
}

/** One service at run time: its compiled config (replaced on reload) and its state (kept). */
export interface ServiceRuntime extends ServiceConfig, ServiceState {}

export function backoffPolicy(o: ReverseProxyOptions): BackoffPolicy {
  return {
    downBackoffMs: o.downBackoffMs,
    downBackoffMaxMs: o.downBackoffMaxMs,
    probeWindowMs: o.connectTimeoutMs + o.responseTimeoutMs,
  };
}

/** The run-time state of a service just compiled (compile.ts), for its first run. */
export function newServiceState(engine: Engine, cfg: ServiceConfig): ServiceState {
  return {
    name: cfg.opts.name,
    engine,
    nodes: cfg.opts.nodes.map((n) => newUpstream(engine, n.host, n.port, cfg.backoff, n.weight ?? 1, cfg.opts.maxConns)),
    balancer: newSelector<Upstream>(cfg.opts.balanceMethod),
    idleCount: 0,
    sparesOpening: 0,
    server: null,
    bindError: null,
    stats: newServiceStats(),
    scratch: [],
    queue: newWaitQueue(),
    queueScheduled: false,
    queueTimeoutsUnlogged: 0,
    queueTimeoutLoggedAt: -Infinity,
  };
}

export function newServiceRuntime(engine: Engine, cfg: ServiceConfig): ServiceRuntime {
  return { ...cfg, ...newServiceState(engine, cfg) };
}
