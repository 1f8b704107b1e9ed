// The text of Perlbal 1.80's management reports (Perlbal.pm MANAGE_*, Service.pm stats_info), from plain records.
// Pure: callers gather the figures; these functions only lay them out, line by line, without the closing `.`.

export interface ServiceListEntry {
  name: string;
  /** As configured (`ip:port`), or null for a service that does not listen. */
  listen: string | null;
  enabled: boolean;
}

/** `show service`: one line per service, sorted by name. */
export function serviceList(services: readonly ServiceListEntry[]): string[] {
  return [...services]
    .sort((a, b) => cmp(a.name, b.name))
    .map((s) => `${s.name} ${s.listen ?? 'not_listening'} ${s.enabled ? 'ENABLED' : 'DISABLED'}`);
}

export interface PendingConnect {
  key: string;
  /** `connecting` or `verifying_backend`. */
  state: string;
  ageSec: number;
}

export interface PoolNodeUse {
  key: string;
  used: number;
}

export interface ServiceDetail {
  name: string;
  listen: string | null;
  role: string;
  /** reverse_proxy and web_server only. */
  pending: { clients: number; backends: number; connects: PendingConnect[] } | null;
  /** reverse_proxy only: idle backend connections and the connect_ahead setting. */
  connectAhead: { idle: number; setting: number } | null;
  pool: { name: string; nodes: PoolNodeUse[] } | null;
}

/** `show service <name>` (Service.pm stats_info): labels right-aligned so the colons line up in column 15. */
export function serviceDetail(s: ServiceDetail): string[] {
  const out = [`SERVICE ${s.name}`, `     listening: ${s.listen ?? '--'}`, `          role: ${s.role}`];
  if (s.pending !== null) {
    out.push(`  pend clients: ${s.pending.clients}`, `  pend backend: ${s.pending.backends}`);
    for (const p of [...s.pending.connects].sort((a, b) => cmp(a.key, b.key))) out.push(`   ${p.key} - ${p.state} - ${p.ageSec}s`);
  }
  if (s.connectAhead !== null) out.push(` connect-ahead: ${s.connectAhead.idle}/${s.connectAhead.setting}`);
  if (s.pool !== null) {
    out.push(`          pool: ${s.pool.name}`, '         nodes:');
    for (const n of s.pool.nodes) out.push(`                ${n.key.padEnd(21)} ${String(n.used).padStart(7)}`);
  }
  return out;
}

export interface PoolSummary {
  name: string;
  nodes: number;
  /** Services using the pool. */
  services: number;
  /** tsbal: how many of its nodes are in each state (admin drain/maint first, else health up/starting/down). */
  states?: Readonly<Record<NodeState, number>>;
}

/** What `show pool` and `nodes` call a backend's state. */
export type NodeState = 'up' | 'starting' | 'down' | 'drain' | 'maint';
export const NODE_STATES: readonly NodeState[] = ['up', 'starting', 'down', 'drain', 'maint'];

/**
 * `show pool`: Perlbal's two lines per pool, sorted by name; tsbal adds one line per node state in the same
 * `<pool> <key> <n>` shape after them, so scripts picking `nodes` / `services` out are unaffected.
 */
export function poolList(pools: readonly PoolSummary[]): string[] {
  return [...pools].sort((a, b) => cmp(a.name, b.name)).flatMap((p) => [
    `${p.name} nodes ${p.nodes}`,
    `${p.name} services ${p.services}`,
    ...(p.states === undefined ? [] : NODE_STATES.map((st) => `${p.name} ${st} ${p.states![st]}`)),
  ]);
}

/** `show pool <name>`: each node, in pool order, with its use count. */
export function poolNodes(nodes: readonly PoolNodeUse[]): string[] {
  return nodes.map((n) => `${n.key} ${n.used}`);
}

export interface NodeReport {
  key: string;
  attempts: number;
  /** Epoch seconds, or null when it never happened. */
  lastAttempt: number | null;
  connects: number;
  lastConnect: number | null;
  verifies: number;
  requests: number;
  lastResponse: number | null;
  /** [status, count] over the remembered window. */
  responseCodes: ReadonlyArray<readonly [number, number]>;
  /** tsbal: health (up|starting|down), admin state, the last check's answer (null: not checked). */
  health?: { state: string; admin: string; lastCheck: string | null };
  /** tsbal: weight in the pool that has it (the first running service's view). */
  weight?: number;
}

/**
 * `nodes` / `node ip:port` (MANAGE_nodes): `<ip:port> <stat> <value>`, only the stats that have happened (Perlbal's
 * hash has no key until then). Perlbal's order is hash order; this one is fixed.
 */
export function nodeLines(n: NodeReport): string[] {
  const out: string[] = [];
  const add = (stat: string, v: number | null): void => {
    if (v !== null && v !== 0) out.push(`${n.key} ${stat} ${v}`);
  };
  add('attempts', n.attempts);
  add('lastattempt', n.lastAttempt);
  add('connects', n.connects);
  add('lastconnect', n.lastConnect);
  add('verifies', n.verifies);
  add('requests', n.requests);
  add('lastresponse', n.lastResponse);
  for (const [code, count] of n.responseCodes) out.push(`${n.key} responsecodes ${code} ${count}`);
  // tsbal's stats, in the same `<ip:port> <stat> <value>` shape (one token: spaces of a check answer become _).
  if (n.health !== undefined) {
    out.push(`${n.key} state ${n.health.state}`, `${n.key} admin ${n.health.admin}`);
    if (n.health.lastCheck !== null) out.push(`${n.key} lastcheck ${n.health.lastCheck.replace(/\s+/g, '_')}`);
  }
  // tsbal: the weight where it is not the default 1.
  if (n.weight !== undefined && n.weight !== 1) out.push(`${n.key} weight ${n.weight}`);
  return out;
}

/** `states`: `<Class> <state> <count>`, classes then states sorted. */
export function stateLines(counts: ReadonlyMap<string, ReadonlyMap<string, number>>): string[] {
  const out: string[] = [];
  for (const cls of [...counts.keys()].sort(cmp)) {
    const states = counts.get(cls)!;
    for (const state of [...states.keys()].sort(cmp)) out.push(`${cls} ${state} ${states.get(state)}`);
  }
  return out;
}

export interface QueueReport {
  service: string;
  /** Seconds the oldest waiting client has waited (0 when none), and how many wait. */
  normal: { age: number; count: number };
  /** The same for high-priority requests (Highpri). */
  highpri: { age: number; count: number };
}

/**
 * `queues`: per reverse_proxy service, its three queues. tsbal has no low-priority queue (nothing marks requests low
 * priority), so lowpri is always empty. Perlbal walks its queue hash in hash order; tsbal prints highpri, normal, lowpri (the order observed).
 */
export function queueLines(queues: readonly QueueReport[]): string[] {
  const out: string[] = [];
  for (const q of queues) {
    const rows: Array<[string, { age: number; count: number }]> = [
      ['highpri', q.highpri],
      ['normal', q.normal],
      ['lowpri', { age: 0, count: 0 }],
    ];
    for (const [name, v] of rows) out.push(`${q.service}-${name}.age ${v.age}`, `${q.service}-${name}.count ${v.count}`);
  }
  return out;
}

/** `uptime` / `version`. The version is Perlbal's, which scripts compare against. */
export function uptimeLines(startEpochSec: number, nowEpochSec: number): string[] {
  return [`starttime ${startEpochSec}`, `uptime ${nowEpochSec - startEpochSec}`, `version ${PERLBAL_VERSION}`];
}

export const PERLBAL_VERSION = '1.80';

export interface ProcReport {
  nowEpochSec: number;
  pid: number;
  /** CPU seconds, and the increase since the previous `proc`. */
  utime: number;
  utimeDelta: number;
  stime: number;
  stimeDelta: number;
  requests: number;
  requestsDelta: number;
}

/** `proc` (MANAGE_proc). */
export function procLines(p: ProcReport): string[] {
  return [
    `time: ${p.nowEpochSec}`,
    `pid: ${p.pid}`,
    `utime: ${p.utime} (+${p.utimeDelta})`,
    `stime: ${p.stime} (+${p.stimeDelta})`,
    `reqs: ${p.requests} (+${p.requestsDelta})`,
  ];
}

/** `pending`: `<service> <ip:port> <age>`, sorted by service then address. */
export function pendingLines(pending: ReadonlyArray<{ service: string; key: string; ageSec: number }>): string[] {
  return [...pending].sort((a, b) => cmp(a.service, b.service) || cmp(a.key, b.key)).map((p) => `${p.service} ${p.key} ${p.ageSec}`);
}

/** `help`: Perlbal 1.80's MANAGE_* names, sorted (crash is not among them). */
export const HELP_COMMANDS: readonly string[] = [
  'aio', 'backends', 'create', 'default', 'disable', 'dumpconfig', 'enable', 'fd', 'gladiator', 'header', 'help', 'leaks',
  'load', 'mime', 'node', 'nodes', 'noverify', 'obj', 'pending', 'plugins', 'pool', 'proc', 'prof', 'queues', 'reload',
  'reproxy_state', 'server', 'set', 'show', 'shutdown', 'socks', 'state', 'states', 'track', 'unload', 'uptime', 'use',
  'varsize', 'verbose', 'version', 'xs',
];

/** Perl's `sort` on strings: by code unit, not locale. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
