// `SET <service> <key> = <value>` on a running service: the options that are read afresh for each request or
// connection, so a new value takes effect at once without touching anything in flight. Other keys need a restart.
import type { Role } from '../../config/model.ts';
import { appliesTo, PLUGIN_SERVICE_OPTIONS, roleRestriction, serviceOption } from '../../config/perlbal/options.ts';
import { parseBool, parseInt, parseSize, parseTime, type ValueResult } from '../../config/perlbal/values.ts';
import type { ReverseProxyOptions } from '../options.ts';

type Field<T> = { [K in keyof ReverseProxyOptions]: ReverseProxyOptions[K] extends T ? K : never }[keyof ReverseProxyOptions];

interface LiveKey {
  parse: (key: string, raw: string) => ValueResult<unknown>;
  field: keyof ReverseProxyOptions;
}

const bool = (field: Field<boolean>): LiveKey => ({ parse: parseBool, field });
const int = (field: Field<number>): LiveKey => ({ parse: (k, raw) => parseInt(k, raw), field });
const time = (field: Field<number>): LiveKey => ({ parse: parseTime, field });
const text = (field: Field<string>): LiveKey => ({ parse: (_k, raw) => ({ ok: true, value: raw }), field });

const LIVE_KEYS: Readonly<Record<string, LiveKey>> = {
  persist_client: bool('persistClient'),
  persist_backend: bool('persistBackend'),
  verify_backend: bool('verifyBackend'),
  verify_backend_path: text('verifyBackendPath'),
  backend_persist_cache: int('backendPersistCache'),
  max_backend_uses: int('maxBackendUses'),
  connect_ahead: int('connectAhead'),
  always_trusted: bool('alwaysTrusted'),
  blind_proxy: bool('blindProxy'),
  server_tokens: bool('serverTokens'),
  idle_timeout: time('idleTimeoutMs'),
  connect_timeout: time('connectTimeoutMs'),
  response_timeout: time('responseTimeoutMs'),
  backend_idle_timeout: time('backendIdleTimeoutMs'),
  header_timeout: time('headerTimeoutMs'),
  max_retries: int('maxRetries'),
  max_body_size: { parse: parseSize, field: 'maxBodySize' },
};

export const LIVE_SERVICE_KEYS: readonly string[] = Object.keys(LIVE_KEYS);

export type LiveSet = { kind: 'ok'; opts: ReverseProxyOptions } | { kind: 'error'; message: string };

const ALL_PLUGINS = Object.keys(PLUGIN_SERVICE_OPTIONS);

/** The options after `SET key = raw` on a running service of `role`, or Perlbal's (or tsbal's) error text. */
export function setLiveOption(role: Role, opts: ReverseProxyOptions, key: string, raw: string): LiveSet {
  const spec = serviceOption(key, ALL_PLUGINS);
  if (spec === undefined) {
    if (key === 'plugins' || key.includes('.') || key === 'nodefile' || key === 'balance_method') return restart(key);
    return { kind: 'error', message: `Unknown service parameter '${key}'` };
  }
  if (!appliesTo(spec, role)) return { kind: 'error', message: roleRestriction(spec) };
  const live = LIVE_KEYS[key];
  if (live === undefined) return restart(key);
  const parsed = live.parse(key, raw);
  if (!parsed.ok) return { kind: 'error', message: parsed.message };
  return { kind: 'ok', opts: { ...opts, [live.field]: parsed.value } };
}

function restart(key: string): LiveSet {
  return {
    kind: 'error',
    message: `tsbal cannot change '${key}' on a running service (it can: ${LIVE_SERVICE_KEYS.join(', ')}); change perlbal.conf and restart`,
  };
}
