// The management console's view of a running proxy: figures gathered from the engine's live state on demand (no
// bookkeeping on the data path beyond the counters in stats.ts), and the changes the console may make.
import { readdirSync, readFileSync } from 'node:fs';
import type { HostPort, PerlbalConfig, PoolModel, ServiceModel } from '../../config/model.ts';
import { canonicalPlugin } from '../../config/perlbal/plugins.ts';
import { describeChange, setAdmin, setMembers, setWeight } from '../upstream/members.ts';
import { oldestWaitMs } from '../upstream/queue.ts';
import { patternsLines, recentLines, statsLines } from '../plugin-stats.ts';
import type { Engine } from '../engine.ts';
import type { ServiceRuntime } from '../service.ts';
import type { ManagementTarget } from './commands.ts';
import { NODE_STATES, type NodeReport, type NodeState, type PoolNodeUse, type ServiceDetail } from './format.ts';
import type { Configurer } from './configure.ts';
import { dumpConfig } from './dumpconfig.ts';
import type { ServiceStatus, StatusReport } from './status.ts';
import { stateMap, type ConnectionReport } from './connections.ts';
import { VERSION } from '../../version.ts';
import { responseCodeCounts, type NodeStats } from './stats.ts';
import { formatHostPort } from '../../config/perlbal/values.ts';

export interface LiveProxy {
  engine: Engine;
  /**
   * The running config and services (a reload replaces both). The config's pools are the running ones: POOL ADD and
   * REMOVE change their node lists, so a later reload plans from what really runs.
   */
  current(): { config: PerlbalConfig; services: readonly ServiceRuntime[]; parked?: ReadonlyMap<string, ServiceRuntime> };
  /** Wall-clock start, ms since the epoch. */
  startedAtMs: number;
  /** A config command run on the running config and applied as a reload (configure.ts). */
  configure: Configurer['run'];
  /** SHUTDOWN: how the program stops (null when the proxy runs inside something else, e.g. a test). */
  shutdown: ((graceful: boolean, timeoutMs: number | null) => void) | null;
  /**
   * SERVER workers, in the owner: the workers' connections merged (gathered before each answer; connections.ts), which
   * the per-connection reports show instead of the owner's own (it has none). Absent or null: this process's own.
   */
  remote?: () => ConnectionReport | null;
}


function boundAddress(svc: ServiceRuntime | undefined): string | null {
  const a = svc?.server?.address();
  return typeof a === 'object' && a !== null ? formatHostPort({ host: a.address, port: a.port }) : null;
}

function formatListen(l: HostPort | null): string | null {
  return l === null ? null : formatHostPort(l);
}

/** Engine clock (performance.now() ms) → epoch seconds. */
function epochSec(engineMs: number): number {
  return Math.floor((engineMs + Date.now() - performance.now()) / 1000);
}

function nodeReport(s: NodeStats, health: NodeReport['health']): NodeReport {
  const at = (ms: number): number | null => (ms < 0 ? null : epochSec(ms));
  return {
    ...(health === undefined ? {} : { health }),
    key: s.key,
    attempts: s.attempts,
    lastAttempt: at(s.lastAttemptMs),
    connects: s.connects,
    lastConnect: at(s.lastConnectMs),
    verifies: s.verifies,
    requests: s.requests,
    lastResponse: at(s.lastResponseMs),
    responseCodes: responseCodeCounts(s),
  };
}

function backendState(phase: string, waiting: boolean): string {
  switch (phase) {
    case 'connecting':
      return 'connecting';
    case 'verifying':
      return 'verifying_backend';
    case 'idle':
      return 'bored';
    case 'closed':
      return 'closed';
    default:
      return waiting ? 'wait_res' : 'xfer_res';
  }
}

/** The open-files hard limit and open descriptors, from /proc (Linux); null elsewhere. */
function openFiles(): { max: number; cur: number } | null {
  try {
    const limit = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'latin1'))?.[1];
    const cur = readdirSync('/proc/self/fd').length;
    return limit === undefined ? null : { max: limit === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(limit), cur };
  } catch {
    return null;
  }
}

export function liveTarget(p: LiveProxy): ManagementTarget {
  const { engine } = p;
  /** The figures of the previous `proc`, for its deltas (one for the process, as in Perlbal). */
  const lastProc = { utime: 0, stime: 0, requests: 0 };
  const models = (): readonly ServiceModel[] => p.current().config.services;
  const model = (name: string): ServiceModel | undefined => models().find((m) => m.name === name);
  /** A DISABLEd service keeps its record (parked) and its counters, as a Perlbal service object does. */
  const runtime = (name: string): ServiceRuntime | undefined => p.current().services.find((s) => s.name === name) ?? p.current().parked?.get(name);
  const poolModel = (name: string): PoolModel | undefined => p.current().config.pools.find((x) => x.name === name);
  const runtimesOfPool = (pool: string): ServiceRuntime[] => p.current().services.filter((s) => s.selector === null && s.opts.pool === pool);
  const countedForPool = (pool: string): ServiceRuntime[] => [...runtimesOfPool(pool), ...[...(p.current().parked?.values() ?? [])].filter((s) => s.selector === null && s.opts.pool === pool)];
  /** Perlbal's node_used is per pool: requests the services of the pool sent to the node. */
  const poolUse = (pool: PoolModel): PoolNodeUse[] =>
    pool.nodes.map(({ host, port }) => {
      const key = formatHostPort({ host, port });
      let used = 0;
      for (const s of countedForPool(pool.name)) for (const n of s.nodes) if (n.key === key) used += n.used;
      return { key, used };
    });
  /** A node's admin state as its services hold it (the first one not ready wins), and its health. */
  const adminOf = (key: string): string => {
    let admin = 'ready';
    for (const s of p.current().services) for (const n of s.nodes) if (n.key === key && n.admin !== 'ready') admin = n.admin;
    return admin;
  };
  // tsbal's lines (node state, pool state counts) appear where they say what Perlbal's output cannot: the address
  // is checked, or not simply up and ready. A config Perlbal could run, with every backend fine, reads as in Perlbal.
  const healthOf = (key: string): NodeReport['health'] => {
    const h = engine.health.get(key);
    if (h === undefined) return undefined;
    const admin = adminOf(key);
    if (h.checkers === 0 && h.checks === 0 && h.state === 'up' && admin === 'ready') return undefined;
    return { state: h.state, admin, lastCheck: h.lastCheck };
  };
  const poolStates = (pool: PoolModel): Record<NodeState, number> | undefined => {
    const counts = Object.fromEntries(NODE_STATES.map((st) => [st, 0])) as Record<NodeState, number>;
    let tsbalOnly = p.current().services.some((s) => s.selector === null && s.opts.pool === pool.name && s.health.check !== null);
    for (const { host, port } of pool.nodes) {
      const key = formatHostPort({ host, port });
      const admin = adminOf(key);
      const st = (admin !== 'ready' ? admin : (engine.health.get(key)?.state ?? 'up')) as NodeState;
      if (st !== 'up') tsbalOnly = true;
      counts[st]++;
    }
    return tsbalOnly ? counts : undefined;
  };
  /** A backend's weight in the first running service that has it (for `nodes`). */
  const weightOf = (key: string): { weight?: number } => {
    for (const s of p.current().services) for (const n of s.nodes) if (n.key === key) return { weight: n.weight };
    return {};
  };
  const enabled = (m: ServiceModel): boolean => m.enabled;
  /** Clients of `svc` waiting for a backend; with `high`, only the high-priority (true) or normal (false) ones. */
  const waitingClients = (svc: ServiceRuntime, high?: boolean): number => {
    let n = 0;
    for (const c of engine.clients) {
      const x = c.x;
      if (c.svc === svc && x !== null && x.be === null && x.phase !== 'done' && (high === undefined || x.highPriority === high)) n++;
    }
    return n;
  };

  const remote = (): ConnectionReport | null => p.remote?.() ?? null;
  const remoteService = (name: string) => remote()?.services.find((s) => s.name === name);

  const detail = (m: ServiceModel): ServiceDetail => {
    const role = m.role ?? '';
    const svc = runtime(m.name);
    const http = role === 'reverse_proxy' || role === 'web_server';
    let pending: ServiceDetail['pending'] = http ? { clients: 0, backends: 0, connects: [] } : null;
    const far = remote() === null ? undefined : (remoteService(m.name) ?? null);
    if (far !== undefined) {
      if (pending !== null && far?.pending != null) pending = far.pending;
    } else if (svc !== undefined && pending !== null) {
      const seen = new Map<string, { key: string; state: string; ageSec: number }>();
      for (const be of engine.backends) {
        if (be.svc !== svc || (be.phase !== 'connecting' && be.phase !== 'verifying') || seen.has(be.node.key)) continue;
        const startedMs = be.deadline - svc.opts.connectTimeoutMs;
        seen.set(be.node.key, { key: be.node.key, state: backendState(be.phase, false), ageSec: Math.max(0, Math.floor((engine.now - startedMs) / 1000)) });
      }
      pending = { clients: waitingClients(svc), backends: svc.nodes.reduce((a, n) => a + n.opening, 0), connects: [...seen.values()] };
    }
    const setting = svc?.opts.connectAhead ?? (typeof m.options.connect_ahead === 'number' ? m.options.connect_ahead : 0);
    const idle = far !== undefined ? (far?.idle ?? 0) : (svc?.idleCount ?? 0);
    const connectAhead = role === 'reverse_proxy' ? { idle, setting } : null;
    const pool = role === 'reverse_proxy' && m.pool !== null ? poolModel(m.pool) : undefined;
    return {
      name: m.name,
      listen: formatListen(m.listen),
      role,
      pending,
      connectAhead,
      pool: pool === undefined ? null : { name: pool.name, nodes: poolUse(pool) },
    };
  };

  const perListener = (): Map<ServiceRuntime, number> => {
    const counts = new Map<ServiceRuntime, number>();
    for (const c of engine.clients) counts.set(c.listener, (counts.get(c.listener) ?? 0) + 1);
    // SERVER workers: the owner's clients are the workers' (workers/counters.ts).
    if (engine.remoteClients !== null) for (const svc of p.current().services) counts.set(svc, engine.remoteClients.get(svc.name) ?? 0);
    return counts;
  };
  const latency = (v: number): number | null => (v < 0 ? null : Math.round(v * 10) / 10);
  const statusReport = (): StatusReport => {
    const clients = perListener();
    const far = remote();
    const nowSec = Date.now() / 1000;
    return {
      version: VERSION,
      pid: process.pid,
      startedEpochSec: Math.floor(p.startedAtMs / 1000),
      uptimeSec: Math.max(0, Math.floor(nowSec - p.startedAtMs / 1000)),
      services: models().map((m): ServiceStatus => {
        const svc = runtime(m.name);
        const st = svc?.stats;
        const r = st?.responses ?? [0, 0, 0, 0, 0, 0];
        const pool = m.role === 'reverse_proxy' && m.pool !== null ? poolModel(m.pool) : undefined;
        const farIdle = far === null ? null : new Map(far.services.find((x) => x.name === m.name)?.idleByNode ?? []);
        return {
          name: m.name,
          role: m.role ?? '',
          listen: formatListen(m.listen),
          enabled: m.enabled,
          listening: m.role === 'management' ? m.enabled : svc?.server != null,
          bound: boundAddress(svc),
          running: m.role === 'management' ? m.enabled : svc !== undefined && p.current().services.includes(svc),
          clients: svc === undefined ? 0 : (clients.get(svc) ?? 0),
          responses: { '1xx': r[1]!, '2xx': r[2]!, '3xx': r[3]!, '4xx': r[4]!, '5xx': r[5]!, other: r[0]! },
          requests: r.reduce((a, b) => a + b, 0),
          errors: r[5]! + (st?.connectFailures ?? 0),
          retries: st?.retries ?? 0,
          connectFailures: st?.connectFailures ?? 0,
          latencyMs: st === undefined ? null : latency(st.latencyMs),
          pool: pool?.name ?? null,
          balanceMethod: pool?.balance_method ?? null,
          backends: (svc?.nodes ?? []).map((n) => ({
            address: n.key,
            health: n.health.state,
            admin: n.admin,
            active: n.active,
            idle: farIdle === null ? n.idle.length : (farIdle.get(n.key) ?? 0),
            requests: n.used,
            failures: n.stats.connectFailures,
            latencyMs: latency(n.stats.latencyMs),
            lastResponseAgoSec: n.stats.lastResponseMs < 0 ? null : Math.max(0, Math.floor((engine.now - n.stats.lastResponseMs) / 1000)),
          })),
        };
      }),
    };
  };

  return {
    services: () => models().map((m) => ({ name: m.name, listen: formatListen(m.listen), enabled: enabled(m) })),
    service: (name) => {
      const m = model(name);
      return m === undefined ? null : detail(m);
    },
    pools: () =>
      p.current().config.pools.map((pool) => ({
        name: pool.name,
        nodes: pool.nodes.length,
        services: models().filter((m) => m.role === 'reverse_proxy' && m.pool === pool.name).length,
        ...((st) => (st === undefined ? {} : { states: st }))(poolStates(pool)),
      })),
    pool: (name) => {
      const pool = poolModel(name);
      return pool === undefined ? null : poolUse(pool);
    },
    nodes: () => [...engine.nodeStats.values()].map((s) => ({ ...nodeReport(s, healthOf(s.key)), ...weightOf(s.key) })),
    node: (key) => {
      const s = engine.nodeStats.get(key);
      return s === undefined ? null : { ...nodeReport(s, healthOf(key)), ...weightOf(key) };
    },
    states: (name) => {
      let svc: ServiceRuntime | undefined;
      if (name !== null && model(name) === undefined) return null;
      const far = remote();
      if (far !== null) return stateMap(name === null ? far.states : (far.services.find((s) => s.name === name)?.states ?? []));
      if (name !== null) {
        svc = runtime(name);
        if (svc === undefined) return new Map();
      }
      const counts = new Map<string, Map<string, number>>();
      const add = (cls: string, state: string): void => {
        const m = counts.get(cls) ?? new Map<string, number>();
        m.set(state, (m.get(state) ?? 0) + 1);
        counts.set(cls, m);
      };
      for (const be of engine.backends) {
        if (svc !== undefined && be.svc !== svc) continue;
        const waiting = be.exchange !== null && (be.exchange.phase === 'dispatch' || be.exchange.phase === 'request');
        add('Perlbal::BackendHTTP', backendState(be.phase, waiting));
      }
      for (const c of engine.clients) {
        if (svc !== undefined && c.svc !== svc) continue;
        const x = c.x;
        const state =
          c.phase === 'closing' ? 'draining_res'
          : c.phase === 'closed' ? 'closed'
          : c.phase === 'tunnel' ? 'xfer_res'
          : x === null || x.phase === 'done' ? (c.requests > 0 && !c.headStarted ? 'persist_wait' : 'reading_headers')
          : x.be === null ? 'wait_backend'
          : x.res === null ? 'backend_req_sent'
          : 'xfer_res';
        add('Perlbal::ClientProxy', state);
      }
      return counts;
    },
    queues: () =>
      models()
        .filter((m) => m.role === 'reverse_proxy')
        .map((m) => {
          const far = remote();
          if (far !== null) return far.queues.find((q) => q.service === m.name) ?? { service: m.name, normal: { age: 0, count: 0 }, highpri: { age: 0, count: 0 } };
          const svc = runtime(m.name);
          // count: clients waiting for a backend (queued for a max_conns slot, or while one connects), as Perlbal.
          if (svc === undefined) return { service: m.name, normal: { age: 0, count: 0 }, highpri: { age: 0, count: 0 } };
          const age = (lane: 'high' | 'normal'): number => Math.floor(oldestWaitMs(svc.queue, engine.now, lane) / 1000);
          return {
            service: m.name,
            normal: { age: age('normal'), count: waitingClients(svc, false) },
            highpri: { age: age('high'), count: waitingClients(svc, true) },
          };
        }),
    backends: () => {
      const far = remote();
      if (far !== null) return far.backends;
      const counts = new Map<string, number>();
      for (const be of engine.backends) counts.set(be.node.key, (counts.get(be.node.key) ?? 0) + 1);
      return [...counts];
    },
    noVerify: () => [...engine.noVerify].map(([key, until]) => [key, Math.max(0, Math.ceil((until - engine.now) / 1000))]),
    pending: () => {
      const far = remote();
      if (far !== null) return far.pending;
      const out = new Map<string, { service: string; key: string; ageSec: number }>();
      for (const be of engine.backends) {
        if (be.phase !== 'connecting' && be.phase !== 'verifying') continue;
        const ageSec = Math.max(0, Math.floor((engine.now - (be.deadline - be.svc.opts.connectTimeoutMs)) / 1000));
        const k = `${be.svc.name} ${be.node.key}`;
        if ((out.get(k)?.ageSec ?? -1) < ageSec) out.set(k, { service: be.svc.name, key: be.node.key, ageSec });
      }
      return [...out.values()];
    },
    pluginReport: (word) => {
      const loaded = p.current().config.loadedPlugins.map((n) => n.toLowerCase());
      const services = p.current().services;
      if ((word === 'stats' || word === 'recent') && loaded.includes('stats')) {
        const list = services.flatMap((s) => (s.pstats === null ? [] : [[s.name, s.pstats] as const]));
        return word === 'stats' ? statsLines(list) : recentLines(list);
      }
      if (word === 'patterns' && loaded.includes('highpri')) return patternsLines(services.flatMap((s) => (s.highpri === null ? [] : [[s.name, s.highpri] as const])));
      return null;
    },
    plugins: () => models().filter((m) => m.plugins.length > 0).map((m) => [m.name, m.plugins.map((x) => canonicalPlugin(x) ?? x)]),
    proc: () => {
      const cpu = process.cpuUsage();
      const utime = cpu.user / 1e6;
      const stime = cpu.system / 1e6;
      let requests = 0;
      for (const s of p.current().services) for (const n of s.stats.responses) requests += n;
      const report = {
        nowEpochSec: Math.floor(Date.now() / 1000),
        pid: process.pid,
        utime,
        utimeDelta: Math.round((utime - lastProc.utime) * 1e6) / 1e6,
        stime,
        stimeDelta: Math.round((stime - lastProc.stime) * 1e6) / 1e6,
        requests,
        requestsDelta: requests - lastProc.requests,
      };
      Object.assign(lastProc, { utime, stime, requests });
      return report;
    },
    fds: openFiles,
    startEpochSec: () => Math.floor(p.startedAtMs / 1000),
    nowEpochSec: () => Math.floor(Date.now() / 1000),
    hasService: (name) => model(name) !== undefined,
    hasPool: (name) => poolModel(name) !== undefined,
    changePool: (name, op, host, port, weight) => {
      const pool = poolModel(name)!;
      const key = formatHostPort({ host, port });
      pool.nodes = pool.nodes.filter((n) => n.host !== host || n.port !== port);
      if (op === 'add') pool.nodes.push(weight === undefined ? { host, port } : { host, port, weight });
      // A removed backend drains (members.ts): requests in flight finish, then its connections close.
      for (const svc of runtimesOfPool(name)) {
        const change = setMembers(svc, pool.nodes);
        if (change.removed.length + change.added.length + change.reweighted.length > 0) engine.log.info(`service ${svc.name}: POOL ${name} ${op.toUpperCase()} ${key}: ${describeChange(change)}`);
      }
      return null;
    },
    setMember: (name, key, change) => {
      const pool = poolModel(name)!;
      const node = pool.nodes.find((n) => formatHostPort(n) === key);
      if (node === undefined) return `${key} is not in pool '${name}'`;
      if ('weight' in change) node.weight = change.weight;
      for (const svc of runtimesOfPool(name)) {
        const u = svc.nodes.find((n) => n.key === key);
        if (u === undefined) continue;
        if ('weight' in change) setWeight(svc, u, change.weight);
        else setAdmin(svc, u, change.admin);
      }
      const what = 'weight' in change ? `weight ${change.weight}${change.weight === 0 ? ' (draining)' : ''}` : change.admin;
      engine.log.info(`pool ${name}: backend ${key} ${what} (management port)`);
      return null;
    },
    status: () => statusReport(),
    configure: (line, ctx) => p.configure(line, ctx),
    dumpconfig: () => dumpConfig(p.current().config),
    shutdown: (graceful, timeoutSec) => {
      const stop = p.shutdown;
      if (stop === null) return 'shutdown is not available: this proxy was not started by tsbal run';
      // After the answer has been written.
      setImmediate(() => stop(graceful, timeoutSec === null ? null : timeoutSec * 1000));
      return null;
    },
  };
}
