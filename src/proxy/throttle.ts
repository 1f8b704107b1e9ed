// The Throttle plugin (Perlbal::Plugin::Throttle 1.20), its in-memory store: a client that comes back within
// throttle_threshold_seconds of its last request is held initial_delay seconds, doubling per violation up to
// max_delay; ban_threshold violations close it and ban it for ban_expiration seconds; more than max_concurrent
// requests in progress from one address are refused 403; whitelist_file / blacklist_file CIDRs are never / always
// refused (or throttled, blacklist_action). memcached sharing is declined at load (see throttleRefusal).
// Pure: `now` (ms) is passed in; the caller holds the request, answers 403, or closes.
import { readFileSync } from 'node:fs';
import type { ServiceModel } from '../config/model.ts';
import { inNetwork, parseNetmaskSpec, type Ipv4Network } from '../config/ipv4.ts';
import type { SourceLocation } from '../config/errors.ts';

export interface ThrottleConfig {
  whitelist: Ipv4Network[] | null;
  blacklist: Ipv4Network[] | null;
  blacklistDeny: boolean;
  defaultThrottle: boolean;
  pathRegex: RegExp | null;
  methodRegex: RegExp | null;
  logOnly: boolean;
  thresholdMs: number;
  initialDelaySec: number;
  maxDelaySec: number;
  maxConcurrent: number;
  banThreshold: number;
  banExpirationMs: number;
  instance: string;
}

export interface ThrottleState {
  cfg: ThrottleConfig;
  /** Requests in progress per address (Perlbal's %throttled). */
  inProgress: Map<string, number>;
  /** Banned address → when the ban ends (ms). */
  banned: Map<string, number>;
  /** instance+ip → [expires at (ms), last request start (ms), violations]: Perlbal's Store::Memory. */
  store: Map<string, { expires: number; start: number; count: number }>;
}

export type ThrottleVerdict =
  | { kind: 'allow' }
  /** Hold the request this long before asking for a backend (0: go now). */
  | { kind: 'hold'; ms: number; why: string }
  /** Perlbal's `send_response(403, "Forbidden.\n")`. */
  | { kind: 'deny'; why: string }
  /** The ban threshold was reached: close the connection without an answer. */
  | { kind: 'ban'; why: string };

const num = (s: ServiceModel, k: string, d: number): number => (typeof s.options[k] === 'number' ? (s.options[k] as number) : d);
const str = (s: ServiceModel, k: string): string | null => (typeof s.options[k] === 'string' && s.options[k] !== '' ? (s.options[k] as string) : null);

/** Perlbal's load_cidr_list: one address or CIDR per line, `#` comments; a file with none is an error. */
export function parseCidrList(text: string, file: string): Ipv4Network[] {
  const out: Ipv4Network[] = [];
  for (const raw of text.split('\n')) {
    const m = /([0-9/.]+)/.exec(raw.replace(/#.*/, ''));
    if (m === null) continue;
    const parsed = parseNetmaskSpec(m[1]!);
    if (!parsed.ok) throw new Error(`${file}: ${parsed.message}`);
    out.push(parsed.value);
  }
  if (out.length === 0) throw new Error(`${file} contains no recognizable CIDRs`);
  return out;
}

function cidrFile(s: ServiceModel, key: string): Ipv4Network[] | null {
  const file = str(s, key);
  return file === null ? null : parseCidrList(readFileSync(file, 'utf8'), file);
}

/** What tsbal declines in a Throttle config, located; null when it can run it. */
export function throttleRefusal(s: ServiceModel): { loc: SourceLocation; message: string } | null {
  if (!s.plugins.includes('throttle')) return null;
  if (str(s, 'memcached_servers') !== null) {
    return { loc: s.pluginsLoc ?? s.loc, message: `service ${s.name}: Throttle's memcached_servers (state shared between balancers) is not supported by tsbal; remove it (each tsbal keeps its own state) or run Perlbal` };
  }
  // What compiling would throw (a list file without CIDRs, a bad regex), so `tsbal check` says it as `tsbal run` would.
  try {
    compileThrottle(s);
  } catch (e) {
    return { loc: s.pluginsLoc ?? s.loc, message: (e as Error).message.replace(/^[^:]+:\d+: /, '') };
  }
  return null;
}

export function compileThrottle(s: ServiceModel): ThrottleState | null {
  if (!s.plugins.includes('throttle')) return null;
  const where = `${(s.pluginsLoc ?? s.loc).file}:${(s.pluginsLoc ?? s.loc).line}`;
  const regex = (k: string): RegExp | null => {
    const v = str(s, k);
    if (v === null) return null;
    try {
      return new RegExp(v);
    } catch (e) {
      throw new Error(`${where}: service ${s.name}: ${k}: ${(e as Error).message}`);
    }
  };
  let whitelist: Ipv4Network[] | null;
  let blacklist: Ipv4Network[] | null;
  try {
    whitelist = cidrFile(s, 'whitelist_file');
    blacklist = cidrFile(s, 'blacklist_file');
  } catch (e) {
    throw new Error(`${where}: service ${s.name}: Throttle: ${(e as Error).message}`);
  }
  const cfg: ThrottleConfig = {
    whitelist,
    blacklist,
    blacklistDeny: (str(s, 'blacklist_action') ?? 'deny') === 'deny',
    defaultThrottle: (str(s, 'default_action') ?? 'throttle') === 'throttle',
    pathRegex: regex('path_regex'),
    methodRegex: regex('method_regex'),
    logOnly: s.options.log_only === true,
    thresholdMs: num(s, 'throttle_threshold_seconds', 60) * 1000,
    initialDelaySec: num(s, 'initial_delay', 3),
    maxDelaySec: num(s, 'max_delay', 300),
    maxConcurrent: num(s, 'max_concurrent', 2),
    banThreshold: num(s, 'ban_threshold', 0),
    banExpirationMs: num(s, 'ban_expiration', 60) * 1000,
    instance: str(s, 'instance_name') ?? 'Throttle',
  };
  return { cfg, inProgress: new Map(), banned: new Map(), store: new Map() };
}

const listed = (list: Ipv4Network[] | null, ip: string): boolean => list !== null && list.some((n) => inNetwork(ip, n));

/**
 * Perlbal's start_proxy_request handler. Counts the request as in progress (the caller must call throttleEnd once it
 * is over, whatever the verdict but `ban`, which is counted off here).
 */
export function throttleStart(t: ThrottleState, ip: string, method: string, uri: string, now: number): ThrottleVerdict {
  const c = t.cfg;
  t.inProgress.set(ip, (t.inProgress.get(ip) ?? 0) + 1);
  const until = t.banned.get(ip);
  if (until !== undefined && until <= now) t.banned.delete(ip);
  let result: 'allow' | 'throttle' | 'deny';
  let why: string;
  if (listed(c.whitelist, ip)) [result, why] = ['allow', 'whitelisted'];
  else if (t.banned.has(ip)) [result, why] = ['deny', `${ip} is banned`];
  else if (listed(c.blacklist, ip)) [result, why] = c.blacklistDeny ? ['deny', `${ip} is blacklisted`] : ['throttle', `${ip} is blacklisted`];
  else if (t.inProgress.get(ip)! > c.maxConcurrent) [result, why] = ['deny', `too many concurrent requests from ${ip}`];
  else if (c.pathRegex !== null && !c.pathRegex.test(uri)) [result, why] = ['allow', 'path not throttled'];
  else if (c.methodRegex !== null && !c.methodRegex.test(method)) [result, why] = ['allow', 'method not throttled'];
  else [result, why] = c.defaultThrottle ? ['throttle', 'default'] : ['allow', 'default'];

  if (result === 'allow') return { kind: 'allow' };
  if (result === 'deny' && !c.logOnly) return { kind: 'deny', why };
  // Throttled (or a denial in log_only mode): look at the client's last request.
  const key = c.instance + ip;
  const entry = t.store.get(key);
  const last = entry !== undefined && now < entry.expires ? entry : undefined;
  const violations = last?.count ?? 0;
  t.store.set(key, { expires: now + c.thresholdMs, start: now, count: violations });
  if (last === undefined) return { kind: 'hold', ms: 0, why: `allowed unseen ${ip}` };
  if (now - last.start >= c.thresholdMs) return { kind: 'hold', ms: 0, why: `allowed reformed ${ip}` };
  const delaySec = Math.min(c.initialDelaySec * 2 ** violations, c.maxDelaySec);
  const count = violations + 1;
  if (c.banThreshold > 0 && count >= c.banThreshold) {
    if (!c.logOnly) t.banned.set(ip, now + c.banExpirationMs);
    throttleEnd(t, ip);
    return { kind: 'ban', why: `banning ${ip} for ${c.banExpirationMs / 1000}s` };
  }
  t.store.set(key, { expires: now + delaySec * 1000, start: now, count });
  return { kind: 'hold', ms: c.logOnly ? 0 : delaySec * 1000, why: `throttling ${ip} for ${delaySec}s` };
}

/** Perlbal's end_proxy_request handler: the request is over. */
export function throttleEnd(t: ThrottleState, ip: string): void {
  const n = (t.inProgress.get(ip) ?? 0) - 1;
  if (n > 0) t.inProgress.set(ip, n);
  else t.inProgress.delete(ip);
}
