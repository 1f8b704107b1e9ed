// Which service handles a parsed request, as Perlbal's handle_request chain does: the accepting service's
// start_http_request hooks (AccessControl, Redirect), then, for a selector, the selection (Vhosts/Vpaths) and the
// target's own hooks, hop by hop, until a reverse_proxy takes the request or someone answers on the spot.
// No I/O: the client connection's facts in, a decision out.
import { simplePage, type GeneratedResponseOptions } from './errors.ts';
import { copyForwardContext, newForwardContext, rewrittenRequestHead, type ForwardContext, type HeaderRules } from './http/forward.ts';
import { parseRequestHead, requestTarget, type HeadError, type RequestHead } from './http/request.ts';
import { fieldValue } from './http/fields.ts';
import { hookAnswerBytes, hookAnswerStatus, hookAnswerWhy, requestVerdict } from './hook-answer.ts';
import { select } from './selector.ts';
import type { ServiceRuntime } from './records.ts';
import { isTrusted } from './trust.ts';

export type Route =
  /** `preRules`: the HEADER rules of the selectors passed through, for the request before forwarding. */
  | { kind: 'proxy'; svc: ServiceRuntime; forward: ForwardContext; preRules: HeaderRules | null }
  /** Answered before any backend; `svc` is the service whose settings shape the answer (server_tokens, Keep-Alive). */
  | { kind: 'answer'; svc: ServiceRuntime; status: number; why: string; build: (o: GeneratedResponseOptions) => Buffer };

/** What routing needs from the client connection. */
export interface RouteClient {
  peerIp: string;
  /** The accepting service's forwarding context (used as is when it proxies the request itself). */
  baseForward: ForwardContext;
  /** Contexts made for selector targets on this connection, reused by its later requests. */
  targetForward: Map<ServiceRuntime, ForwardContext> | null;
  /** The engine's configGeneration these contexts were made under. */
  forwardGeneration: number;
}

/** Selectors may hand over to selectors; a loop in the config must not loop here. */
const MAX_HOPS = 8;

export function isTrustedBy(svc: ServiceRuntime, peerIp: string): boolean {
  return svc.opts.alwaysTrusted || isTrusted(peerIp, svc.opts.trustedUpstreamProxies);
}

function requestHost(req: RequestHead): string | null {
  return req.hostFromTarget ? req.host : req.hostIndex === -1 ? null : fieldValue(req.fields, req.hostIndex);
}

/** Rule sets applied one after the other, as one set (exact: later removals drop earlier inserts). */
export function composeRules(first: HeaderRules | null, then: HeaderRules | null): HeaderRules | null {
  if (first === null) return then;
  if (then === null) return first;
  return {
    remove: new Set([...first.remove, ...then.remove]),
    // An insert sets a field in place: a later insert of the same name overwrites it where the first one put it.
    insert: [...first.insert.filter((i) => !then.remove.has(i.lower)), ...then.insert],
  };
}

function targetForward(c: RouteClient, svc: ServiceRuntime): ForwardContext {
  const cached = c.targetForward?.get(svc);
  if (cached !== undefined) return cached;
  const forward = newForwardContext(
    c.peerIp,
    isTrustedBy(svc, c.peerIp),
    svc.opts.blindProxy,
    svc.opts.persistBackend,
    c.baseForward.defaultHost,
    svc.opts.headerRules,
    c.baseForward.https,
  );
  (c.targetForward ??= new Map()).set(svc, forward);
  return forward;
}

/** After a reload or a console command: the contexts follow the services' new trust and HEADER settings. */
export function refreshForward(c: RouteClient, listener: ServiceRuntime): void {
  const o = listener.opts;
  c.baseForward = copyForwardContext(c.baseForward, isTrustedBy(listener, c.peerIp), o.blindProxy, o.persistBackend, o.headerRules);
  c.targetForward = null;
  c.forwardGeneration = listener.engine.configGeneration;
}

export function routeRequest(c: RouteClient, listener: ServiceRuntime, req: RequestHead): Route {
  let svc = listener;
  // HEADER rules of the selectors passed through, applied to the request when it leaves each (Perlbal's release_client).
  let extra: HeaderRules | null = null;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    if (svc.hooks.length > 0) {
      const trusted = svc === listener ? c.baseForward.trusted : isTrustedBy(svc, c.peerIp);
      const verdict = requestVerdict(svc.hooks, c.peerIp, trusted, req);
      if (verdict.kind !== 'continue') {
        const why = hookAnswerWhy(verdict);
        return { kind: 'answer', svc, status: hookAnswerStatus(verdict), why, build: (o) => hookAnswerBytes(verdict, o) };
      }
    }
    const sel = svc.selector;
    if (sel === null) {
      if (svc === listener) return { kind: 'proxy', svc, forward: c.baseForward, preRules: null };
      return { kind: 'proxy', svc, forward: targetForward(c, svc), preRules: extra };
    }
    const chosen = select(sel.rules, requestHost(req), requestTarget(req), (name) => sel.services.has(name));
    if (chosen.kind === 'page') {
      const { status, message } = chosen;
      return { kind: 'answer', svc, status, why: message, build: (o) => simplePage(status, message, o) };
    }
    if (chosen.host !== undefined) extra = composeRules(extra, { remove: new Set(), insert: [{ name: 'Host', lower: 'host', value: chosen.host }] });
    extra = composeRules(extra, svc.opts.headerRules);
    svc = sel.services.get(chosen.service)!;
  }
  return { kind: 'answer', svc, status: 500, why: 'selector loop', build: (o) => simplePage(500, `Selectors hand this request on more than ${MAX_HOPS} times.`, o) };
}

/**
 * The request as a selector's target takes it: checked against the target's max_body_size, with the selectors' HEADER
 * rules applied (and parsed again, so what goes out is still a valid head).
 */
export function handOver(route: Extract<Route, { kind: 'proxy' }>, req: RequestHead): RequestHead | HeadError {
  const max = route.svc.opts.maxBodySize;
  if (max > 0 && req.framing.kind === 'length' && req.framing.length > max) {
    return { kind: 'error', status: 413, reason: 'request body larger than max_body_size' };
  }
  if (route.preRules === null) return req;
  const head = rewrittenRequestHead(req, route.preRules);
  const again = parseRequestHead(head, 0, head.length - 4, route.svc.limits);
  return again.kind === 'error' ? { ...again, reason: `after the selector's HEADER rules: ${again.reason}` } : again;
}
