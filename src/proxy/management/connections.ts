// SERVER workers: the console's per-connection reports (`states`, `queues`, `backends`, `pending`, the pending and
// connect-ahead lines of `show service`, idle backend connections on /status), as each worker reads them from its own
// connections (takeConnections, through its ManagementTarget: the same code as one process), and merged into one
// answer in the owner (mergeConnections). Pure: records in, records out; everything crosses the IPC channel as JSON.
import type { ManagementTarget } from './commands.ts';
import type { PendingConnect, QueueReport } from './format.ts';

/** `[class, state, count]`, as `states` counts them. */
export type StateCount = [cls: string, state: string, count: number];

export interface ServiceConnections {
  name: string;
  /** `states <name>`: the connections of this service. */
  states: StateCount[];
  /** `show service <name>`: clients waiting for a backend, backends being opened, the oldest connect per node. */
  pending: { clients: number; backends: number; connects: PendingConnect[] } | null;
  /** Idle backend connections (connect-ahead line); per node key for /status. */
  idle: number;
  idleByNode: Array<[string, number]>;
}

export interface ConnectionReport {
  /** `states` without a service name (every connection, also of services a reload replaced). */
  states: StateCount[];
  queues: QueueReport[];
  backends: Array<[string, number]>;
  pending: Array<{ service: string; key: string; ageSec: number }>;
  services: ServiceConnections[];
  /** `/metrics`' backend connections: `[backend, state, count]` (metrics.ts backendConnections). */
  backendStates: StateCount[];
}

function flatten(counts: ReadonlyMap<string, ReadonlyMap<string, number>> | null): StateCount[] {
  const out: StateCount[] = [];
  for (const [cls, states] of counts ?? []) for (const [state, n] of states) out.push([cls, state, n]);
  return out;
}

/** In a worker: its own connections, read through the console's view of its engine. */
export function takeConnections(t: ManagementTarget, backendStates: StateCount[]): ConnectionReport {
  const status = t.status();
  return {
    backendStates,
    states: flatten(t.states(null)),
    queues: t.queues(),
    backends: t.backends(),
    pending: t.pending(),
    services: t.services().map(({ name }) => {
      const detail = t.service(name);
      const st = status.services.find((s) => s.name === name);
      return {
        name,
        states: flatten(t.states(name)),
        pending: detail?.pending ?? null,
        idle: detail?.connectAhead?.idle ?? 0,
        idleByNode: (st?.backends ?? []).map((b): [string, number] => [b.address, b.idle]),
      };
    }),
  };
}

function sumStates(lists: StateCount[][]): StateCount[] {
  const sums = new Map<string, StateCount>();
  for (const list of lists) {
    for (const [cls, state, n] of list) {
      const k = `${cls}\0${state}`;
      const had = sums.get(k);
      if (had === undefined) sums.set(k, [cls, state, n]);
      else had[2] += n;
    }
  }
  return [...sums.values()];
}

function sumPairs(lists: Array<Array<[string, number]>>): Array<[string, number]> {
  const sums = new Map<string, number>();
  for (const list of lists) for (const [k, n] of list) sums.set(k, (sums.get(k) ?? 0) + n);
  return [...sums];
}

/** Keeps the oldest of each `by` key (what `pending` and `show service` show: the oldest connect per backend). */
function oldest<T extends { ageSec: number }>(lists: T[][], by: (x: T) => string): T[] {
  const out = new Map<string, T>();
  for (const list of lists) {
    for (const x of list) {
      const k = by(x);
      if ((out.get(k)?.ageSec ?? -1) < x.ageSec) out.set(k, x);
    }
  }
  return [...out.values()];
}

type Lane = { age: number; count: number };
const lane = (ls: Lane[]): Lane => ({ age: Math.max(0, ...ls.map((l) => l.age)), count: ls.reduce((a, l) => a + l.count, 0) });

/** In the owner: the workers' reports as one (counts summed, ages the oldest, rows from every worker). */
export function mergeConnections(reports: readonly ConnectionReport[]): ConnectionReport {
  const queueNames = [...new Set(reports.flatMap((r) => r.queues.map((q) => q.service)))];
  const serviceNames = [...new Set(reports.flatMap((r) => r.services.map((s) => s.name)))];
  return {
    states: sumStates(reports.map((r) => r.states)),
    backendStates: sumStates(reports.map((r) => r.backendStates)),
    queues: queueNames.map((service) => {
      const qs = reports.flatMap((r) => r.queues.filter((q) => q.service === service));
      return { service, normal: lane(qs.map((q) => q.normal)), highpri: lane(qs.map((q) => q.highpri)) };
    }),
    backends: sumPairs(reports.map((r) => r.backends)),
    pending: oldest(reports.map((r) => r.pending), (p) => `${p.service} ${p.key}`),
    services: serviceNames.map((name) => {
      const ss = reports.flatMap((r) => r.services.filter((s) => s.name === name));
      const pend = ss.flatMap((s) => (s.pending === null ? [] : [s.pending]));
      return {
        name,
        states: sumStates(ss.map((s) => s.states)),
        pending:
          pend.length === 0
            ? null
            : {
                clients: pend.reduce((a, p) => a + p.clients, 0),
                backends: pend.reduce((a, p) => a + p.backends, 0),
                connects: oldest(pend.map((p) => p.connects), (c) => c.key),
              },
        idle: ss.reduce((a, s) => a + s.idle, 0),
        idleByNode: sumPairs(ss.map((s) => s.idleByNode)),
      };
    }),
  };
}

/** `[class, state, count]` rows as the Map `states` lays out. */
export function stateMap(rows: readonly StateCount[]): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const [cls, state, n] of rows) {
    const m = out.get(cls) ?? new Map<string, number>();
    m.set(state, (m.get(state) ?? 0) + n);
    out.set(cls, m);
  }
  return out;
}
