// SERVER workers: the figures the management port reports, taken in each worker (takeCounters) and summed into the
// owner's own records (applyCounters). The owner serves no traffic, so its counters are only what this writes: the
// console, /metrics, /status and `tsbal status` then read the owner's records unchanged and see every worker.
// Times cross processes as epoch milliseconds (each process's engine clock starts at its own birth).
import type { Engine } from '../engine.ts';
import type { ServiceRuntime } from '../service.ts';
import { RESPONSE_WINDOW, type NodeStats, type ServiceStats } from '../management/stats.ts';
import type { HealthState } from '../upstream/health.ts';

export interface ServiceCounters {
  name: string;
  stats: ServiceStats;
  queueTimeouts: number;
  queued: number;
  /** Open client connections this service accepted. */
  clients: number;
  nodes: Array<{ key: string; used: number; active: number }>;
}

export interface NodeCounters {
  key: string;
  attempts: number;
  lastAttemptAt: number;
  connects: number;
  lastConnectAt: number;
  verifies: number;
  requests: number;
  lastResponseAt: number;
  connectFailures: number;
  latencyMs: number;
  /** The remembered status codes, oldest first. */
  codes: number[];
}

/** A worker's view of one backend address's health (what its own traffic saw, beside the owner's checks). */
export interface HealthCounters {
  key: string;
  state: HealthState;
  failures: number;
  lastFailure: string | null;
  downs: number;
  ups: number;
}

export interface WorkerCounters {
  services: ServiceCounters[];
  nodes: NodeCounters[];
  health: HealthCounters[];
}

/** Engine clock ms → epoch ms (-1 stays -1: never). */
function toEpoch(engineMs: number): number {
  return engineMs < 0 ? -1 : engineMs + Date.now() - performance.now();
}

function toEngine(epochMs: number): number {
  return epochMs < 0 ? -1 : epochMs - Date.now() + performance.now();
}

function orderedCodes(s: NodeStats): number[] {
  const out: number[] = [];
  const start = s.codeCount < RESPONSE_WINDOW ? 0 : s.codeNext;
  for (let i = 0; i < s.codeCount; i++) out.push(s.codes[(start + i) % RESPONSE_WINDOW]!);
  return out;
}

/** In a worker: its counters now. */
export function takeCounters(engine: Engine, services: readonly ServiceRuntime[]): WorkerCounters {
  const clients = new Map<ServiceRuntime, number>();
  for (const c of engine.clients) clients.set(c.listener, (clients.get(c.listener) ?? 0) + 1);
  return {
    services: services.map((svc) => ({
      name: svc.name,
      stats: { ...svc.stats, responses: [...svc.stats.responses] },
      queueTimeouts: svc.queue.timeouts,
      queued: svc.queue.queued,
      clients: clients.get(svc) ?? 0,
      nodes: svc.nodes.map((n) => ({ key: n.key, used: n.used, active: n.active })),
    })),
    nodes: [...engine.nodeStats.values()].map((s) => ({
      key: s.key,
      attempts: s.attempts,
      lastAttemptAt: toEpoch(s.lastAttemptMs),
      connects: s.connects,
      lastConnectAt: toEpoch(s.lastConnectMs),
      verifies: s.verifies,
      requests: s.requests,
      lastResponseAt: toEpoch(s.lastResponseMs),
      connectFailures: s.connectFailures,
      latencyMs: s.latencyMs,
      codes: orderedCodes(s),
    })),
    health: [...engine.health.values()].map((h) => ({ key: h.key, state: h.state, failures: h.failures, lastFailure: h.lastFailure, downs: h.downs, ups: h.ups })),
  };
}

/** A weighted mean of smoothed latencies (-1: none known), weighted by how many exchanges each timed. */
function meanLatency(parts: Array<{ latencyMs: number; weight: number }>): number {
  let sum = 0;
  let weight = 0;
  for (const p of parts) {
    if (p.latencyMs < 0) continue;
    const w = Math.max(1, p.weight);
    sum += p.latencyMs * w;
    weight += w;
  }
  return weight === 0 ? -1 : sum / weight;
}

/**
 * In the owner: its records become the sum of `workers` (the latest counters of each live worker, and the last ones
 * of workers that died, so counters never go back).
 */
export function applyCounters(engine: Engine, services: readonly ServiceRuntime[], workers: readonly WorkerCounters[]): void {
  const clients = new Map<string, number>();
  for (const svc of services) {
    const parts = workers.flatMap((w) => w.services.filter((s) => s.name === svc.name));
    const st = svc.stats;
    st.responses = [0, 0, 0, 0, 0, 0];
    st.responseBytes = st.retries = st.connectFailures = st.timed = st.latencySumMs = 0;
    let queueTimeouts = 0;
    let queued = 0;
    for (const p of parts) {
      p.stats.responses.forEach((n, i) => (st.responses[i] = (st.responses[i] ?? 0) + n));
      st.responseBytes += p.stats.responseBytes;
      st.retries += p.stats.retries;
      st.connectFailures += p.stats.connectFailures;
      st.timed += p.stats.timed;
      st.latencySumMs += p.stats.latencySumMs;
      queueTimeouts += p.queueTimeouts;
      queued += p.queued;
      clients.set(svc.name, (clients.get(svc.name) ?? 0) + p.clients);
    }
    st.latencyMs = meanLatency(parts.map((p) => ({ latencyMs: p.stats.latencyMs, weight: p.stats.timed })));
    svc.queue.timeouts = queueTimeouts;
    svc.queue.queued = queued;
    for (const n of svc.nodes) {
      n.used = 0;
      n.active = 0;
      for (const p of parts) {
        for (const pn of p.nodes) {
          if (pn.key !== n.key) continue;
          n.used += pn.used;
          n.active += pn.active;
        }
      }
    }
  }
  engine.remoteClients = clients;
  for (const s of engine.nodeStats.values()) {
    const parts = workers.flatMap((w) => w.nodes.filter((x) => x.key === s.key));
    s.attempts = s.connects = s.verifies = s.requests = s.connectFailures = 0;
    let lastAttempt = -1;
    let lastConnect = -1;
    let lastResponse = -1;
    const codes: number[] = [];
    for (const p of parts) {
      s.attempts += p.attempts;
      s.connects += p.connects;
      s.verifies += p.verifies;
      s.requests += p.requests;
      s.connectFailures += p.connectFailures;
      lastAttempt = Math.max(lastAttempt, p.lastAttemptAt);
      lastConnect = Math.max(lastConnect, p.lastConnectAt);
      lastResponse = Math.max(lastResponse, p.lastResponseAt);
      codes.push(...p.codes);
    }
    s.lastAttemptMs = toEngine(lastAttempt);
    s.lastConnectMs = toEngine(lastConnect);
    s.lastResponseMs = toEngine(lastResponse);
    s.latencyMs = meanLatency(parts.map((p) => ({ latencyMs: p.latencyMs, weight: p.requests })));
    const kept = codes.slice(-RESPONSE_WINDOW);
    s.codes.fill(0);
    kept.forEach((c, i) => (s.codes[i] = c));
    s.codeCount = kept.length;
    s.codeNext = kept.length % RESPONSE_WINDOW;
  }
  // Health states follow the workers' transitions (owner.ts); the failure count and cause, the latest worker's view.
  for (const h of engine.health.values()) {
    if (h.checkers > 0) continue;
    let worst: HealthCounters | null = null;
    for (const w of workers) for (const x of w.health) if (x.key === h.key && (worst === null || x.failures > worst.failures)) worst = x;
    if (worst === null) continue;
    h.failures = worst.failures;
    h.lastFailure = worst.lastFailure;
  }
}
