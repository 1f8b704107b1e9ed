// Anycast mode's settings, typed, from perlbal.conf's `SERVER anycast_*` lines (src/config/perlbal/anycast.ts).
import type { PerlbalConfig } from './model.ts';

export interface AnycastSettings {
  /** With its prefix: `198.18.2.1/32` or `2001:db8::1/128`. */
  vip: string;
  /** The address alone. */
  host: string;
  family: 4 | 6;
  /** The interface whose copy of the VIP FRR redistributes (a `dummy` on Debian, `ifb` in the lab). */
  dev: string;
  /** all: every enabled service on the VIP needs a healthy backend; any: one serving service is enough. */
  require: 'all' | 'any';
  /** After withdrawing on a planned stop: how long new connections are still accepted while the router converges. */
  withdrawWaitMs: number;
}

export const ANYCAST_DEFAULTS = { dev: 'vip0', require: 'all', withdrawWaitMs: 2000 } as const;

/** null when anycast mode is off (no `SERVER anycast_vip`). */
export function anycastSettings(config: Pick<PerlbalConfig, 'server'>): AnycastSettings | null {
  const s = config.server;
  const vip = s.anycast_vip;
  if (typeof vip !== 'string') return null;
  const host = vip.slice(0, vip.indexOf('/'));
  return {
    vip,
    host,
    family: vip.endsWith('/128') ? 6 : 4,
    dev: typeof s.anycast_dev === 'string' ? s.anycast_dev : ANYCAST_DEFAULTS.dev,
    require: s.anycast_require === 'any' ? 'any' : ANYCAST_DEFAULTS.require,
    withdrawWaitMs: typeof s.anycast_withdraw_wait === 'number' ? s.anycast_withdraw_wait : ANYCAST_DEFAULTS.withdrawWaitMs,
  };
}
