// How a web_server request ends when tsbal answers it itself (Perlbal's _simple_response): the access log, the
// counters, the keep-alive decision and the page. Shared by serving (serve.ts), writing (put.ts) and
// concatenating (concat.ts).
import { accessLogLine, overHttp2 } from '../access-log.ts';
import { simplePage } from '../errors.ts';
import { requestTarget, type RequestHead } from '../http/request.ts';
import { countResponse } from '../management/stats.ts';
import type { WebConn } from './conn.ts';

export function gone(c: WebConn): boolean {
  return c.phase === 'closed' || c.phase === 'closing';
}

export function record(c: WebConn, req: RequestHead, status: number, bodyBytes: number, startMs: number): void {
  const svc = c.svc;
  countResponse(svc.stats, status, bodyBytes);
  const accessLog = svc.accessLog ?? c.listener.accessLog;
  if (accessLog === null) return;
  accessLog.write(accessLogLine({ peerIp: c.peerIp, req, status, bodyBytes, backend: null, backendStatus: null, seconds: (performance.now() - startMs) / 1000, attempts: 0, http2: overHttp2(c.socket) }));
}

/** May the connection stay open after this answer (answers.ts keepAliveFor, by the accepting service's persist_client)? */
export function webKeepAlive(c: WebConn, req: RequestHead, requestRead: boolean): boolean {
  const wants = req.minor === 1 ? !req.connection.close : req.connection.keepAlive;
  return requestRead && wants && c.listener.opts.persistClient && !c.ended && !c.svc.engine.draining;
}

/**
 * Perlbal's page for `status` with `message` under the heading. `requestRead`: the request body (if any) was read
 * in full, so the connection may stay open; by default only a request without a body has been.
 */
export function page(c: WebConn, req: RequestHead, status: number, message: string, why: string, startMs: number, requestRead = req.framing.kind === 'none'): void {
  if (gone(c)) return;
  const svc = c.svc;
  if (status >= 400) svc.engine.log.debug(`${svc.name}: ${status} to ${c.peerIp} for ${requestTarget(req)}: ${why}`);
  record(c, req, status, 0, startMs);
  const keepAlive = webKeepAlive(c, req, requestRead);
  // Perlbal's own phrase in its page heading (the status line keeps the standard one): `Bad request`, and none for
  // codes its table lacks (201).
  const english = status === 400 ? 'Bad request' : status === 201 ? '' : undefined;
  c.socket.write(simplePage(status, message, { keepAlive, keepAliveTimeoutSec: svc.keepAliveTimeoutSec, serverTokens: svc.opts.serverTokens, head: req.method === 'HEAD' }, english));
  c.down.exchangeDone(c, keepAlive);
}
