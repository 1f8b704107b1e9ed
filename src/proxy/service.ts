// One reverse_proxy service at run time: its options, its backends (each with this service's idle connections and
// in-flight count, and the engine-wide health of that ip:port), its balancer and its listener.
import type { Server } from 'node:net';
import type { AccessLog } from './access-log.ts';
import type { BackendConn } from './backend.ts';
import { newBalancer, type Balancer } from './balance.ts';
import type { Engine } from './engine.ts';
import { responseSuffixes, type ResponseSuffixes } from './http/response-head.ts';
import type { HeadLimits } from './http/parser.ts';
import type { RequestHook } from './hooks.ts';
import type { SelectorRules } from './selector.ts';
import type { ReverseProxyOptions } from './options.ts';
import type { WebServerOptions } from './webserver/options.ts';
import type { TlsListener } from './tls/context.ts';
import type { BackendTls } from './tls/upstream.ts';
import { newNodeStats, newServiceStats, type NodeStats, type ServiceStats } from './management/stats.ts';
import { newUpstreamHealth, type BackoffPolicy, type UpstreamHealth } from './upstream-state.ts';

export interface ServiceNode {
  key: string;
  host: string;
  port: number;
  health: UpstreamHealth;
  stats: NodeStats;
  /** Requests this service sent to this backend (Perlbal's node_used, shown by `show pool`). */
  used: number;
  /** Idle keep-alive connections of this service to this backend; the most recently used on top. */
  idle: BackendConn[];
  /** Connections being opened (connecting or verifying). */
  opening: number;
  /** Requests in flight (leastconn). */
  active: number;
  /** Removed by a reload: its connections finish what they carry, then close instead of idling. */
  retired: boolean;
}

/** A field holding run-time state (not derived from the config) must be listed in reload.ts RUNTIME_STATE. */
export interface ServiceRuntime {
  name: string;
  opts: ReverseProxyOptions;
  engine: Engine;
  nodes: ServiceNode[];
  balancer: Balancer;
  limits: HeadLimits;
  backoff: BackoffPolicy;
  /** Keep-Alive `timeout=` value sent to clients, in whole seconds. */
  keepAliveTimeoutSec: number;
  /** The last lines of client response heads, pre-encoded. */
  suffixes: ResponseSuffixes;
  /** Idle connections across nodes (backend_persist_cache and connect_ahead count these). */
  idleCount: number;
  /** connect_ahead spares being opened. */
  sparesOpening: number;
  accessLog: AccessLog | null;
  /** start_http_request hooks of the plugins registered on the service (AccessControl, Redirect), in order. */
  hooks: readonly RequestHook[];
  /** For a selector: its rules and every service it may hand a request to (by name); null for a reverse_proxy. */
  selector: { rules: SelectorRules; services: ReadonlyMap<string, ServiceRuntime> } | null;
  /** For a web_server: what it serves; null for other roles. */
  web: WebServerOptions | null;
  server: Server | null;
  /** backend_ssl on the pool: backend connections speak TLS with these settings; null for plain HTTP. */
  backendTls: BackendTls | null;
  /** enable_ssl: accepted connections do their TLS handshake here first (replaced by a reload, certificates too). */
  tls: TlsListener | null;
  /** Set while the listen address is not (yet) bindable, e.g. a VIP not added yet. */
  bindError: NodeJS.ErrnoException | null;
  /** ENABLE in the config; DISABLE on the management port clears it (the listener closes, retryBind skips it). */
  enabled: boolean;
  /** Counters for /metrics (run-time state: RUNTIME_STATE keeps them across a reload). */
  stats: ServiceStats;
  /** Reused for candidate selection, so picking a backend allocates nothing. */
  scratch: ServiceNode[];
}

export function backoffPolicy(o: ReverseProxyOptions): BackoffPolicy {
  return {
    downBackoffMs: o.downBackoffMs,
    downBackoffMaxMs: o.downBackoffMaxMs,
    probeWindowMs: o.connectTimeoutMs + o.responseTimeoutMs,
  };
}

/** Backend health is per ip:port and shared across services, so a backend found dead by one is avoided by all. */
function healthFor(engine: Engine, key: string, policy: BackoffPolicy): UpstreamHealth {
  let h = engine.health.get(key);
  if (h === undefined) {
    h = newUpstreamHealth(key, policy);
    engine.health.set(key, h);
  }
  return h;
}

/** A backend of a service: its engine-wide health and counters, its own idle connections. */
export function newServiceNode(engine: Engine, host: string, port: number, backoff: BackoffPolicy): ServiceNode {
  const key = `${host}:${port}`;
  let stats = engine.nodeStats.get(key);
  if (stats === undefined) {
    stats = newNodeStats(key);
    engine.nodeStats.set(key, stats);
  }
  return { key, host, port, health: healthFor(engine, key, backoff), stats, used: 0, idle: [], opening: 0, active: 0, retired: false };
}

export function newServiceRuntime(
  engine: Engine,
  opts: ReverseProxyOptions,
  accessLog: AccessLog | null,
  hooks: readonly RequestHook[] = [],
): ServiceRuntime {
  const backoff = backoffPolicy(opts);
  const nodes = opts.nodes.map((n) => newServiceNode(engine, n.host, n.port, backoff));
  return {
    name: opts.name,
    opts,
    engine,
    nodes,
    balancer: newBalancer(opts.balanceMethod),
    limits: { maxHeaderSize: opts.maxHeaderSize, maxHeaderCount: opts.maxHeaderCount, maxUrlLength: opts.maxUrlLength },
    backoff,
    keepAliveTimeoutSec: Math.round(opts.persistClientIdleTimeoutMs / 1000),
    suffixes: responseSuffixes(Math.round(opts.persistClientIdleTimeoutMs / 1000)),
    idleCount: 0,
    sparesOpening: 0,
    accessLog,
    hooks,
    selector: null,
    web: null,
    server: null,
    tls: null,
    backendTls: null,
    bindError: null,
    enabled: true,
    stats: newServiceStats(),
    scratch: [],
  };
}
