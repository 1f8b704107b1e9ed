// One request's exchange with the backends: the record and its phase (enterPhase is the only writer of it),
// placing it on a backend (dispatch, attach, detach), and ending it (finishExchange, respondFailure). What the
// backend's bytes mean is relay.ts's, what a failed attempt means failures.ts's, Upgrade tunnels tunnel.ts's.
// The exchange reaches its client only through the client's Downstream table and is reached by its backend
// connection only through UpstreamEvents (contracts.ts), so nothing here imports client.ts or the relay.
// Imported, not the global: Node's globalThis.Buffer is a getter, which every per-request use would run.
import { Buffer } from 'node:buffer';
// Imported, not the global: Node's globalThis.performance is a getter, which every per-request call would run.
import { performance } from 'node:perf_hooks';
import { accessLogLine, overHttp2 } from './access-log.ts';
import { sendGenerated } from './answers.ts';
import type { ClientConn, ServiceRuntime, Exchange } from './records.ts';
import type { ExchangePhase } from './contracts.ts';
import { clockNow } from './engine.ts';
import { sendAll, sendHeld, sendNow } from '../runtime/socket-writes.ts';
import { failureMessage, failureStatus, type ProxyFailure } from './errors.ts';
import { requestTarget } from './http/request.ts';
import { countLatency, countResponse } from './management/stats.ts';
import { cookieSaysHighPriority, isHighPriority } from './plugin-options.ts';
import { fieldValue, getField } from './http/fields.ts';
import { closeBackend, openBackend, releaseBackend, spawnAhead, takeIdle, type BackendConn } from './upstream/conn.ts';
import { SECURE } from './upstream/affinity.ts';
import { createReadStream } from 'node:fs';
import { removeSpool } from './spool.ts';
import { depth, enqueue, hasEntries, peekWaiting, shiftWaiting, takeExpired } from './upstream/queue.ts';
import { available, chooseUpstream, onlyFull, releaseUpstream, takeUpstream, type Upstream } from './upstream/upstream.ts';

/** Request body bytes kept for a possible retry of an idempotent request. */
const REPLAY_MAX = 64 * 1024;
/** Response bodies up to this size go out in the same write as the head. */
export const COALESCE_MAX = 16 * 1024;

// Declared in records.ts with the other records that name each other (so no import cycle); re-exported here.
export type { Exchange } from './records.ts';

/**
 * The one writer of an exchange's phase. dispatch: waiting for a backend connection (body bytes queue);
 * request: attached, the request goes out and the response head is awaited; response: the head went to the client,
 * the body is relayed; tunnel: after a 101; done: answered, failed, or the client went away (terminal).
 */
export function enterPhase(x: Exchange, phase: ExchangePhase): void {
  if (x.phase === 'done') return;
  x.phase = phase;
  // Every way an exchange ends comes here: completion, a failure answered, the client gone.
  if (phase === 'done' && x.spool !== null) dropSpool(x);
}

function dropSpool(x: Exchange): void {
  stopSpoolStream(x);
  removeSpool(x.spool!);
  x.spool = null;
}

/** Stops sending the spool file (the attempt ended; a retry starts it again from the beginning). */
export function stopSpoolStream(x: Exchange): void {
  const rs = x.spoolStream;
  if (rs === null) return;
  x.spoolStream = null;
  rs.unpipe();
  rs.destroy();
}

/** Sends the complete spooled body after the head; the response timeout starts once it is all written. */
function sendSpool(x: Exchange, be: BackendConn): void {
  const rs = createReadStream(x.spool!.path);
  x.spoolStream = rs;
  be.deadline = 0;
  rs.on('error', (e) => {
    if (x.spoolStream !== rs) return;
    x.svc.engine.log.error(`service ${x.svc.name}: cannot read spooled upload ${x.spool?.path}: ${e.message}`);
    x.spoolStream = null;
    if (x.res !== null) x.client.down.abort(x.client);
    else respondFailure(x, { kind: 'spool-failed', reason: 'reading the spooled upload failed' });
  });
  rs.on('end', () => {
    if (x.spoolStream !== rs) return;
    x.spoolStream = null;
    if (x.be === be && x.res === null) be.deadline = x.svc.engine.now + x.svc.opts.responseTimeoutMs;
  });
  rs.pipe(be.socket, { end: false });
}

/**
 * Did this client come over TLS (enable_ssl, HTTP/1.1 or an HTTP/2 stream)? The one place that decides the session
 * cookie's `Secure` attribute; the flag is the one X-Forwarded-Proto is written from.
 */
function clientIsTls(c: ClientConn): boolean {
  return c.baseForward.https;
}

/** The Set-Cookie value that pins this client anew (chooseUpstream set it; null: none), Secure for a TLS client. */
export function pinningSetCookie(x: Exchange): string | null {
  const v = x.setCookie;
  return v === null ? null : clientIsTls(x.client) ? v + SECURE : v;
}

/**
 * Sends the request to a backend: an idle keep-alive connection to the chosen one, or a new connection. When every
 * usable backend is at its max_conns it waits in the service's queue (served as slots free up, 503 after
 * queue_timeout), and so does it while others already wait, so a new request does not overtake them. A request
 * Highpri marks waits in the high-priority lane, served before every normal one (Perlbal's waiting_clients_highpri).
 */
export function dispatch(x: Exchange): void {
  const svc = x.svc;
  enterPhase(x, 'dispatch');
  if (x.attempts === 0 && (svc.highpri !== null || svc.opts.highPriorityCookie !== null)) x.highPriority = markedHighPriority(x);
  if (svc.opts.maxConns > 0 && peekWaiting(svc.queue) !== undefined && (onlyFull(svc, x.failed) || anyAvailable(svc, x))) {
    enqueue(svc.queue, x, clockNow(), x.highPriority);
    return;
  }
  const node = chooseUpstream(svc, x, x.failed);
  if (node === null) {
    if (svc.opts.maxConns > 0 && onlyFull(svc, x.failed)) enqueue(svc.queue, x, clockNow(), x.highPriority);
    else respondFailure(x, x.lastFailure ?? { kind: 'no-backend' });
    return;
  }
  sendTo(x, node);
}

/** As Perlbal: high_priority_cookie decides first, then Highpri's make_high_priority hook (URI or Host patterns). */
function markedHighPriority(x: Exchange): boolean {
  const hc = x.svc.opts.highPriorityCookie;
  if (hc !== null && cookieSaysHighPriority(getField(x.req.fields, 'cookie'), hc.name, hc.contents)) return true;
  const hp = x.svc.highpri;
  return hp !== null && isHighPriority(hp, requestTarget(x.req), x.req.hostIndex === -1 ? null : fieldValue(x.req.fields, x.req.hostIndex));
}

function anyAvailable(svc: ServiceRuntime, x: Exchange): boolean {
  const now = svc.engine.now;
  for (const u of svc.nodes) if ((x.failed === null || !x.failed.includes(u)) && available(u, now)) return true;
  return false;
}

/** A slot freed up (a request to one of the service's backends ended): place the oldest waiting requests. */
export function serveQueue(svc: ServiceRuntime): void {
  svc.queueScheduled = false;
  for (let w = peekWaiting(svc.queue); w !== undefined; w = peekWaiting(svc.queue)) {
    const x = w as Exchange;
    const node = chooseUpstream(svc, x, x.failed);
    if (node === null) {
      // Still full; or nothing left to take it at all (its backends went down or drained meanwhile).
      if (onlyFull(svc, x.failed)) return;
      shiftWaiting(svc.queue);
      respondFailure(x, x.lastFailure ?? { kind: 'no-backend' });
      continue;
    }
    shiftWaiting(svc.queue);
    sendTo(x, node);
  }
}

/** Sweep: requests that waited queue_timeout get 503 (one warning per service every 10 s at most, with a count). */
export function expireQueue(svc: ServiceRuntime, now: number): void {
  const limit = svc.opts.queueTimeoutMs;
  let expired = 0;
  for (let w = takeExpired(svc.queue, now, limit); w !== undefined; w = takeExpired(svc.queue, now, limit)) {
    svc.queue.timeouts++;
    expired++;
    respondFailure(w as Exchange, { kind: 'queue-timeout' });
  }
  if (expired === 0) return;
  svc.queueTimeoutsUnlogged += expired;
  if (now - svc.queueTimeoutLoggedAt < 10_000) return;
  svc.engine.log.warn(
    `service ${svc.name}: ${svc.queueTimeoutsUnlogged} request(s) got 503 after waiting queue_timeout ` +
      `${svc.opts.queueTimeoutMs} ms: every backend at max_conns ${svc.opts.maxConns} (${depth(svc.queue)} still waiting)`,
  );
  svc.queueTimeoutLoggedAt = now;
  svc.queueTimeoutsUnlogged = 0;
}

function sendTo(x: Exchange, node: Upstream): void {
  const svc = x.svc;
  x.attempts++;
  const fresh = x.forceFresh;
  const idle = fresh ? null : takeIdle(svc, node);
  x.forceFresh = false;
  x.node = node;
  takeUpstream(svc, node);
  if (idle !== null) {
    idle.exchange = x;
    backendAttached(x, idle);
  } else {
    x.opening = openBackend(svc, node, x, fresh);
  }
  if (svc.opts.connectAhead > 0) spawnAhead(svc);
}

/** Stats' backend_client_assigned hook: a proxied request, high priority when Highpri's patterns say so. */
function statsAssigned(x: Exchange): void {
  const p = x.svc.pstats!;
  if (x.highPriority) p.counts.proxy_requests_highpri++;
  else p.counts.proxy_requests++;
  x.assignedMs = performance.now();
}

/** The backend connection is ready for this exchange: write the head and whatever body is queued. */
export function backendAttached(x: Exchange, be: BackendConn): void {
  const c = x.client;
  enterPhase(x, 'request');
  if (x.svc.pstats !== null) statsAssigned(x);
  x.be = be;
  x.opening = null;
  be.uses++;
  x.sent = true;
  x.gotResponseBytes = false;
  const socket = be.socket;
  let ok: boolean;
  if (x.spool !== null) {
    socket.write(x.backendHead);
    sendSpool(x, be);
    return;
  }
  if (x.queued === 0) {
    ok = sendHeld(x.svc.engine.writes, socket, x.backendHead);
  } else {
    const queue = x.queue;
    for (const b of queue) keepForReplay(x, b);
    queue.unshift(x.backendHead);
    x.queue = [];
    x.queued = 0;
    ok = sendAll(socket, queue);
    c.down.resume(c, 'queue');
  }
  if (!ok) c.down.pause(c, 'backend');
  be.deadline = x.body.done ? x.svc.engine.now + x.svc.opts.responseTimeoutMs : 0;
}

export function keepForReplay(x: Exchange, b: Buffer): void {
  if (x.replay === null) return;
  x.replayBytes += b.length;
  if (x.replayBytes > REPLAY_MAX) {
    x.replay = null;
    return;
  }
  x.replay.push(b);
}

/**
 * Backend bytes arrive in the engine's shared read buffer (see openBackend), which the next read overwrites:
 * anything handed to a socket write must be a copy. `copy` rather than a byte loop or `set(subarray)`: a client's
 * 42-byte request head costs ~500 instructions less per read (callgrind, kept-alive), and no view is made.
 */
export function copyOut(src: Buffer, start: number, end: number): Buffer {
  const n = end - start;
  const out = Buffer.allocUnsafe(n);
  src.copy(out, 0, start, end);
  return out;
}

export function writeToClient(x: Exchange, data: Buffer): void {
  const c = x.client;
  // Big chunks (a streamed body) go out at once: held, they would only wait in memory.
  const ok = data.length <= COALESCE_MAX ? sendHeld(x.svc.engine.writes, c.socket, data) : sendNow(c.socket, data);
  if (!ok) clientBackedUp(x);
}

/** Writes the chunks to the client at once, in order (a big response's head, body and trailer). */
export function writeAllToClient(x: Exchange, chunks: Buffer[]): void {
  if (!sendAll(x.client.socket, chunks)) clientBackedUp(x);
}

function clientBackedUp(x: Exchange): void {
  const c = x.client;
  if (!x.clientBlocked) {
    x.clientBlocked = true;
    x.be?.socket.pause();
    // A client that stops reading gets idle_timeout to resume, then loses its connection.
    c.deadline = x.svc.engine.now + x.svc.opts.idleTimeoutMs;
    if (x.be !== null) x.be.deadline = 0;
  }
}

/** The response is complete: hand the backend connection back, log, and let the client connection go on. */
export function finishExchange(x: Exchange): void {
  if (x.phase === 'done') return;
  enterPhase(x, 'done');
  const be = x.be;
  const res = x.res!;
  if (be !== null) {
    const backendKeepAlive = res.minor >= 1 ? !res.connection.close : res.connection.keepAlive;
    const reusable =
      backendKeepAlive &&
      x.body.done &&
      !x.backendOutOfStep &&
      !res.conflictingLength &&
      res.framing.kind !== 'close' &&
      x.req.upgrade === null;
    detach(x);
    releaseBackend(be, reusable);
  }
  countResponse(x.svc.stats, res.status, x.bodyBytesOut);
  countLatency(x.svc.stats, be === null ? null : be.node.stats, performance.now() - x.startMs);
  if (x.svc.accessLog !== null) logExchange(x, res.status, be);
  x.client.down.exchangeDone(x.client, x.clientKeepAlive && x.body.done);
}

export function detach(x: Exchange): void {
  const be = x.be;
  if (x.node !== null) {
    const svc = x.svc;
    releaseUpstream(svc, x.node);
    x.node = null;
    // After the caller has put the connection back in the idle pool, so the next waiting request can reuse it.
    if (hasEntries(svc.queue) && !svc.queueScheduled) {
      svc.queueScheduled = true;
      process.nextTick(serveQueue, svc);
    }
  }
  x.be = null;
  if (x.spoolStream !== null) stopSpoolStream(x);
  if (be !== null) {
    be.exchange = null;
    if (x.clientBlocked) be.socket.resume();
    // A client paused for this backend's back-pressure is not paused for the next one: once the exchange has left
    // the connection, its 'drain' no longer reaches the client. (A write to a kept-alive connection the backend had
    // just closed returns false and never drains: the retry went elsewhere, and the client was never read again.)
    x.client.down.resume(x.client, 'backend');
  }
  x.clientBlocked = false;
}

export function logExchange(x: Exchange, status: number, be: BackendConn | null): void {
  const c = x.client;
  x.svc.accessLog!.write(
    accessLogLine({
      peerIp: c.peerIp,
      req: x.req,
      status,
      bodyBytes: x.bodyBytesOut,
      backend: be === null ? null : be.node.key,
      backendStatus: x.res === null ? null : x.res.status,
      seconds: (performance.now() - x.startMs) / 1000,
      attempts: x.attempts,
      http2: overHttp2(c.socket),
    }),
  );
}

/** Answer the client with the failure's status (nothing was sent to it yet). */
export function respondFailure(x: Exchange, failure: ProxyFailure): void {
  if (x.phase === 'done') return;
  enterPhase(x, 'done');
  const be = x.be;
  detach(x);
  if (be !== null) closeBackend(be);
  const status = failureStatus(failure);
  const c = x.client;
  if (status >= 500) c.svc.engine.log.debug(`${x.svc.name}: ${status} for ${x.req.method} ${requestTarget(x.req)}: ${failureMessage(failure)}`);
  countResponse(x.svc.stats, status, 0);
  if (x.svc.accessLog !== null) logExchange(x, status, null);
  // The connection may stay open only if the request was read in full.
  sendGenerated(c, status, failureMessage(failure), x.body.done, x.req);
}
