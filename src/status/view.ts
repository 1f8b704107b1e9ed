// `tsbal status` on the admin's screen: a table with colour on a terminal, one fact per line otherwise (for grep
// and mail). Pure: the snapshot in, text out.
import type { BackendStatus, HaSummary, ServiceStatus, StatusSnapshot } from './snapshot.ts';

export interface ViewOptions {
  /** Table layout (a terminal); false: plain lines, one fact each. */
  terminal: boolean;
  /** ANSI colour in the table (a terminal without NO_COLOR); default: as `terminal`. */
  colour?: boolean;
  /** Time of day for a transition; local time by default. */
  clock?: (ms: number) => string;
}

type Paint = 'green' | 'yellow' | 'red' | 'bold' | 'dim' | 'cyan';
const CODES: Record<Paint, string> = { green: '32', yellow: '33', red: '1;31', bold: '1', dim: '2', cyan: '36' };

const localClock = (ms: number): string => new Date(ms).toTimeString().slice(0, 8);

function duration(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/** The colour an admin expects for a health, admin or listening state; null: none. */
export function stateColour(state: string): Paint | null {
  switch (state) {
    case 'up':
    case 'ready':
    case 'listening':
    case 'active':
      return 'green';
    case 'starting':
    case 'drain':
    case 'waiting':
    case 'disabled':
      return 'yellow';
    case 'down':
    case 'maint':
    case 'dead':
      return 'red';
    default:
      return null;
  }
}

function backendNote(b: BackendStatus): string {
  const parts: string[] = [];
  if (b.health === 'down') {
    if (b.lastFailure !== null) parts.push(b.lastFailure);
    if (b.lastCheck !== null) parts.push('back after its checks pass');
    else if (b.retryInMs !== null) parts.push(b.retryInMs === 0 ? 'next request tries it' : `retry in ${(b.retryInMs / 1000).toFixed(1)} s`);
  } else if (b.health === 'starting') {
    parts.push('slow start');
  }
  if (b.lastCheck !== null && b.health !== 'down') parts.push(`check: ${b.lastCheck}`);
  if (b.weight !== 1) parts.push(`weight ${b.weight}`);
  return parts.join(', ');
}

function heard(ms: number | null): string {
  return ms === null ? 'never heard' : ms < 10_000 ? `heard ${ms} ms ago` : `heard ${duration(Math.round(ms / 1000))} ago`;
}

function vipLine(ha: HaSummary, v: HaSummary['vips'][number]): string {
  const who = v.holder === null ? 'held by nobody' : v.holder === ha.node ? `held by ${ha.node} (this node)` : `held by ${v.holder} (the peer)`;
  return `${v.address}: ${who}${v.home === v.holder ? '' : `, home ${v.home}`}`;
}

export function statusText(s: StatusSnapshot, o: ViewOptions): string {
  return (o.terminal ? terminalLines(s, o) : plainLines(s, o)).join('\n');
}

/** Anycast mode's line: `198.18.2.1/32 on vip0 ANNOUNCED (service web serving)`. */
export function anycastLine(a: NonNullable<StatusSnapshot['anycast']>): string {
  return `${a.vip} on ${a.dev} ${a.announced ? 'ANNOUNCED' : 'WITHDRAWN'} (${a.reason})${a.error === null ? '' : `; ip failed: ${a.error}`}`;
}

/** `2 (1 restart)` or `1 (this process)`. */
function workersWords(w: NonNullable<StatusSnapshot['workers']>): string {
  if (w.thisProcess) return `${w.count} (this process)`;
  return `${w.count}${w.restarts === 0 ? '' : ` (${w.restarts} restart${w.restarts === 1 ? '' : 's'})`}`;
}

/** `pid 4242, ready, up 5m 2s, 0 restarts`. */
function workerWords(x: NonNullable<StatusSnapshot['workers']>['list'][number]): string {
  const pid = x.pid === null ? 'no process (starting again)' : `pid ${x.pid}`;
  return `${pid}, ${x.state}, up ${duration(x.uptimeS)}, ${x.restarts} restart${x.restarts === 1 ? '' : 's'}`;
}

function plainLines(s: StatusSnapshot, o: ViewOptions): string[] {
  const clock = o.clock ?? localClock;
  const out = [`tsbal ${s.version}: pid ${s.pid}, up ${duration(s.uptimeS)}, config ${s.config}`];
  if (s.anycast) out.push(`anycast: ${anycastLine(s.anycast)}`);
  else if (s.ha === null) out.push('ha: not configured (no ha.cf): proxy only');
  else if ('error' in s.ha) out.push(`ha: NOT ANSWERING: ${s.ha.error}`);
  else {
    const ha = s.ha;
    out.push(`ha: ${ha.node} is ${ha.role}: holds ${ha.holds}; ${ha.state}`);
    out.push(`peer: ${ha.peer.name} ${ha.peer.status}, ${heard(ha.peer.heardMsAgo)} (deadtime ${ha.peer.deadtimeMs} ms), holds ${ha.peer.holds}`);
    for (const v of ha.vips) out.push(`vip: ${vipLine(ha, v)}`);
    if (ha.splitBrain.length > 0) out.push(`SPLIT BRAIN: both nodes hold ${ha.splitBrain.map((h) => `${h}'s resources`).join(' and ')}`);
  }
  if (s.workers) {
    out.push(`workers: ${workersWords(s.workers)}`);
    for (const x of s.workers.list) out.push(`  worker ${x.index}: ${workerWords(x)}`);
  }
  for (const svc of s.services) {
    const where = svc.listen === null ? 'no listener (selector target)' : `${svc.listening} on ${svc.listen}`;
    out.push(`service ${svc.name} (${svc.role}): ${where}${svc.pool === null ? '' : `, pool ${svc.pool} (${svc.balance})`}`);
    for (const b of svc.backends) {
      const note = backendNote(b);
      out.push(`  backend ${b.address}: ${b.health}, ${b.admin}, ${b.inFlight} in flight, ${b.requests} requests, ${b.errors} errors${note === '' ? '' : ` (${note})`}`);
    }
  }
  if (s.transitions.length === 0) out.push('recent transitions: none');
  for (const t of s.transitions) out.push(`transition ${clock(t.at)} ${t.source}: ${t.text}`);
  return out;
}

function terminalLines(s: StatusSnapshot, o: ViewOptions): string[] {
  const clock = o.clock ?? localClock;
  const colour = o.colour ?? true;
  const paint = (text: string, p: Paint | null): string => (p === null || text === '' || !colour ? text : `\x1b[${CODES[p]}m${text}\x1b[0m`);
  const out = [paint(`tsbal ${s.version}`, 'bold') + `  pid ${s.pid}, up ${duration(s.uptimeS)}, ${s.config}`, ''];
  const label = (l: string): string => paint(l.padEnd(6), 'bold');
  if (s.anycast) out.push(`${label('ANYCST')}${paint(anycastLine(s.anycast), s.anycast.announced ? 'green' : 'yellow')}`);
  else if (s.ha === null) out.push(`${label('HA')}not configured (no ha.cf): proxy only`);
  else if ('error' in s.ha) out.push(`${label('HA')}${paint(`NOT ANSWERING: ${s.ha.error}`, 'red')}`);
  else {
    const ha = s.ha;
    out.push(`${label('HA')}${ha.node} is ${paint(ha.role, ha.role === 'active' ? 'green' : 'cyan')}: holds ${ha.holds}; ${paint(ha.state, ha.state === 'settled' ? null : 'yellow')}`);
    out.push(
      `${label('peer')}${ha.peer.name} ${paint(ha.peer.status, stateColour(ha.peer.status))}, ${heard(ha.peer.heardMsAgo)} (deadtime ${ha.peer.deadtimeMs} ms); holds ${ha.peer.holds}`,
    );
    for (const v of ha.vips) out.push(`${label('VIP')}${paint(vipLine(ha, v), v.holder === null ? 'red' : null)}`);
    if (ha.splitBrain.length > 0) out.push(paint(`SPLIT BRAIN: both nodes hold ${ha.splitBrain.map((h) => `${h}'s resources`).join(' and ')}; one must release`, 'red'));
  }
  if (s.workers) {
    out.push(`${label('PROCS')}workers ${workersWords(s.workers)}`);
    for (const x of s.workers.list) out.push(`      worker ${x.index}: ${paint(workerWords(x), x.state === 'ready' ? null : 'yellow')}`);
  }
  out.push('');
  const header = ['SERVICE', 'LISTEN', 'STATE', 'POOL', 'BACKEND', 'HEALTH', 'ADMIN', 'IN FLIGHT', 'REQUESTS', 'ERRORS', 'NOTE'];
  const numeric = new Set([7, 8, 9]);
  const rows: string[][] = [];
  for (const svc of s.services) rows.push(...serviceRows(svc));
  out.push(...table(header, rows, numeric, paint));
  out.push('', paint('RECENT TRANSITIONS', 'bold'));
  if (s.transitions.length === 0) out.push(paint('  none since start', 'dim'));
  for (const t of s.transitions) {
    const colour: Paint | null = /\bdown\b|\bis dead\b|FAILED|partition|\bexited\b/.test(t.text) ? 'red' : /\bup\b|acquired|is back/.test(t.text) ? 'green' : null;
    out.push(`  ${paint(clock(t.at), 'dim')}  ${t.source.padEnd(7)}  ${paint(t.text, colour)}`);
  }
  return out;
}

function serviceRows(svc: ServiceStatus): string[][] {
  const head = [svc.name, svc.listen ?? '-', svc.listen === null ? '-' : svc.listening, svc.pool === null ? (svc.role === 'reverse_proxy' ? '-' : svc.role) : `${svc.pool} (${svc.balance})`];
  if (svc.backends.length === 0) return [[...head, '', '', '', '', '', '', '']];
  return svc.backends.map((b, i) => [
    ...(i === 0 ? head : ['', '', '', '']),
    b.address,
    b.health,
    b.admin,
    String(b.inFlight),
    String(b.requests),
    String(b.errors),
    backendNote(b),
  ]);
}

/** Columns padded on the raw text, coloured after (escape codes take no room on the screen). */
function table(header: string[], rows: string[][], numeric: Set<number>, paint: (t: string, p: Paint | null) => string): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const last = header.length - 1;
  const cell = (text: string, i: number): string => (numeric.has(i) ? text.padStart(widths[i]!) : i === last ? text : text.padEnd(widths[i]!));
  const line = (cells: string[], colour: (text: string, i: number) => string): string =>
    cells.map((c, i) => colour(cell(c, i), i)).join('  ').trimEnd();
  return [
    line(header, (t) => paint(t, 'bold')),
    ...rows.map((r) => line(r, (t, i) => (i === 2 || i === 5 || i === 6 ? paint(t, stateColour(r[i]!)) : t))),
  ];
}
