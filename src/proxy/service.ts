// One service at run time: its compiled config (ServiceConfig, replaced whole by a reload) and its state
// (ServiceState: backends with their idle connections and in-flight counts, balancer, listener, counters; kept).
import type { Engine, ServiceConfig, ServiceState, ServiceRuntime } from './records.ts';
import type { ReverseProxyOptions } from './options.ts';
import { newServiceStats } from './management/stats.ts';
import type { BackoffPolicy } from './upstream/health.ts';
import { newSelector } from './upstream/select.ts';
import { newUpstream, type Upstream } from './upstream/upstream.ts';
import { newWaitQueue } from './upstream/queue.ts';

// Declared in records.ts with the other records that name each other (so no import cycle); re-exported here.
export type { ServiceConfig, ServiceState, ServiceRuntime, ReproxyHandlers } from './records.ts';

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
    h2Sessions: new Set(),
  };
}

export function newServiceRuntime(engine: Engine, cfg: ServiceConfig): ServiceRuntime {
  return { ...cfg, ...newServiceState(engine, cfg) };
}
