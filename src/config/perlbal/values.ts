// Value syntaxes of perlbal.conf (Service.pm set's check types) plus tsbal's time values.
import type { HostPort } from '../model.ts';
import { isIP } from 'node:net';
import { isIpv4 } from '../ipv4.ts';
import { looksIpv6, parseIpv6Network } from '../ipv6.ts';

export type ValueResult<T> = { ok: true; value: T } | { ok: false; message: string; hint?: string };

const ok = <T>(value: T): ValueResult<T> => ({ ok: true, value });
const fail = <T>(message: string, hint?: string): ValueResult<T> => (hint === undefined ? { ok: false, message } : { ok: false, message, hint });

const TRUE_WORDS = new Set(['1', 'true', 'on', 'yes']);
const FALSE_WORDS = new Set(['0', 'false', 'off', 'no']);

/** Perlbal's _bool: 1/true/on/yes and 0/false/off/no, any case. */
export function parseBool(key: string, raw: string): ValueResult<boolean> {
  const v = raw.toLowerCase();
  if (TRUE_WORDS.has(v)) return ok(true);
  if (FALSE_WORDS.has(v)) return ok(false);
  return fail(`Expecting boolean value for parameter '${key}'`, 'use on or off');
}

export function parseInt(key: string, raw: string, range?: { min: number; max: number; message?: string }): ValueResult<number> {
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    return fail(range?.message ?? `Expecting integer value for parameter '${key}'`, /^-/.test(raw) ? 'negative numbers are not allowed' : undefined);
  }
  const n = Number(raw);
  if (range && (n < range.min || n > range.max)) {
    return fail(range.message ?? `Expecting integer value between ${range.min} and ${range.max} for parameter '${key}'`);
  }
  return ok(n);
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Bytes: N, Nb, Nk or Nm (KiB, MiB), any case; tsbal also takes Ng. */
export function parseSize(key: string, raw: string): ValueResult<number> {
  const m = /^(\d+)([bkmg]?)$/i.exec(raw);
  const bytes = m ? Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(bytes)) {
    return fail(`Expecting size unit value for parameter '${key}' in bytes, or suffixed with 'K' or 'M'`, 'e.g. 65536, 64k or 2m');
  }
  return ok(bytes);
}

const TIME_UNITS: Record<string, number> = { '': 1000, s: 1000, ms: 1, m: 60_000 };

/** Milliseconds from N (seconds), Nms, Ns or Nm; decimals allowed, rounded to whole ms. */
export function parseTime(key: string, raw: string): ValueResult<number> {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/i.exec(raw);
  const ms = m ? Math.round(Number(m[1]) * TIME_UNITS[(m[2] ?? '').toLowerCase()]!) : NaN;
  if (!Number.isSafeInteger(ms)) {
    return fail(`Expecting a time value for parameter '${key}'`, 'N (seconds), Nms, Ns or Nm, e.g. 30 or 500ms');
  }
  return ok(ms);
}

/** Perlbal's error_retry_schedule: comma-separated seconds, e.g. `0,.25,.50,1`; returned as ms. */
export function parseSecondsList(key: string, raw: string): ValueResult<number[]> {
  const parts = raw.split(/\s*,\s*/).filter((p) => p !== '');
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(\d+\.?\d*|\.\d+)$/.test(p)) return fail(`Expecting a comma-separated list of seconds for parameter '${key}'`, `'${p}' is not a number; e.g. 0,.25,.5,1`);
    out.push(Math.round(Number(p) * 1000));
  }
  return ok(out);
}

/**
 * HTTP statuses as `lo-hi` pairs, flattened ([200, 399, 404, 404]) from `200-399,404`; null when malformed or out of
 * 100..599.
 */
export function parseStatusList(raw: string): number[] | null {
  const parts = raw.split(/\s*,\s*/).filter((p) => p !== '');
  if (parts.length === 0) return null;
  const out: number[] = [];
  for (const p of parts) {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(p);
    if (m === null) return null;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 100 || hi > 599 || hi < lo) return null;
    out.push(lo, hi);
  }
  return out;
}

export function parsePort(raw: string, allowZero: boolean): number | null {
  if (!/^\d{1,5}$/.test(raw)) return null;
  const n = Number(raw);
  return n <= 65535 && (allowZero || n > 0) ? n : null;
}

/**
 * An IPv6 literal in the canonical text form (RFC 5952: lowercase, longest zero run compressed), or null. The
 * canonical form is what listen, anycast_vip and the socket's own addresses are compared in.
 */
export function canonicalIpv6(raw: string): string | null {
  if (!/^[0-9A-Fa-f:.]+$/.test(raw) || isIP(raw) !== 6) return null;
  return new URL(`http://[${raw}]/`).hostname.slice(1, -1);
}

/**
 * `ip:port`, `port` (all IPv4 interfaces), or, a tsbal extension, `[ipv6]:port` (`[::]:80` is all IPv6 interfaces).
 * Port 0 asks the OS for a free port, which tests use. IPv6 hosts are kept canonical and without brackets.
 */
export function parseListen(raw: string): ValueResult<HostPort> {
  // Perlbal's message for its forms; the IPv6 form (tsbal's) has its own.
  const usage = 'Listen argument must be ip:port or port. e.g. 192.168.0.1:80 or 81';
  if (raw.startsWith('[') || (raw.includes(':') && raw.indexOf(':') !== raw.lastIndexOf(':'))) {
    return parseListenIpv6(raw, 'Listen argument for an IPv6 address must be [ipv6]:port. e.g. [2001:db8::1]:80 or [::]:80');
  }
  const m = /^(?:(\d+\.\d+\.\d+\.\d+):)?(\d+)$/.exec(raw);
  if (!m) return fail(usage, /[a-z]/i.test(raw) ? 'host names are not accepted; write the IP address' : undefined);
  const host = m[1] ?? '0.0.0.0';
  if (!isIpv4(host)) return fail(usage, `'${host}' is not a valid IPv4 address`);
  const port = parsePort(m[2]!, true);
  if (port === null) return fail(usage, `port ${m[2]} is out of range (0 to 65535)`);
  return ok({ host, port });
}

function parseListenIpv6(raw: string, usage: string): ValueResult<HostPort> {
  if (!raw.startsWith('[')) return fail(usage, `an IPv6 address needs brackets and a port: [${raw.replace(/:\d+$/, '')}]:80`);
  const close = raw.indexOf(']');
  if (close < 0) return fail(usage, `'${raw}' has no closing ']'`);
  const inside = raw.slice(1, close);
  const host = canonicalIpv6(inside);
  if (host === null) return fail(usage, `'${inside}' is not a valid IPv6 address`);
  const rest = raw.slice(close + 1);
  if (rest === '' || rest === ':') return fail(usage, `no port after [${inside}]; e.g. [${inside}]:80`);
  if (!/^:\d+$/.test(rest)) return fail(usage, `'${rest}' after [${inside}] is not :port`);
  const port = parsePort(rest.slice(1), true);
  if (port === null) return fail(usage, `port ${rest.slice(1)} is out of range (0 to 65535)`);
  return ok({ host, port });
}

/** The wildcard listen host of `host`'s family: 0.0.0.0 or ::. */
export const wildcardOf = (host: string): string => (host.includes(':') ? '::' : '0.0.0.0');

/** Whether two listens would take the same socket: same port and same address, or one is its family's wildcard. */
export function listensOverlap(a: HostPort, b: HostPort): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  if (a.host === b.host) return true;
  return wildcardOf(a.host) === wildcardOf(b.host) && (a.host === wildcardOf(a.host) || b.host === wildcardOf(b.host));
}

/**
 * A backend node `ip[:port]`, port 80 by default, as POOL ADD and nodefiles take it; `ip` may be a bracketed IPv6
 * literal (`[::1]`, a tsbal extension), kept canonical and without brackets as listen keeps it.
 */
export function parseNode(ip: string, port: string | undefined): HostPort | null {
  if (ip.startsWith('[')) {
    const host = ip.endsWith(']') ? canonicalIpv6(ip.slice(1, -1)) : null;
    if (host === null) return null;
    const p = port === undefined || port === '' ? 80 : parsePort(port, false);
    return p === null ? null : { host, port: p };
  }
  if (!isIpv4(ip)) return null;
  const p = port === undefined || port === '' ? 80 : parsePort(port, false);
  return p === null ? null : { host: ip, port: p };
}

/** A CIDR `a.b.c.d/n` or a single address, or (tsbal) an IPv6 `2001:db8::/32` or address, for trusted_upstream_proxies. */
export function isCidr(s: string): boolean {
  if (looksIpv6(s)) return parseIpv6Network(s).ok;
  const [ip, bits, ...rest] = s.split('/');
  if (rest.length > 0 || ip === undefined || !isIpv4(ip)) return false;
  return bits === undefined || (/^\d{1,2}$/.test(bits) && Number(bits) <= 32);
}

/** `ip:port`, with an IPv6 host in brackets (`[2001:db8::1]:80`), as `SET listen` takes it. */
export const formatHostPort = (hp: HostPort): string => (hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`);

/** 127.0.0.0/8 or ::1: a listen that only this host can reach. */
export const isLoopbackHost = (host: string): boolean => host.startsWith('127.') || host === '::1';
