// The management port's status page (GET /status: HTML for people, refreshing itself with a meta refresh, readable
// without JavaScript or CSS) and the same figures as JSON (GET /status.json). Pure: a StatusReport in, text out; the
// report is gathered from the running proxy by live.ts.

export interface BackendStatus {
  address: string;
  /** Health of the ip:port (shared by the services using it). */
  health: 'up' | 'starting' | 'down';
  /** The operator's admin state (ready, drain, maint). */
  admin: string;
  /** Requests in flight from this service. */
  active: number;
  idle: number;
  /** Requests this service sent there (Perlbal's node_used). */
  requests: number;
  /** Failed connects or verify probes to the ip:port (shared by the services using it, like health). */
  failures: number;
  /** Smoothed request-to-response-end time, ms; null until known. */
  latencyMs: number | null;
  /** Seconds since its last response head; null if none yet. */
  lastResponseAgoSec: number | null;
}

export interface ServiceStatus {
  name: string;
  role: string;
  listen: string | null;
  enabled: boolean;
  /** The listener is bound (false while an address is not local yet). */
  listening: boolean;
  /** The address actually bound (a `listen` with port 0 shows the port chosen), or null. */
  bound: string | null;
  /** tsbal runs it (enabled, or a selector's target); false for a service that is only configured. */
  running: boolean;
  clients: number;
  /** Responses sent to clients, by status class. */
  responses: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number; other: number };
  requests: number;
  /** 5xx answers plus failed backend connects. */
  errors: number;
  retries: number;
  connectFailures: number;
  latencyMs: number | null;
  pool: string | null;
  balanceMethod: string | null;
  backends: BackendStatus[];
}

export interface StatusReport {
  version: string;
  pid: number;
  startedEpochSec: number;
  uptimeSec: number;
  services: ServiceStatus[];
}

/** Seconds between refreshes of the HTML page. */
export const REFRESH_SEC = 5;

const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const ms = (v: number | null): string => (v === null ? '-' : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);

function duration(sec: number): string {
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${sec % 60}s` : `${sec}s`;
}

const STYLE = `body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left}th{background:#eee}td.n{text-align:right}
.up,.ready,.listening{color:#060;font-weight:bold}.down,.off{color:#b00;font-weight:bold}.starting,.drain,.maint{color:#a60;font-weight:bold}
h2{margin-bottom:.2em}p.meta{color:#555}`;

function backendRows(s: ServiceStatus): string {
  if (s.backends.length === 0) return '<p>No backends.</p>\n';
  let rows = '';
  for (const b of s.backends) {
    rows +=
      `<tr><td>${escapeHtml(b.address)}</td><td class="${b.health}">${b.health}</td><td class="${escapeHtml(b.admin)}">${escapeHtml(b.admin)}</td>` +
      `<td class="n">${b.active}</td><td class="n">${b.idle}</td><td class="n">${b.requests}</td><td class="n">${b.failures}</td>` +
      `<td class="n">${ms(b.latencyMs)}</td><td class="n">${b.lastResponseAgoSec === null ? '-' : `${b.lastResponseAgoSec}s ago`}</td></tr>\n`;
  }
  return (
    '<table>\n<tr><th>Backend</th><th>Health</th><th>Admin</th><th>In flight</th><th>Idle</th><th>Requests</th>' +
    `<th>Failed connects</th><th>Latency</th><th>Last response</th></tr>\n${rows}</table>\n`
  );
}

/** The HTML page: one table of services, then each proxying service's backends. */
export function statusHtml(r: StatusReport): string {
  let services = '';
  for (const s of r.services) {
    const state = !s.enabled ? '<span class="off">disabled</span>' : s.listen === null || s.listening ? '<span class="listening">enabled</span>' : '<span class="down">not bound</span>';
    services +=
      `<tr><td><a href="#svc-${escapeHtml(s.name)}">${escapeHtml(s.name)}</a></td><td>${escapeHtml(s.role)}</td><td>${escapeHtml(s.bound ?? s.listen ?? '-')}</td><td>${state}</td>` +
      `<td class="n">${s.clients}</td><td class="n">${s.requests}</td><td class="n">${s.errors}</td><td class="n">${ms(s.latencyMs)}</td>` +
      `<td>${escapeHtml(s.pool ?? '-')}</td></tr>\n`;
  }
  let details = '';
  for (const s of r.services) {
    if (s.pool === null) continue;
    const c = s.responses;
    details +=
      `<h2 id="svc-${escapeHtml(s.name)}">${escapeHtml(s.name)}: pool ${escapeHtml(s.pool)} (${escapeHtml(s.balanceMethod ?? 'random')})</h2>\n` +
      `<p class="meta">Responses: 2xx ${c['2xx']}, 3xx ${c['3xx']}, 4xx ${c['4xx']}, 5xx ${c['5xx']}; retries ${s.retries}; failed backend connects ${s.connectFailures}.</p>\n` +
      (s.running ? backendRows(s) : '<p>Not running (disabled, and no selector hands it requests).</p>\n');
  }
  return (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n' +
    `<meta http-equiv="refresh" content="${REFRESH_SEC}">\n<title>tsbal status</title>\n<style>${STYLE}</style></head><body>\n` +
    `<h1>tsbal status</h1>\n<p class="meta">tsbal ${escapeHtml(r.version)}, pid ${r.pid}, up ${duration(r.uptimeSec)}. ` +
    `This page refreshes every ${REFRESH_SEC} s. Also: <a href="/status.json">/status.json</a>, <a href="/metrics">/metrics</a>, <a href="/">Perlbal's pages</a>.</p>\n` +
    '<table>\n<tr><th>Service</th><th>Role</th><th>Listen</th><th>State</th><th>Clients</th><th>Requests</th><th>Errors</th><th>Latency</th><th>Pool</th></tr>\n' +
    `${services}</table>\n${details}</body></html>\n`
  );
}

export function statusJson(r: StatusReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}
