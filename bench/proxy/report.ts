// Pure formatting of bench/proxy results: the markdown tables, issue 4's targets for tsbal (kept-alive) and issue
// 11's for a new connection per request.

/** How wrk's connections live: kept alive across requests, or one per request (`Connection: close`). */
export type Shape = 'keep-alive' | 'close';

export interface Measurement {
  proxy: string;
  shape: Shape;
  connections: number;
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** utime+stime of the proxy's processes during the measured run, per 100k requests. */
  cpuSecondsPer100k: number;
  rssMaxMiB: number;
  errors: number;
  /** CPU the two nginx backends spent per 100k requests: a proxy that churns connections costs them more. */
  backendCpuSecondsPer100k: number;
  /** Backend connections opened per 100k requests (nginx stub_status accepts): persist_backend at work. */
  backendConnsPer100k: number;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * One row per proxy and connection count from several interleaved rounds: the median of req/s, latency and
 * CPU per request (robust to a noisy neighbour during one round), the max of RSS, the sum of requests and errors.
 */
export function aggregateRounds(rounds: readonly Measurement[]): Measurement[] {
  const groups = new Map<string, Measurement[]>();
  for (const m of rounds) {
    const key = `${m.proxy}\0${m.shape}\0${m.connections}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  return [...groups.values()].map((ms) => ({
    proxy: ms[0]!.proxy,
    shape: ms[0]!.shape,
    connections: ms[0]!.connections,
    requests: ms.reduce((sum, m) => sum + m.requests, 0),
    seconds: ms.reduce((sum, m) => sum + m.seconds, 0),
    rps: median(ms.map((m) => m.rps)),
    p50Ms: median(ms.map((m) => m.p50Ms)),
    p99Ms: median(ms.map((m) => m.p99Ms)),
    cpuSecondsPer100k: median(ms.map((m) => m.cpuSecondsPer100k)),
    rssMaxMiB: Math.max(...ms.map((m) => m.rssMaxMiB)),
    errors: ms.reduce((sum, m) => sum + m.errors, 0),
    backendCpuSecondsPer100k: median(ms.map((m) => m.backendCpuSecondsPer100k)),
    backendConnsPer100k: median(ms.map((m) => m.backendConnsPer100k)),
  }));
}

const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const ratio = (a: number, b: number | undefined): string => (b && Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : '–');

function row(cells: readonly string[]): string {
  return `| ${cells.join(' | ')} |`;
}

/** The floor row of the runtime a row runs on: Bun for a Bun build (`tsbal-bin:tsbal-bun`), else Node. */
export function runtimeFloor(proxy: string): string | null {
  if (!proxy.startsWith('tsbal')) return null;
  return /bun/.test(proxy) ? 'floor-bun' : 'floor-node';
}

const shapeConnections = (results: readonly Measurement[]): Array<[Shape, number]> =>
  [...new Set(results.map((r) => `${r.shape} ${r.connections}`))].map((k) => {
    const [shape, c] = k.split(' ');
    return [shape as Shape, Number(c)];
  });

/**
 * One table per shape and connection count: absolute numbers, then ratios against HAProxy, nginx and Perlbal, and
 * a tsbal row's CPU against its runtime's floor (floor-node or floor-bun of the same run).
 */
export function markdownTables(results: readonly Measurement[]): string {
  const out: string[] = [];
  for (const [shape, connections] of shapeConnections(results)) {
    const rows = results.filter((r) => r.connections === connections && r.shape === shape);
    const ref = (name: string): Measurement | undefined => rows.find((r) => r.proxy === name);
    const [haproxy, nginx, perlbal] = [ref('haproxy'), ref('nginx'), ref('perlbal')];
    out.push(
      `### ${shape} -c${connections}`,
      '',
      row(['proxy', 'req/s', 'p50 ms', 'p99 ms', 'CPU s/100k', 'RSS max MiB', 'errors', 'backend CPU s/100k', 'backend conns/100k', 'req/s ×HAProxy', 'CPU ×HAProxy', 'p99 ×HAProxy', 'CPU ×runtime floor', 'req/s ×nginx', 'CPU ×nginx', 'req/s ×Perlbal', 'CPU ×Perlbal']),
      row(Array.from({ length: 17 }, (_, i) => (i === 0 ? '---' : '---:'))),
    );
    for (const r of rows) {
      const floorName = runtimeFloor(r.proxy);
      const floor = floorName === null ? undefined : ref(floorName);
      out.push(
        row([
          r.proxy,
          fixed(r.rps, 0),
          fixed(r.p50Ms, 2),
          fixed(r.p99Ms, 2),
          fixed(r.cpuSecondsPer100k, 2),
          fixed(r.rssMaxMiB, 1),
          String(r.errors),
          fixed(r.backendCpuSecondsPer100k, 2),
          fixed(r.backendConnsPer100k, 0),
          ratio(r.rps, haproxy?.rps),
          ratio(r.cpuSecondsPer100k, haproxy?.cpuSecondsPer100k),
          ratio(r.p99Ms, haproxy?.p99Ms),
          ratio(r.cpuSecondsPer100k, floor?.cpuSecondsPer100k),
          ratio(r.rps, nginx?.rps),
          ratio(r.cpuSecondsPer100k, nginx?.cpuSecondsPer100k),
          ratio(r.rps, perlbal?.rps),
          ratio(r.cpuSecondsPer100k, perlbal?.cpuSecondsPer100k),
        ]),
      );
    }
    out.push('');
  }
  return out.join('\n');
}

export interface TargetCheck {
  connections: number;
  target: string;
  actual: string;
  met: boolean;
}

/** Issue 4's performance targets for one tsbal row against HAProxy and Perlbal of the same run. */
export function checkTargets(results: readonly Measurement[], tsbalName: string): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const connections of [...new Set(results.map((r) => r.connections))]) {
    const at = (name: string): Measurement | undefined => results.find((r) => r.proxy === name && r.connections === connections);
    const [tsbal, haproxy, perlbal] = [at(tsbalName), at('haproxy'), at('perlbal')];
    if (!tsbal) continue;
    const add = (target: string, value: number, limit: number, atMost: boolean, unit = '×'): void => {
      checks.push({ connections, target, actual: `${value.toFixed(2)}${unit}`, met: atMost ? value <= limit : value >= limit });
    };
    if (haproxy) {
      add('CPU per request ≤ 1.3× HAProxy', tsbal.cpuSecondsPer100k / haproxy.cpuSecondsPer100k, 1.3, true);
      add('req/s ≥ 0.85× HAProxy', tsbal.rps / haproxy.rps, 0.85, false);
      add('p99 ≤ 1.5× HAProxy', tsbal.p99Ms / haproxy.p99Ms, 1.5, true);
    }
    if (perlbal) add('req/s ≥ 6× Perlbal', tsbal.rps / perlbal.rps, 6, false);
    if (connections >= 256) add('RSS < 80 MiB', tsbal.rssMaxMiB, 80, true, ' MiB');
  }
  return checks;
}

export function markdownTargets(checks: readonly TargetCheck[], tsbalName: string): string {
  if (checks.length === 0) return '';
  return [
    `### issue 4 targets (${tsbalName})`,
    '',
    row(['conns', 'target', 'actual', 'met']),
    row(['---:', '---', '---:', '---']),
    ...checks.map((c) => row([`-c${c.connections}`, c.target, c.actual, c.met ? 'yes' : '**no**'])),
    '',
  ].join('\n');
}

/** The affinity rows against their plain balancing row, in the same run: [row, its baseline]. */
const AFFINITY_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['tsbal-cookie', 'tsbal'],
  ['tsbal-cookie-new', 'tsbal'],
  ['haproxy-cookie', 'haproxy'],
  ['tsbal-checks', 'tsbal'],
  ['tsbal-cookie-checks', 'tsbal'],
  ['haproxy-checks', 'haproxy'],
  ['haproxy-cookie-checks', 'haproxy'],
];

/**
 * Issue 12's benchmark: CPU per request with cookie affinity against plain balancing (target within 5%), as the
 * median of per-round ratios (a round measures both rows minutes apart at most, so a noisy neighbour spoils a
 * round's pair, not the whole comparison), with the range over rounds.
 */
export function markdownAffinity(rounds: readonly Measurement[]): string {
  const byKey = new Map<string, Measurement[]>();
  for (const m of rounds) {
    if (m.shape !== 'keep-alive') continue;
    const key = `${m.proxy}\0${m.connections}`;
    byKey.set(key, [...(byKey.get(key) ?? []), m]);
  }
  const lines: string[] = [];
  for (const [proxy, base] of AFFINITY_PAIRS) {
    for (const [key, ms] of byKey) {
      const [name, c] = key.split('\0');
      if (name !== proxy) continue;
      const baseline = byKey.get(`${base}\0${c}`);
      if (baseline === undefined) continue;
      const ratios = ms.slice(0, baseline.length).map((m, i) => m.cpuSecondsPer100k / baseline[i]!.cpuSecondsPer100k);
      const rps = ms.slice(0, baseline.length).map((m, i) => m.rps / baseline[i]!.rps);
      lines.push(
        row([
          proxy,
          `-c${c}`,
          `${median(ratios).toFixed(3)}×`,
          `${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}`,
          `${median(rps).toFixed(3)}×`,
          base,
        ]),
      );
    }
  }
  if (lines.length === 0) return '';
  return [
    '### Cookie affinity and health checks against plain balancing (CPU per 100k requests, per-round ratio; target ≤ 1.05× for tsbal)',
    '',
    row(['proxy', 'conns', 'CPU/100k ratio (median)', 'range over rounds', 'req/s ratio', 'baseline']),
    row(['---', '---:', '---:', '---:', '---:', '---']),
    ...lines,
    '',
    '`tsbal-cookie`, `haproxy-cookie`: every request carries the cookie of the backend it is pinned to (one client\'s',
    'steady state: no cookie set again). `tsbal-cookie-new`: no request has one, so every answer pins (worst case).',
    '`*-checks`: HTTP checks of 100 backends every 1 s while serving (the 2 serving ones and 98 check-only ones in a',
    'second pool behind an idle service of the same process); `*-cookie-checks`: both, pinned clients.',
    '',
  ].join('\n');
}

/**
 * Issue 11's targets for a new connection per request (shape close), one worker, for every tsbal row: CPU per
 * request ≤ 1.3× its runtime's floor and ≤ 1.6× HAProxy, req/s ≥ 0.7× HAProxy, all in the same run.
 */
export function connCostTargets(results: readonly Measurement[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const r of results) {
    const floorName = runtimeFloor(r.proxy);
    if (r.shape !== 'close' || floorName === null) continue;
    const at = (name: string) => results.find((m) => m.proxy === name && m.shape === 'close' && m.connections === r.connections);
    const [floor, haproxy] = [at(floorName), at('haproxy')];
    const add = (target: string, value: number, limit: number, atMost: boolean): void => {
      checks.push({ connections: r.connections, target: `${r.proxy}: ${target}`, actual: `${value.toFixed(2)}×`, met: atMost ? value <= limit : value >= limit });
    };
    if (floor) add(`CPU per request ≤ 1.3× ${floorName}`, r.cpuSecondsPer100k / floor.cpuSecondsPer100k, 1.3, true);
    if (haproxy) {
      add('CPU per request ≤ 1.6× HAProxy', r.cpuSecondsPer100k / haproxy.cpuSecondsPer100k, 1.6, true);
      add('req/s ≥ 0.7× HAProxy', r.rps / haproxy.rps, 0.7, false);
    }
  }
  return checks;
}

export function markdownConnCost(checks: readonly TargetCheck[]): string {
  if (checks.length === 0) return '';
  return [
    '### issue 11 targets, new connection per request (Connection: close)',
    '',
    row(['conns', 'target', 'actual', 'met']),
    row(['---:', '---', '---:', '---']),
    ...checks.map((c) => row([`-c${c.connections}`, c.target, c.actual, c.met ? 'yes' : '**no**'])),
    '',
  ].join('\n');
}
