// What `tsbal status` shows, read from the running process: this node's HA role, the peer, each VIP and who holds
// it, every service with its backends' health and load, and the recent transitions. Plain data (it crosses the
// status socket as JSON, and `tsbal status --json` prints it as it is).
import type { HaDirConfig } from '../config/model.ts';
import type { HaStatus } from '../ha/cluster.ts';
import { doublyHeld, homesHeld, holdWords, rstateWords } from '../ha/status-view.ts';
import type { ProxyHandle } from '../proxy/index.ts';
import type { ServiceRuntime } from '../proxy/service.ts';
import { recentTransitions, type Transition } from './transitions.ts';
import type { AnycastStatus } from '../anycast/announcer.ts';
import { formatHostPort } from '../config/perlbal/values.ts';

export interface BackendStatus {
  address: string;
  /** The health state (up, starting, down, ...), as the proxy keeps it. */
  health: string;
  /** The operator's state: ready, drain, maint. */
  admin: string;
  inFlight: number;
  /** Response heads received from it (all services). */
  requests: number;
  /** Connects and verify probes that failed (all services). */
  errors: number;
  /** Why it went down last (while down). */
  lastFailure: string | null;
  /** While down and not actively checked: in how many ms a request may try it again. */
  retryInMs: number | null;
  /** The last active check's answer (`200`, `connect ECONNREFUSED`); null: no active check watches it. */
  lastCheck: string | null;
  weight: number;
}

export interface ServiceStatus {
  name: string;
  role: 'reverse_proxy' | 'selector' | 'web_server' | 'management';
  /** `host:port` as configured; null for a selector target that does not listen. */
  listen: string | null;
  /** listening, waiting (address not local yet: a VIP this node does not hold), disabled, or none (no listen). */
  listening: 'listening' | 'waiting' | 'disabled' | 'none';
  pool: string | null;
  balance: string | null;
  backends: BackendStatus[];
}

export interface VipStatus {
  /** `198.18.0.99/24 on eth0`, as haresources says it. */
  address: string;
  /** The node whose resource group it is (haresources' first column). */
  home: string;
  /** Who holds it now, as far as this node knows; null: nobody. */
  holder: string | null;
}

export interface HaSummary {
  node: string;
  role: 'active' | 'standby';
  /** `its own resources (home lb1)` */
  holds: string;
  /** `settled`, or what it is doing. */
  state: string;
  peer: { name: string; status: string; heardMsAgo: number | null; deadtimeMs: number; holds: string };
  vips: VipStatus[];
  /** Homes whose resources both nodes hold (a split brain); empty normally. */
  splitBrain: string[];
}

/** SERVER workers: the processes that serve. */
export interface WorkersStatus {
  /** Configured worker processes; 1 when this process serves itself. */
  count: number;
  /** true: one process (no SERVER workers); `list` is empty. */
  thisProcess: boolean;
  /** Deaths followed by a restart, all workers. */
  restarts: number;
  list: Array<{ index: number; pid: number | null; state: 'ready' | 'starting'; uptimeS: number; restarts: number }>;
}

export interface StatusSnapshot {
  pid: number;
  version: string;
  /** Wall clock of the snapshot, ms. */
  at: number;
  uptimeS: number;
  config: string;
  /** null: no HA engine (no ha.cf); `error` when it did not answer. */
  ha: HaSummary | { error: string } | null;
  /** Anycast mode: announced or not and why; null (or absent, from an older tsbal) outside it. */
  anycast?: AnycastStatus | null;
  /** The serving processes (absent from an older tsbal). */
  workers?: WorkersStatus;
  services: ServiceStatus[];
  transitions: Transition[];
}

export function workersStatus(proxy: ProxyHandle, at: number): WorkersStatus {
  const info = proxy.engine.workers?.() ?? null;
  if (info === null) return { count: 1, thisProcess: true, restarts: 0, list: [] };
  return {
    count: info.configured,
    thisProcess: false,
    restarts: info.workers.reduce((n, w) => n + w.restarts, 0),
    list: info.workers.map((w) => ({ index: w.index, pid: w.pid, state: w.state, uptimeS: w.pid === null ? 0 : Math.max(0, Math.round((at - w.startedAt) / 1000)), restarts: w.restarts })),
  };
}

function roleOfService(s: ServiceRuntime): ServiceStatus['role'] {
  return s.web !== null ? 'web_server' : s.selector !== null ? 'selector' : 'reverse_proxy';
}

function serviceStatus(s: ServiceRuntime, now: number): ServiceStatus {
  const listen = s.opts.listen === null ? null : formatHostPort(s.opts.listen);
  const hasPool = s.web === null && s.selector === null;
  return {
    name: s.name,
    role: roleOfService(s),
    listen,
    listening: listen === null ? 'none' : s.server !== null ? 'listening' : !s.enabled ? 'disabled' : 'waiting',
    pool: hasPool ? s.opts.pool : null,
    balance: hasPool ? s.balancer.method : null,
    backends: s.nodes.map((u) => ({
      address: u.key,
      health: u.health.state,
      admin: u.admin,
      inFlight: u.active,
      requests: u.stats.requests,
      errors: u.stats.connectFailures,
      lastFailure: u.health.state === 'down' ? u.health.lastFailure : null,
      retryInMs: u.health.state === 'down' && u.health.checkers === 0 ? Math.max(0, Math.round(u.health.retryAt - now)) : null,
      lastCheck: u.health.checkers > 0 ? (u.health.lastCheck ?? 'not checked yet') : null,
      weight: u.weight,
    })),
  };
}

/** The VIPs of haresources and who holds each: this node when its group is up here, else the peer if it claims it. */
export function vipHolders(config: HaDirConfig, s: HaStatus): VipStatus[] {
  const peerHomes = s.peer.status === 'dead' ? [] : homesHeld(s.peer.holds, s.peer.name, s.node);
  const out: VipStatus[] = [];
  for (const g of config.haresources.groups) {
    const holder = s.resources.up.includes(g.key) ? s.node : peerHomes.includes(g.node) ? s.peer.name : null;
    for (const r of g.resources) {
      if (r.kind !== 'ip') continue;
      const address = `${r.ip}${r.cidr === null ? '' : `/${r.cidr}`}${r.iface === null ? '' : ` on ${r.iface}`}`;
      out.push({ address, home: g.node, holder });
    }
  }
  return out;
}

export function haSummary(config: HaDirConfig, s: HaStatus): HaSummary {
  const r = s.resources;
  return {
    node: s.node,
    // Active when it holds a resource group for real: a node whose `local` claim covers no group (lb2 of a
    // one-VIP pair) is the standby, whatever heartbeat's hold word says.
    role: config.haresources.groups.some((g) => r.up.includes(g.key)) ? 'active' : 'standby',
    holds: holdWords(r.hold, s.node, s.peer.name),
    state: r.stable ? 'settled' : rstateWords(r.state),
    peer: {
      name: s.peer.name,
      status: s.peer.status,
      heardMsAgo: s.peer.heardMsAgo === null ? null : Math.round(s.peer.heardMsAgo),
      deadtimeMs: s.peer.deadtimeMs,
      holds: holdWords(s.peer.holds, s.peer.name, s.node),
    },
    vips: vipHolders(config, s),
    splitBrain: doublyHeld(s),
  };
}

export interface SnapshotSources {
  proxy: ProxyHandle;
  /** The HA engine of this process, if it runs one. */
  ha: { config: HaDirConfig; status(): Promise<HaStatus> } | null;
  anycast?: () => AnycastStatus | null;
  config: string;
  version: string;
  startedAtMs: number;
}

export async function takeSnapshot(src: SnapshotSources): Promise<StatusSnapshot> {
  let ha: StatusSnapshot['ha'] = null;
  if (src.ha !== null) {
    try {
      ha = haSummary(src.ha.config, await src.ha.status());
    } catch (error) {
      ha = { error: (error as Error).message };
    }
  }
  const proxy = src.proxy;
  const now = proxy.engine.now;
  const services = proxy.services.map((s) => serviceStatus(s, now));
  // Management services are run apart from the HTTP ones: their listeners and pending binds name them.
  const known = new Set(services.map((s) => s.name));
  for (const l of proxy.listeners()) {
    if (known.has(l.service)) continue;
    known.add(l.service);
    services.push({ name: l.service, role: 'management', listen: formatHostPort(l), listening: 'listening', pool: null, balance: null, backends: [] });
  }
  for (const p of proxy.pendingBinds()) {
    if (known.has(p.service)) continue;
    services.push({ name: p.service, role: 'management', listen: formatHostPort(p), listening: 'waiting', pool: null, balance: null, backends: [] });
  }
  const at = Date.now();
  return {
    pid: process.pid,
    version: src.version,
    at,
    uptimeS: Math.round((at - src.startedAtMs) / 1000),
    config: src.config,
    ha,
    anycast: src.anycast?.() ?? null,
    workers: workersStatus(proxy, at),
    services,
    transitions: recentTransitions(proxy.engine.transitions),
  };
}
