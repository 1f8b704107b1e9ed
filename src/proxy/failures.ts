// When an exchange goes wrong: retry on another backend if that is safe (retry.ts), answer 502/503/504 if nothing
// was sent to the client yet (errors.ts), or cut the client connection if a response had started.
import { failureMessage, type ProxyFailure } from './errors.ts';
import { detach, dispatch, enterPhase, finishExchange, logExchange, respondFailure, type Exchange } from './exchange.ts';
import { requestTarget } from './http/request.ts';
import { countResponse } from './management/stats.ts';
import { mayRetry } from './retry.ts';
import { closeBackend, noteNodeFailure, openBackend, type BackendConn } from './upstream/conn.ts';

/** Keep-alive races retried per request without using up a retry (each on a new connection). */
const MAX_STALE_RETRIES = 3;

/** This attempt failed before the client got any response byte: retry elsewhere if safe, else answer. */
export function attemptFailed(x: Exchange, failure: ProxyFailure, excludeNode: boolean, stale: boolean): void {
  const node = x.node;
  const be = x.be;
  detach(x);
  if (be !== null) closeBackend(be);
  x.lastFailure = failure;
  if (x.phase === 'done') return;
  if (x.res !== null) {
    x.client.down.abort(x.client);
    return;
  }
  // A stale keep-alive connection does not use up a retry; the next attempt is on a new connection.
  if (stale) x.attempts--;
  const facts = {
    attempts: x.attempts,
    maxRetries: x.svc.opts.maxRetries,
    sent: x.sent,
    gotResponseBytes: x.gotResponseBytes,
    idempotent: x.idempotent,
    replayable: x.replay !== null || x.spool !== null,
  };
  if (!mayRetry(facts)) {
    respondFailure(x, failure);
    return;
  }
  if (stale) {
    x.forceFresh = true;
  } else if (excludeNode && node !== null) {
    (x.failed ??= []).push(node);
  }
  // Whatever reached the failed backend goes out again, ahead of what is still queued.
  if (x.sent && x.replay !== null && x.replay.length > 0) {
    x.queue = x.replay.concat(x.queue);
    x.queued += x.replayBytes;
  }
  if (x.replay !== null) {
    x.replay = [];
    x.replayBytes = 0;
  }
  x.sent = false;
  x.gotResponseBytes = false;
  x.svc.stats.retries++;
  x.svc.engine.log.debug(
    `${x.svc.name}: retrying ${x.req.method} ${requestTarget(x.req)} after ${failureMessage(failure)} (attempt ${x.attempts + 1})`,
  );
  dispatch(x);
}

export function badResponse(x: Exchange, be: BackendConn, reason: string): void {
  x.svc.engine.log.warn(`backend ${be.node.key}: invalid response to ${x.req.method} ${requestTarget(x.req)}: ${reason}`);
  x.gotResponseBytes = true;
  attemptFailed(x, { kind: 'bad-response', reason }, true, false);
}

/** The response head went out already: all we can do is cut the client off (it sees a truncated response). */
export function abortMidResponse(x: Exchange, be: BackendConn, reason: string): void {
  x.svc.engine.log.warn(`backend ${be.node.key}: response to ${x.req.method} ${requestTarget(x.req)} broke off: ${reason}`);
  const c = x.client;
  detach(x);
  closeBackend(be);
  enterPhase(x, 'done');
  countResponse(x.svc.stats, x.res?.status ?? 502, x.bodyBytesOut);
  if (x.svc.accessLog !== null) logExchange(x, x.res?.status ?? 502, be);
  c.down.abort(c);
}

/** Connecting or verifying failed for this exchange (upstream/conn.ts already noted the node failure). */
export function backendOpenFailed(x: Exchange, be: BackendConn, cause: string): void {
  if (x.opening === be) x.opening = null;
  if (x.phase === 'done') return;
  const failure: ProxyFailure =
    cause === 'connect timeout' || cause === 'no answer to the verify probe'
      ? { kind: 'connect-timeout' }
      : { kind: 'connect-failed', reason: cause };
  if (cause === 'verify-no-keepalive') {
    // Not a failure of the backend: connect again, without the probe this time.
    const node = x.node;
    if (node === null) return;
    x.opening = openBackend(x.svc, node, x);
    return;
  }
  x.sent = false;
  attemptFailed(x, failure, true, false);
}

export function backendEndedUnderExchange(x: Exchange, be: BackendConn): void {
  if (be.phase === 'tunnel') {
    if (!x.client.socket.destroyed) x.client.socket.end();
    return;
  }
  if (x.res !== null && x.resBody !== null && x.resBody.framing === 'close' && x.phase !== 'done') {
    x.resBody.done = true;
    finishExchange(x);
  }
}

export function backendClosedUnderExchange(x: Exchange, be: BackendConn): void {
  if (x.phase === 'done') return;
  if (x.client.phase === 'tunnel') {
    x.client.down.abort(x.client);
    return;
  }
  if (x.res === null) {
    // Closed before a complete response head. On a connection the backend already saw idle (reused, or after the
    // verify probe) with nothing received, this is the keep-alive race: the backend closed it as we sent (Apache's
    // event MPM does so to idle connections when busy). Not the backend's fault: try a new connection, a few times.
    const stale = (be.uses > 1 || be.verified) && !x.gotResponseBytes && x.staleRetries < MAX_STALE_RETRIES;
    if (stale) x.staleRetries++;
    const reason = be.errorCode ?? 'closed';
    attemptFailed(x, { kind: 'backend-closed', reason }, !stale, stale);
    return;
  }
  if (x.resBody !== null && x.resBody.framing === 'close') {
    x.resBody.done = true;
    finishExchange(x);
    return;
  }
  abortMidResponse(x, be, `backend closed the connection mid-body (${be.errorCode ?? 'closed'})`);
}

export function backendTimedOut(x: Exchange, be: BackendConn): void {
  if (be.phase === 'tunnel') {
    x.client.down.abort(x.client);
    return;
  }
  if (x.res === null) {
    noteNodeFailure(be, `no response within ${x.svc.opts.responseTimeoutMs / 1000} s`);
    attemptFailed(x, { kind: 'response-timeout' }, true, false);
    return;
  }
  abortMidResponse(x, be, `no data for ${x.svc.opts.idleTimeoutMs / 1000} s`);
}

/** The client went away (closed, reset, or timed out) while this exchange was in progress. */
export function clientGone(x: Exchange): void {
  if (x.phase === 'done') return;
  enterPhase(x, 'done');
  const be = x.be;
  detach(x);
  if (be !== null) closeBackend(be);
  // A connection still being opened for it stays useful: it becomes an idle spare when ready.
  if (x.opening !== null) {
    x.opening.exchange = null;
    x.opening = null;
  }
}
