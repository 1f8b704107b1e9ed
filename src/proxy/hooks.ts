// Perlbal's `start_http_request` hooks for the plugins tsbal enforces (AccessControl, Redirect, NotModified,
// MaxContentLength): run in the order
// `SET plugins` registered them, once per request, after the head is read and before anything goes to a backend.
// The first hook that answers ends the chain, as Perlbal's run_hook does. Pure: request facts in, a verdict out.
import type { PerlbalConfig, ServiceModel } from '../config/model.ts';
import { own } from '../config/records.ts';
import { accessClientIp, accessDecision, compileAccess, type AccessPolicy } from './access.ts';
import { compileRedirects, redirectLocation, type RedirectMap } from './redirect.ts';
import { maxContentLength, notModifiedPattern } from './plugin-options.ts';

export type RequestHook =
  | { plugin: 'accesscontrol'; policy: AccessPolicy }
  | { plugin: 'redirect'; map: RedirectMap }
  /** Perlbal::Plugin::NotModified: 304 to any If-Modified-Since on a Host matching the pattern. */
  | { plugin: 'notmodified'; hostPattern: RegExp }
  /** Perlbal::Plugin::MaxContentLength: 413 when Content-Length is above the limit (0: no limit). */
  | { plugin: 'maxcontentlength'; max: number }

  /** tsbal's redirect_https: every request on this (plain) service goes to the same URL over HTTPS. */
  | { plugin: 'https'; port: number };

export type HookVerdict =
  | { kind: 'continue' }
  /** AccessControl's refusal: Perlbal's `403` with body text `Access denied.` */
  | { kind: 'deny'; clientIp: string; rule: number }
  | { kind: 'redirect'; location: string }
  /** Perlbal's send_response(status, message): NotModified's 304, MaxContentLength's 413. */
  | { kind: 'page'; status: number; message: string; why: string }

  /**
   * redirect_https: 301 for GET and HEAD, 308 for the rest (which keeps the method and body); 400 (location null)
   * when the request names no host to send the client to.
   */
  | { kind: 'https'; location: string | null; status: 301 | 308 | 400 };

/** What the hooks look at, computed only when a service has hooks. */
export interface HookRequest {
  peerIp: string;
  /** always_trusted, or the peer is in trusted_upstream_proxies. */
  trusted: boolean;
  /** Host from an absolute-form target, else the Host field; null when there is none. */
  host: string | null;
  /** The request target, an absolute-form one reduced to its path. */
  path: string;
  /** The request method (redirect_https answers 308 to anything but GET and HEAD). */
  method?: string;
  /** Read only when use_observed_ip needs it. */
  xForwardedFor(): string | undefined;
  /** The If-Modified-Since field, read only by NotModified. */
  ifModifiedSince(): string | undefined;
  /** The declared body length (-1 when the request has no Content-Length). */
  contentLength: number;
}

const CONTINUE: HookVerdict = { kind: 'continue' };

/** Perlbal's plugin setters take the raw value; tsbal's parser has already checked it is a boolean. */
function isOn(raw: string | undefined): boolean {
  return raw !== undefined && ['1', 'true', 'on', 'yes'].includes(raw.toLowerCase());
}

/** The hooks of one service, in registration order; plugins without a request hook add nothing. */
export function compileRequestHooks(service: ServiceModel, config: PerlbalConfig): RequestHook[] {
  const hooks: RequestHook[] = [];
  // Before any plugin: nothing on a redirect-only listener should be decided over plain HTTP.
  if (service.options.redirect_https === true) {
    const port = service.options.redirect_https_port;
    hooks.push({ plugin: 'https', port: typeof port === 'number' ? port : 443 });
  }
  for (const plugin of service.plugins) {
    if (plugin === 'accesscontrol') {
      const cfg = own(config.access, service.name) ?? { policy: 'allow' as const, rules: [] };
      hooks.push({ plugin, policy: compileAccess(cfg, isOn(service.extra['accesscontrol.use_observed_ip'])) });
    } else if (plugin === 'redirect') {
      hooks.push({ plugin, map: compileRedirects(own(config.redirects, service.name) ?? []) });
    } else if (plugin === 'notmodified') {
      // Perlbal registers the hook only once host_pattern is set: without one the plugin does nothing.
      const hostPattern = notModifiedPattern(service);
      if (hostPattern !== null) hooks.push({ plugin, hostPattern });
    } else if (plugin === 'maxcontentlength') {
      const max = maxContentLength(service);
      if (max > 0) hooks.push({ plugin, max });
    }
  }
  return hooks;
}

export function runRequestHooks(hooks: readonly RequestHook[], req: HookRequest): HookVerdict {
  for (const hook of hooks) {
    if (hook.plugin === 'accesscontrol') {
      const clientIp = accessClientIp(hook.policy, req.peerIp, req.trusted, req.xForwardedFor);
      const d = accessDecision(hook.policy, clientIp);
      if (d.kind === 'deny') return { kind: 'deny', clientIp, rule: d.rule };
    } else if (hook.plugin === 'redirect') {
      const location = redirectLocation(hook.map, req.host, req.path);
      if (location !== null) return { kind: 'redirect', location };
    } else if (hook.plugin === 'https') {
      const location = httpsLocation(req.host, req.path, hook.port);
      // Without a usable Host (HTTP/1.0) there is no name to send the client to, and nothing is served over plain HTTP.
      if (location === null) return { kind: 'https', location: null, status: 400 };
      return { kind: 'https', location, status: req.method === 'GET' || req.method === 'HEAD' ? 301 : 308 };
    } else if (hook.plugin === 'notmodified') {
      // Perl truth: an empty (or "0") If-Modified-Since, or no Host, lets the request through.
      if (req.host === null || req.host === '' || !hook.hostPattern.test(req.host)) continue;
      const ims = req.ifModifiedSince();
      if (ims !== undefined && ims !== '' && ims !== '0') return { kind: 'page', status: 304, message: 'Not Modified', why: 'NotModified: If-Modified-Since' };
    } else if (req.contentLength > hook.max) {
      return { kind: 'page', status: 413, message: 'Content too long.\n', why: `MaxContentLength: ${req.contentLength} > ${hook.max}` };
    }
  }
  return CONTINUE;
}

/** `https://HOST[:PORT]/path` for the client's Host (its port dropped), or null without a Host. */
export function httpsLocation(host: string | null, path: string, port: number): string | null {
  if (host === null || host === '') return null;
  // `[v6]:port` or `name:port`: keep the bracketed address or the name.
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
  if (name === '' || /[\s/?#@\\]/.test(name)) return null;
  return `https://${name}${port === 443 ? '' : `:${port}`}${path.startsWith('/') ? path : `/${path}`}`;
}
