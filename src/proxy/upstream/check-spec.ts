// A pool's health-check settings (perlbal.conf `health_check*`, `slow_start`, `all_down`) compiled for running. Pure.
// Two services on one pool compile the same spec, so its `id` makes the checker run one check per ip:port and spec.
import type { OptionValue } from '../../config/model.ts';

export interface CheckSpec {
  kind: 'http' | 'tcp';
  /** HTTP only. */
  method: string;
  path: string;
  /** Host header; null: the backend's ip:port. */
  host: string | null;
  /** Accepted statuses as lo-hi pairs (`200-399` → [200, 399]). */
  expect: readonly number[];
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  /** HTTP, plain: keep one connection per backend for its checks (health_check_reuse, on by default). */
  reuse: boolean;
  /** Everything above, as one string: the checker's key beside ip:port. */
  id: string;
}

/** What a pool's backends do about health beyond the passive breaker. */
export interface PoolHealthOptions {
  /** null: no active checks (passive only). */
  check: CheckSpec | null;
  /** Time a backend coming back takes to ramp from a small share to its full weight (0: at once). */
  slowStartMs: number;
  /** Consecutive 5xx answers that mark a backend down (0: off). */
  streak5xx: number;
  /**
   * Every backend down: `keep_trying` sends the request to the backend whose last failure is the oldest; `503`
   * answers 503. Only matters with checks on: without them the passive breaker already lets a trial through.
   */
  allDown: 'keep_trying' | '503';
}

export const NO_HEALTH_OPTIONS: PoolHealthOptions = { check: null, slowStartMs: 0, streak5xx: 0, allDown: 'keep_trying' };

type Options = Readonly<Record<string, OptionValue>>;

function num(o: Options, key: string, dflt: number): number {
  const v = o[key];
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : dflt;
}

function str(o: Options, key: string): string | null {
  const v = o[key];
  return typeof v === 'string' && v !== '' ? v : null;
}

/** The pool's options (as the config parser types them; absent keys take the option table's defaults). */
export function poolHealthOptions(o: Options): PoolHealthOptions {
  const mode = str(o, 'health_check');
  const path = str(o, 'health_check_path');
  const kind = mode === 'tcp' ? 'tcp' : mode === 'http' || (mode === null && path !== null) ? 'http' : null;
  const expectRaw = o.health_check_expect;
  const expect = Array.isArray(expectRaw) && expectRaw.length >= 2 ? (expectRaw as number[]) : [200, 399];
  const intervalMs = Math.max(10, num(o, 'health_check_interval', 2000));
  const timeoutMs = Math.max(10, num(o, 'health_check_timeout', 1000));
  const rise = Math.max(1, Math.floor(num(o, 'health_check_rise', 2)));
  const fall = Math.max(1, Math.floor(num(o, 'health_check_fall', 3)));
  const method = str(o, 'health_check_method') ?? 'GET';
  const host = str(o, 'health_check_host');
  const checkPath = path ?? '/';
  const check: CheckSpec | null =
    kind === null
      ? null
      : {
          kind,
          method,
          path: checkPath,
          host,
          expect,
          intervalMs,
          timeoutMs,
          rise,
          fall,
          reuse: o.health_check_reuse !== 'off',
          id: kind === 'tcp'
            ? `tcp ${intervalMs}/${timeoutMs} ${rise}/${fall}`
            : `http ${method} ${checkPath} ${host ?? '-'} ${expect.join(',')} ${intervalMs}/${timeoutMs} ${rise}/${fall}${o.health_check_reuse === 'off' ? ' close' : ''}`,
        };
  const allDown = o.all_down === '503' ? '503' : 'keep_trying';
  return { check, slowStartMs: num(o, 'slow_start', 0), streak5xx: Math.floor(num(o, 'health_check_5xx_streak', 0)), allDown };
}

/** Is `status` one the check accepts? */
export function expectedStatus(spec: CheckSpec, status: number): boolean {
  const e = spec.expect;
  for (let i = 0; i + 1 < e.length; i += 2) if (status >= e[i]! && status <= e[i + 1]!) return true;
  return false;
}

/** `GET /health` or `TCP connect`: how log lines name the check. */
export function describeCheck(spec: CheckSpec): string {
  return spec.kind === 'tcp' ? 'TCP connect' : `${spec.method} ${spec.path}`;
}
