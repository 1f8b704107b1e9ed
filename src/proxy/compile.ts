// A service's config compiled for running: model → ServiceConfig. The one place it happens, for startProxy and for a
// reload alike, so a started and a reloaded service cannot differ. No I/O (access logs are opened by the caller).
import { randomBytes } from 'node:crypto';
import type { PerlbalConfig, ServiceModel } from '../config/model.ts';
import { compileRequestHooks } from './hooks.ts';
import { compileAssignHooks } from './assign-hooks.ts';
import { compileThrottle } from './throttle.ts';
import { compilePluginStats } from './plugin-stats.ts';
import { highpriPatterns } from './plugin-options.ts';
import { responseSuffixes } from './http/response-head.ts';
import { reverseProxyOptions } from './options.ts';
import { compileSelector } from './selector.ts';
import { backoffPolicy, type ServiceConfig } from './service.ts';
import { keyFromSecret, newSticky } from './upstream/affinity.ts';
import { NO_HEALTH_OPTIONS, poolHealthOptions } from './upstream/check-spec.ts';
import { webServerOptions } from './webserver/options.ts';
import { newReproxyCache } from './reproxy/plan.ts';
import { REPROXY_HANDLERS } from './reproxy/serve.ts';

/**
 * Throws (with `file:line:` where the model knows it) on what the config checker lets through but cannot run.
 * A selector's `services` map is empty here: the caller fills it once every service of the config exists.
 */
export function compileService(model: ServiceModel, config: PerlbalConfig, affinityKey: Buffer = randomBytes(32)): ServiceConfig {
  // A selector target that is not enabled takes handed-over requests only: it does not listen.
  // A management service's own port is its console (management/listeners.ts); as a selector's target it only answers.
  const opts = { ...reverseProxyOptions(model, config.pools), ...(model.enabled && model.role !== 'management' ? {} : { listen: null }) };
  const keepAliveTimeoutSec = Math.round(opts.persistClientIdleTimeoutMs / 1000);
  const st = opts.sticky;
  const reproxy = model.role === 'reverse_proxy' && opts.enableReproxy;
  // sticky_secret, else the engine's key (the cluster's authkeys, else one generated into the state dir: cli/run.ts).
  const sticky = st === null ? null : newSticky(st.mode, st.cookie, st.secret === null ? affinityKey : keyFromSecret(st.secret));
  return {
    opts,
    limits: { maxHeaderSize: opts.maxHeaderSize, maxHeaderCount: opts.maxHeaderCount, maxUrlLength: opts.maxUrlLength },
    backoff: backoffPolicy(opts),
    health: model.role === 'reverse_proxy' ? poolHealthOptions(config.pools.find((p) => p.name === model.pool)?.options ?? {}) : NO_HEALTH_OPTIONS,
    keepAliveTimeoutSec,
    suffixes: responseSuffixes(keepAliveTimeoutSec),
    accessLog: null,
    hooks: compileRequestHooks(model, config),
    assign: compileAssignHooks(model),
    throttle: model.role === 'reverse_proxy' ? compileThrottle(model) : null,
    pstats: compilePluginStats(model),
    highpri: model.role === 'reverse_proxy' ? highpriPatterns(model) : null,
    selector: model.role === 'selector' ? { rules: compileSelector(model), services: new Map() } : null,
    web: model.role === 'web_server' ? webServerOptions(model) : null,
    management: model.role === 'management',
    enabled: model.enabled,
    sticky,
    // Read from files by the caller (tls/attach.ts), like the access log.
    tls: null,
    backendTls: null,
    h2: null,
    reproxyCache: reproxy ? newReproxyCache(opts.reproxyCacheMaxSize) : null,
    reproxy: reproxy ? REPROXY_HANDLERS : null,
  };
}
