// `SERVER anycast_*` (tsbal only): the address this node announces to its router through FRR while it can serve it.
// The values are kept in the model's `server` record; src/config/anycast.ts turns them into typed settings.
import { isIP } from 'node:net';
import type { Diagnostics } from '../diagnostics.ts';
import type { PerlbalState } from './state.ts';
import { parseTime, type ValueResult } from './values.ts';
import { canonicalIpv6, formatHostPort, wildcardOf } from './values.ts';

export const ANYCAST_SERVER_KEYS = ['anycast_vip', 'anycast_dev', 'anycast_require', 'anycast_withdraw_wait'] as const;

const ok = <T>(value: T): ValueResult<T> => ({ ok: true, value });
const fail = (message: string, hint?: string): ValueResult<never> => (hint === undefined ? { ok: false, message } : { ok: false, message, hint });

/** `198.18.2.1/32`, `2001:db8::1/128`, or the bare address (one host). Stored as written with the prefix added. */
export function parseAnycastVip(raw: string): ValueResult<string> {
  const [ip, bits, ...rest] = raw.split('/');
  const family = ip === undefined || rest.length > 0 ? 0 : isIP(ip);
  if (family === 0) return fail(`anycast_vip '${raw}' is not an IP address`, 'e.g. 198.18.2.1/32 or 2001:db8::1/128');
  const host = family === 4 ? 32 : 128;
  if (bits !== undefined && bits !== String(host)) {
    return fail(`anycast_vip ${raw}: the announced address must be one host (/${host})`, `write ${ip}/${host}; the router's ECMP route is for that single address`);
  }
  return ok(`${family === 6 ? canonicalIpv6(ip!) ?? ip!.toLowerCase() : ip}/${host}`);
}

/** Linux interface names: at most 15 bytes, no `/`, no whitespace (dev_valid_name). */
export function parseAnycastDev(raw: string): ValueResult<string> {
  if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(raw) || raw === '.' || raw === '..') {
    return fail(`anycast_dev '${raw}' is not an interface name`, 'at most 15 letters, digits, _ . - (e.g. vip0)');
  }
  return ok(raw);
}

/** Handles one `SERVER anycast_* = value`; null when the key is not an anycast key. */
export function setAnycastServerKey(state: PerlbalState, key: string, value: string): ValueResult<string | number> | null {
  let r: ValueResult<string | number>;
  switch (key) {
    case 'anycast_vip': r = parseAnycastVip(value); break;
    case 'anycast_dev': r = parseAnycastDev(value); break;
    case 'anycast_require':
      r = value === 'all' || value === 'any' ? ok(value) : fail(`anycast_require must be all or any, not '${value}'`, 'all: every service on the VIP needs a healthy backend; any: one is enough');
      break;
    case 'anycast_withdraw_wait': r = parseTime(key, value); break;
    default: return null;
  }
  if (r.ok) state.server[key] = r.value;
  return r;
}

/** The host part of an anycast_vip value (`198.18.2.1/32` → `198.18.2.1`). */
export const anycastVipHost = (vip: string): string => vip.slice(0, vip.indexOf('/'));

/** After the last line: an anycast VIP that no enabled service listens on would never be announced. */
export function checkAnycast(state: PerlbalState, d: Diagnostics): void {
  const vip = state.server.anycast_vip;
  const loc = (key: string) => state.serverLocs.get(key) ?? { file: state.files[0] ?? '', line: 0 };
  if (typeof vip !== 'string') {
    for (const key of ANYCAST_SERVER_KEYS) {
      if (key in state.server) d.warn(loc(key), `SERVER ${key} has no effect without SERVER anycast_vip`, 'SERVER anycast_vip = 198.18.2.1/32');
    }
    return;
  }
  const host = anycastVipHost(vip);
  const wildcard = wildcardOf(host);
  const served = [...state.services.values()].filter((s) => s.enabled && s.listen && (s.listen.host === host || s.listen.host === wildcard));
  if (served.length > 0) return;
  const others = [...state.services.values()].filter((s) => s.enabled && s.listen).map((s) => `${s.name} on ${formatHostPort(s.listen!)}`);
  d.error(loc('anycast_vip'), `no enabled service listens on anycast_vip ${vip}; it would never be announced`,
    others.length > 0 ? `SET listen = ${formatHostPort({ host, port: 0 }).replace(/:0$/, ':PORT')} on the service to announce (now: ${others.join(', ')})` : `SET listen = ${formatHostPort({ host, port: 80 })} on a service`);
}
