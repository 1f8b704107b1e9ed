// The Stats plugin's counters (Perlbal::Plugin::Stats) and the console reports of Stats and Highpri (`stats`,
// `recent`, `patterns`), in Perlbal's layout. Counting is a few increments on services that register Stats; nothing
// is allocated per request except the `recent` line (kept to the last 100, as Perlbal).
import type { ServiceModel } from '../config/model.ts';

export const STAT_KEYS = ['files_reproxied', 'files_sent', 'proxy_requests', 'proxy_requests_highpri', 'web_requests'] as const;
export type StatKey = (typeof STAT_KEYS)[number];

export interface PluginStats {
  counts: Record<StatKey, number>;
  /** `%-6.4f http://host/uri`: seconds from backend assignment to response head, newest last, at most RECENT_MAX. */
  recent: string[];
}

const RECENT_MAX = 100;

export function compilePluginStats(s: ServiceModel): PluginStats | null {
  if (!s.plugins.includes('stats')) return null;
  return { counts: { files_reproxied: 0, files_sent: 0, proxy_requests: 0, proxy_requests_highpri: 0, web_requests: 0 }, recent: [] };
}

/** backend_response_received: one `recent` line. */
export function noteRecent(p: PluginStats, seconds: number, host: string | null, uri: string): void {
  p.recent.push(`${seconds.toFixed(4).padEnd(6)} http://${host === null || host === '' ? 'unknown' : host}${uri}`);
  if (p.recent.length > RECENT_MAX) p.recent.shift();
}

const row = (svc: string, key: string, n: number): string => `${svc.padEnd(15)} ${key.padEnd(25)} ${String(n).padStart(12)}`;

/** `stats`: per service its five counters (sorted by name), then the totals. The caller adds the final `.`. */
export function statsLines(services: ReadonlyArray<readonly [string, PluginStats]>): string[] {
  const out: string[] = [];
  const total: Record<string, number> = {};
  for (const [name, p] of services) {
    for (const key of STAT_KEYS) {
      out.push(row(name, key, p.counts[key]));
      total[key] = (total[key] ?? 0) + p.counts[key];
    }
  }
  for (const key of STAT_KEYS) out.push(row('total', key, total[key] ?? 0));
  return out;
}

/** `recent`: `<service> <line>` for every remembered request. */
export function recentLines(services: ReadonlyArray<readonly [string, PluginStats]>): string[] {
  return services.flatMap(([name, p]) => p.recent.map((l) => `${name} ${l}`));
}

/** `patterns` (Highpri): the patterns in effect per service that registered it. */
export function patternsLines(services: ReadonlyArray<readonly [string, { uriText: string; hostText: string }]>): string[] {
  return [
    'High priority pattern buffer:',
    ...services.flatMap(([name, p]) => [`SET ${name}.highpri.uri_pattern = ${p.uriText}`, `SET ${name}.highpri.host_pattern = ${p.hostText}`]),
  ];
}
