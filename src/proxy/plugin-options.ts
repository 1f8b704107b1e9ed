// The settings of the bundled plugins tsbal implements, read from a service's model: the tunables they add
// (`SET max_content_length`, `SET send_backend_port`, ...) and their setters (`SET <svc>.notmodified.host_pattern`).
// Pure; the config checker has already typed the tunables and compiled the patterns once.
import type { ServiceModel } from '../config/model.ts';

function num(service: ServiceModel, key: string, fallback: number): number {
  const v = service.options[key];
  return typeof v === 'number' ? v : fallback;
}

function bool(service: ServiceModel, key: string): boolean {
  return service.options[key] === true;
}

/** A Perl pattern as JavaScript reads it; the config checker refused the ones that do not compile. */
function pattern(raw: string | undefined, where: string): RegExp | null {
  if (raw === undefined || raw === '') return null;
  try {
    return new RegExp(raw);
  } catch (error) {
    throw new Error(`${where}: invalid regular expression '${raw}' (${(error as Error).message})`);
  }
}

const where = (s: ServiceModel): string => `${(s.pluginsLoc ?? s.loc).file}:${(s.pluginsLoc ?? s.loc).line}`;

/** NotModified's host_pattern; null until set (Perlbal registers no hook before that). */
export function notModifiedPattern(service: ServiceModel): RegExp | null {
  const raw = service.extra['notmodified.host_pattern'];
  // Perlbal's setter ignores a false value (`return 0 unless $what && $val`): "0" leaves the plugin idle.
  return raw === '0' ? null : pattern(raw, where(service));
}

/** MaxContentLength's max_content_length in bytes; 0 is no limit. */
export function maxContentLength(service: ServiceModel): number {
  return num(service, 'max_content_length', 0);
}

/** XFFExtras: which forwarding fields to set on the backend request. */
export function xffExtras(service: ServiceModel): { port: boolean; proto: boolean } | null {
  if (!service.plugins.includes('xffextras')) return null;
  const port = bool(service, 'send_backend_port');
  const proto = bool(service, 'send_backend_proto');
  return port || proto ? { port, proto } : null;
}

/** Perlbal's default high-priority URIs (LiveJournal's), in effect as soon as Highpri is registered. */
export const HIGHPRI_DEFAULT_URI = '^(?:/interface/(?:xmlrpc|flat)|/login\\.bml)$';

/** Highpri's patterns: `undef`, `none` or `null` turn one off. */
export interface HighpriPatterns {
  uri: RegExp | null;
  host: RegExp | null;
  uriText: string;
  hostText: string;
}

export function highpriPatterns(service: ServiceModel): HighpriPatterns | null {
  if (!service.plugins.includes('highpri')) return null;
  const off = (v: string): boolean => v === 'undef' || v === 'none' || v === 'null';
  const uriText = service.extra['highpri.uri_pattern'] ?? HIGHPRI_DEFAULT_URI;
  const hostText = service.extra['highpri.host_pattern'] ?? 'undef';
  return {
    uri: off(uriText) ? null : pattern(uriText, where(service)),
    host: off(hostText) ? null : pattern(hostText, where(service)),
    uriText,
    hostText,
  };
}

/** Highpri's make_high_priority: the request URI, or the Host, matches. */
export function isHighPriority(p: { uri: RegExp | null; host: RegExp | null }, uri: string, host: string | null): boolean {
  if (p.uri !== null && p.uri.test(uri)) return true;
  return p.host !== null && host !== null && host !== '' && p.host.test(host);
}

/**
 * Perlbal's high_priority_cookie rule (Service.pm request_backend_connection): the request is high priority when the
 * named cookie's value contains `contents`. Parsed as Perlbal does: pairs split on `;` plus whitespace, name and value
 * split at the last `=`, both %-decoded, the last pair of a name wins, a missing cookie (or `0`) counts as empty, so
 * with empty contents every request qualifies, as in Perlbal.
 */
export function cookieSaysHighPriority(cookieHeader: string | undefined, name: string, contents: string): boolean {
  let value = '';
  if (cookieHeader !== undefined) {
    for (const pair of cookieHeader.split(/;\s+/)) {
      const eq = pair.lastIndexOf('=');
      if (eq >= 0 && percentDecode(pair.slice(0, eq)) === name) value = percentDecode(pair.slice(eq + 1));
    }
  }
  if (value === '0') value = '';
  return value.includes(contents);
}

/** Perlbal::Util::durl: %XX to the byte (latin1 here), nothing else (`+` stays). */
function percentDecode(s: string): string {
  return s.indexOf('%') === -1 ? s : s.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}
