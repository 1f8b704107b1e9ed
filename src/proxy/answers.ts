// Answers tsbal makes itself, without a backend: generated error pages and the answers of plugins and selectors
// (403, 301, 404). Each ends the request like a response from a backend would, through the client's Downstream
// table: the connection is kept for the next request, or closed.
import { accessLogLine, overHttp2 } from './access-log.ts';
import type { ClientConn } from './records.ts';
import { generatedResponse, type GeneratedResponseOptions } from './errors.ts';
import { requestTarget, type RequestHead } from './http/request.ts';
import { countResponse } from './management/stats.ts';
import type { Route } from './route.ts';

/**
 * A response tsbal makes itself (errors). `requestRead`: the request body was fully read, so the connection
 * may stay open if the client and persist_client allow.
 */
export function sendGenerated(c: ClientConn, status: number, message: string, requestRead: boolean, req: RequestHead | null): void {
  sendOwn(c, requestRead, req, (o) => generatedResponse(status, message, o));
}

/** May the connection stay open after this answer? `requestRead`: the request body (if any) has been read. */
export function keepAliveFor(c: ClientConn, req: RequestHead | null, requestRead: boolean): boolean {
  const wants = req === null ? false : req.minor === 1 ? !req.connection.close : req.connection.keepAlive;
  // persist_client is the accepting service's (a selector's, for requests it handed over), as in Perlbal.
  return requestRead && wants && c.listener.opts.persistClient && !c.ended && !c.svc.engine.draining;
}

function sendOwn(c: ClientConn, requestRead: boolean, req: RequestHead | null, build: (o: GeneratedResponseOptions) => Buffer): void {
  if (c.phase === 'closed' || c.phase === 'closing') return;
  const svc = c.svc;
  const keepAlive = keepAliveFor(c, req, requestRead);
  c.socket.write(
    build({
      keepAlive,
      keepAliveTimeoutSec: svc.keepAliveTimeoutSec,
      serverTokens: svc.opts.serverTokens,
      head: req !== null && req.method === 'HEAD',
    }),
  );
  c.down.exchangeDone(c, keepAlive);
}

/**
 * Answered before any backend (403 from AccessControl, 301 from Redirect, a selector's 404). A request body is not
 * read: the connection closes after the answer (Perlbal keeps it open).
 */
export function answerOnTheSpot(c: ClientConn, route: Extract<Route, { kind: 'answer' }>, req: RequestHead): void {
  const svc = route.svc;
  svc.engine.log.debug(`${svc.name}: ${route.status} to ${c.peerIp}: ${route.why}`);
  countResponse(svc.stats, route.status, 0);
  const accessLog = svc.accessLog ?? c.listener.accessLog;
  if (accessLog !== null) {
    accessLog.write(accessLogLine({ peerIp: c.peerIp, req, status: route.status, bodyBytes: 0, backend: null, backendStatus: null, seconds: 0, attempts: 0, http2: overHttp2(c.socket) }));
  }
  c.svc = svc;
  c.phase = 'wait';
  sendOwn(c, req.framing.kind === 'none', req, route.build);
}

/**
 * A management service reached through a selector (a VHOST target): the management port's pages, one answer, then
 * the connection closes, as on the management port itself.
 */
export function answerManagement(c: ClientConn, req: RequestHead): void {
  const svc = c.svc;
  const pages = svc.engine.managementPages;
  c.stash = null;
  c.phase = 'wait';
  if (pages === null) {
    sendGenerated(c, 500, `Can't map to service type management`, false, req);
    return;
  }
  void pages(req.method, requestTarget(req)).then((a) => {
    if (c.phase === 'closed' || c.phase === 'closing') return;
    countResponse(svc.stats, Number(a.head.slice(9, 12)), a.body.length);
    c.socket.write(req.method === 'HEAD' ? a.head : a.head + a.body, 'latin1');
    c.down.exchangeDone(c, false);
  });
}

/** Refuses what the client sent (malformed, too large, timed out): a short 4xx, then close. */
export function refuse(c: ClientConn, status: number, reason: string, req: RequestHead | null): void {
  const svc = c.svc;
  svc.engine.log.debug(`${svc.name}: ${status} to ${c.peerIp}: ${reason}`);
  countResponse(svc.stats, status, 0);
  if (svc.accessLog !== null) {
    svc.accessLog.write(
      accessLogLine({ peerIp: c.peerIp, req, status, bodyBytes: 0, backend: null, backendStatus: null, seconds: 0, attempts: 0, http2: overHttp2(c.socket) }),
    );
  }
  c.stash = null;
  c.phase = 'wait';
  sendGenerated(c, status, reason, false, req);
}
