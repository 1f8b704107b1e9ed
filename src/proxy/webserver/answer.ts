// How a web_server request ends when tsbal answers it itself (Perlbal's _simple_response): the access log, the
// counters, and the page. Shared by serving (serve.ts) and writing (put.ts).
import { accessLogLine } from '../access-log.ts';
import type { ClientConn } from '../client.ts';
import { sendSimplePage } from '../client-answer.ts';
import { requestTarget, type RequestHead } from '../http/request.ts';
import { countResponse } from '../management/stats.ts';

export function gone(c: ClientConn): boolean {
  return c.phase === 'closed' || c.phase === 'closing';
}

export function record(c: ClientConn, req: RequestHead, status: number, bodyBytes: number, startMs: number): void {
  const svc = c.svc;
  countResponse(svc.stats, status, bodyBytes);
  const accessLog = svc.accessLog ?? c.listener.accessLog;
  if (accessLog === null) return;
  accessLog.write(accessLogLine({ peerIp: c.peerIp, req, status, bodyBytes, backend: null, backendStatus: null, seconds: (performance.now() - startMs) / 1000, attempts: 0 }));
}

/**
 * Perlbal's page for `status` with `message` under the heading. `requestRead`: the request body (if any) was read
 * in full, so the connection may stay open; by default only a request without a body has been.
 */
export function page(c: ClientConn, req: RequestHead, status: number, message: string, why: string, startMs: number, requestRead = req.framing.kind === 'none'): void {
  if (gone(c)) return;
  if (status >= 400) c.svc.engine.log.debug(`${c.svc.name}: ${status} to ${c.peerIp} for ${requestTarget(req)}: ${why}`);
  record(c, req, status, 0, startMs);
  // Perlbal's own phrase in its page heading (the status line keeps the standard one): `Bad request`, and none for
  // codes its table lacks (201).
  sendSimplePage(c, req, status, message, status === 400 ? 'Bad request' : status === 201 ? '' : undefined, requestRead);
}
