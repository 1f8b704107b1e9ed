// The bytes of one exchange: starting it for a parsed request, the request body from the client (with
// back-pressure), and the backend's answer relayed to the client (interim heads, the head, the body, de-chunked for
// HTTP/1.0). EXCHANGE_EVENTS is how a backend connection reaches this code (contracts.ts UpstreamEvents).
// The record and its phase are exchange.ts's, failures failures.ts's, Upgrade tunnels tunnel.ts's.
// Imported, not the global: Node's globalThis.performance is a getter, which every per-request call would run.
import { performance } from 'node:perf_hooks';
import type { ClientConn } from './records.ts';
import type { UpstreamEvents } from './contracts.ts';
import {
  COALESCE_MAX,
  copyOut,
  dispatch,
  backendAttached,
  enterPhase,
  finishExchange,
  keepForReplay,
  pinningSetCookie,
  respondFailure,
  writeToClient,
  writeAllToClient,
  type Exchange,
} from './exchange.ts';
import {
  abortMidResponse,
  backendClosedUnderExchange,
  backendEndedUnderExchange,
  backendOpenFailed,
  backendTimedOut,
  badResponse,
} from './failures.ts';
import { newBodyReader, readBody, relayEnd, takeTrailer } from './http/body.ts';
import { copyForwardContext, writeBackendRequestHead, type ForwardContext } from './http/forward.ts';
import { assignRules, type AssignHooks } from './assign-hooks.ts';
import { noteRecent, type PluginStats } from './plugin-stats.ts';
import { F, fieldValue, findField } from './http/fields.ts';
import { requestTarget } from './http/request.ts';
import { readResponseHead } from './http/lenient.ts';
import type { RequestHead } from './http/request.ts';
import { writeClientResponseHead, writeInterimHead, type ClientResponseContext } from './http/response-head.ts';
import { LAST_CHUNK, frameChunk } from './http/trailers.ts';
import { putRange, takeWritten } from './http/writer.ts';
import { isIdempotent } from './retry.ts';
import { startTunnel } from './tunnel.ts';
import { sendNow } from '../runtime/socket-writes.ts';
import { reproxyInstruction } from './reproxy/plan.ts';
import { forwardedClientIp } from './trust.ts';
import { findCookie, hasIdPrefix, setCookiePrefix, STICKY_ID_LENGTH, stripIdPrefix } from './upstream/affinity.ts';
import { noteNodeSuccess, type BackendConn } from './upstream/conn.ts';
import { askNoDelay } from '../runtime/net.ts';
import { closeSpoolFd, decideAfterRead, decideAtHead, lengthHead, openSpool, spoolErrorText, writeSpool, type SpoolReason } from './spool.ts';

const CRLF_BYTES = Buffer.from('\r\n', 'latin1');

/** Request body bytes held while no backend is attached yet, before the client is paused. */
const QUEUE_MAX = 64 * 1024;

/** How a backend connection reports to the exchange it carries: one table for every exchange. */
const EXCHANGE_EVENTS: UpstreamEvents<BackendConn> = {
  attached: backendAttached,
  data: backendDataForExchange,
  drained: backendDrained,
  openFailed: backendOpenFailed,
  ended: backendEndedUnderExchange,
  closed: backendClosedUnderExchange,
  timedOut: backendTimedOut,
};

export function startExchange(c: ClientConn, req: RequestHead): Exchange {
  const svc = c.svc;
  const idempotent = isIdempotent(req.method);
  const w = svc.engine.writer;
  writeBackendRequestHead(w, req, svc.assign === null ? c.forward : assignedForward(c, svc.assign));
  let backendHead = takeWritten(w);
  let pin: string | null = null;
  let pinnedAppValue: string | null = null;
  const sticky = svc.sticky;
  if (sticky !== null && sticky.mode !== 'source') {
    const value = findCookie(req.fields, sticky.cookie);
    if (sticky.mode === 'cookie') pin = value;
    else if (value !== null && hasIdPrefix(value)) {
      // prefix mode: the application gets its own value back, without our id.
      pin = value.slice(0, STICKY_ID_LENGTH);
      pinnedAppValue = value.slice(STICKY_ID_LENGTH + 1);
      backendHead = stripIdPrefix(backendHead, sticky.cookie, pin);
    }
  }
  const x: Exchange = {
    phase: 'dispatch',
    events: EXCHANGE_EVENTS,
    client: c,
    // A source hash keys on the client behind trusted proxies, as their X-Forwarded-For names it.
    peerIp: svc.opts.balanceMethod === 'source' && c.forward.trusted ? forwardedClientIp(req.fields, c.peerIp) : c.peerIp,
    pin,
    pinnedAppValue,
    setCookie: null,
    svc,
    req,
    backendHead,
    body: newBodyReader(req.framing, req.connection.extra),
    queue: [],
    queued: 0,
    replay: idempotent ? [] : null,
    replayBytes: 0,
    idempotent,
    be: null,
    opening: null,
    node: null,
    attempts: 0,
    failed: null,
    lastFailure: null,
    forceFresh: false,
    staleRetries: 0,
    sent: false,
    gotResponseBytes: false,
    res: null,
    resBody: null,
    backendOutOfStep: false,
    clientKeepAlive: false,
    dechunk: false,
    dechunkSink: null,
    rechunk: false,
    clientBlocked: false,
    dispatched: false,
    queuedAt: -1,
    highPriority: false,
    holdMs: 0,
    assignedMs: 0,
    startMs: performance.now(),
    bodyBytesOut: 0,
    spool: null,
    spoolStream: null,
    bufferStartMs: 0,
    continueSent: false,
  };
  c.x = x;
  return x;
}

/** The forwarding context with the backend_client_assigned plugins' fields for this request (XFFExtras, Queues). */
function assignedForward(c: ClientConn, h: AssignHooks): ForwardContext {
  let waiting = 0;
  let oldest = Infinity;
  let hpWaiting = 0;
  let hpOldest = Infinity;
  if (h.queues) {
    for (const other of c.svc.engine.clients) {
      const x = other.x;
      if (other.svc !== c.svc || x === null || x.be !== null || x.phase === 'done') continue;
      if (x.highPriority) {
        hpWaiting++;
        if (x.startMs < hpOldest) hpOldest = x.startMs;
      } else {
        waiting++;
        if (x.startMs < oldest) oldest = x.startMs;
      }
    }
  }
  const nowMs = performance.now();
  const f = c.forward;
  const rules = assignRules(h, {
    trusted: f.trusted,
    blindProxy: f.blindProxy,
    localPort: c.socket.localPort ?? 0,
    tls: f.https,
    waiting,
    oldestWaitSec: waiting === 0 ? 0 : Math.floor((nowMs - oldest) / 1000),
    hpWaiting,
    hpOldestWaitSec: hpWaiting === 0 ? 0 : Math.floor((nowMs - hpOldest) / 1000),
  }, f.rules);
  return copyForwardContext(f, f.trusted, f.blindProxy, f.persistBackend, rules);
}

/** Stats' backend_response_received hook: the `recent` line. */
function noteStatsResponse(x: Exchange, p: PluginStats): void {
  const req = x.req;
  noteRecent(p, (performance.now() - x.assignedMs) / 1000, req.hostIndex === -1 ? null : fieldValue(req.fields, req.hostIndex), requestTarget(req));
}

export function dispatchExchange(x: Exchange): void {
  x.dispatched = true;
  // enable_reproxy's URL cache answers without a backend (Perlbal checks it before asking for one, too).
  const reproxy = x.svc.reproxy;
  if (reproxy !== null && x.svc.reproxyCache !== null && reproxy.fromCache(x)) return;
  if (x.holdMs > 0) {
    // Throttle holds the request (Perlbal stops reading the client meanwhile; here its body queues, then pauses it).
    setTimeout(() => {
      if (x.phase === 'dispatch' && x.client.phase !== 'closed') dispatch(x);
    }, x.holdMs);
    return;
  }
  dispatch(x);
}

const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/**
 * After each client read: ask for a backend now, or keep holding the body (buffer_backend_connect, in memory) or
 * spool it (buffer_uploads) until it is complete. Called with the exchange not dispatched yet.
 */
export function advanceExchange(x: Exchange): void {
  const body = x.body;
  const p = x.svc.opts.upload;
  if (x.spool !== null) {
    if (body.done) spoolComplete(x);
    return;
  }
  if (body.done || (p.bufferBackendConnect === 0 && !p.bufferUploads)) {
    dispatchExchange(x);
    return;
  }
  if (x.bufferStartMs === 0) {
    x.bufferStartMs = performance.now();
    const reason = decideAtHead(p, body.framing, body.remaining + body.received);
    if (reason !== null) return startSpool(x, reason);
  }
  const d = decideAfterRead(p, body.received, body.framing === 'length' ? body.remaining : 0, false, performance.now() - x.bufferStartMs);
  if (d.kind === 'dispatch') return dispatchExchange(x);
  if (d.kind === 'spool') return startSpool(x, d.reason);
  // Held in memory: a client that waits for 100 Continue would otherwise wait for a backend that is not asked yet.
  holdingBody(x);
}

function holdingBody(x: Exchange): void {
  if (!x.req.expectContinue || x.continueSent || x.body.received > 0) return;
  x.continueSent = true;
  sendNow(x.client.socket, CONTINUE);
}

/** A body framed by `Transfer-Encoding: chunked` alone (no other coding) is stored de-chunked. */
function dechunkable(x: Exchange): boolean {
  if (x.body.framing !== 'chunked') return false;
  const i = findField(x.req.fields, F.TRANSFER_ENCODING);
  return i !== -1 && fieldValue(x.req.fields, i).trim().toLowerCase() === 'chunked';
}

/** The spooled body is complete: the file is closed and a backend asked for. */
function spoolComplete(x: Exchange): void {
  const spool = x.spool!;
  closeSpoolFd(spool);
  if (spool.dechunk !== null) x.backendHead = lengthHead(x.backendHead, spool.bytes);
  dispatchExchange(x);
}

/** From here the body goes to a file; what is already held in memory goes first. */
function startSpool(x: Exchange, reason: SpoolReason): void {
  const svc = x.svc;
  try {
    x.spool = openSpool(svc.opts.upload.path, dechunkable(x));
    for (const b of x.queue) writeSpool(x.spool, b);
  } catch (e) {
    return spoolFailed(x, e);
  }
  x.queue = [];
  x.queued = 0;
  // The file holds the whole body: a retry sends it again from there, not from memory.
  x.replay = null;
  x.client.down.resume(x.client, 'queue');
  svc.engine.log.debug(`${svc.name}: spooling the ${x.req.method} ${requestTarget(x.req)} upload to ${x.spool.path} (${reason})`);
  holdingBody(x);
  if (x.body.done) spoolComplete(x);
}

/** The spool file cannot be written: one log line, a 503, and nothing goes to a backend. */
function spoolFailed(x: Exchange, e: unknown): void {
  const svc = x.svc;
  const where = x.spool?.path ?? svc.opts.upload.path;
  const why = spoolErrorText(e);
  svc.engine.log.error(`service ${svc.name}: cannot buffer upload to ${where}: ${why}; answered 503`);
  respondFailure(x, { kind: 'spool-failed', reason: why });
}

/** Request body bytes from the client (framing included, exactly as received). */
export function clientBodyBytes(x: Exchange, slice: Buffer): void {
  // Answered already (a failed spool, an early response): nothing is waiting for these bytes.
  if (x.phase === 'done') return;
  const spool = x.spool;
  if (spool !== null) {
    try {
      // The read buffer may be reused; writeSync copies it to the file now.
      writeSpool(spool, slice);
    } catch (e) {
      spoolFailed(x, e);
    }
    return;
  }
  const be = x.be;
  if (be !== null && be.phase === 'busy') {
    keepForReplay(x, slice);
    if (!sendNow(be.socket, slice)) x.client.down.pause(x.client, 'backend');
    return;
  }
  x.queue.push(slice);
  x.queued += slice.length;
  // Before a backend is asked for, buffer_backend_connect bytes are held on purpose.
  if (x.queued > QUEUE_MAX && (x.dispatched || x.queued > x.svc.opts.upload.bufferBackendConnect)) x.client.down.pause(x.client, 'queue');
}

/** The whole request is in: from now on the backend has response_timeout to start answering. */
export function clientBodyDone(x: Exchange): void {
  const be = x.be;
  if (be !== null && be.phase === 'busy' && x.res === null) be.deadline = x.svc.engine.now + x.svc.opts.responseTimeoutMs;
}

/** The backend's socket can take more: resume reading the client (request body or tunnel). */
function backendDrained(x: Exchange): void {
  x.client.down.resume(x.client, 'backend');
}

/** The client's socket can take more: resume reading the backend. */
export function clientDrained(x: Exchange): void {
  if (!x.clientBlocked) return;
  x.clientBlocked = false;
  x.client.deadline = 0;
  const be = x.be;
  if (be !== null) {
    be.socket.resume();
    be.deadline = x.svc.engine.now + x.svc.opts.idleTimeoutMs;
  }
}

function backendDataForExchange(x: Exchange, be: BackendConn, chunk: Buffer): void {
  if (be.phase === 'tunnel') {
    be.deadline = x.svc.engine.now + x.svc.opts.idleTimeoutMs;
    writeToClient(x, copyOut(chunk, 0, chunk.length));
    return;
  }
  x.gotResponseBytes = true;
  if (x.res === null) responseHeadBytes(x, be, chunk, 0);
  else relayBody(x, be, chunk, 0);
  // More of the response is to come in later writes: Nagle would hold a short one until the client's ACK (client.ts).
  if (x.phase !== 'done') askNoDelay(x.client);
}

function responseHeadBytes(x: Exchange, be: BackendConn, buf: Buffer, start: number): void {
  const svc = x.svc;
  const res = readResponseHead(be.reader, buf, start, x.req.method, svc.limits, svc.engine.responseFields);
  if (res === null) return;
  if (res.kind === 'error') {
    badResponse(x, be, res.reason);
    return;
  }
  const rest = res.fields.buf;
  const bodyStart = res.bodyStart;
  if (res.status < 200) {
    if (res.status === 101) {
      if (x.req.upgrade === null) badResponse(x, be, '101 Switching Protocols without an upgrade request');
      else startTunnel(x, be, res, rest, bodyStart);
      return;
    }
    // 100 Continue, 103 Early Hints: HTTP/1.1 clients get them; HTTP/1.0 clients cannot. A client that got its
    // 100 Continue from tsbal (the body was held) does not get the backend's too.
    if (x.req.minor === 1 && !(res.status === 100 && x.continueSent)) {
      writeInterimHead(svc.engine.writer, res);
      writeToClient(x, takeWritten(svc.engine.writer));
    }
    if (bodyStart < rest.length) responseHeadBytes(x, be, rest, bodyStart);
    return;
  }
  const reproxy = svc.reproxy;
  if (reproxy !== null) {
    const ins = reproxyInstruction(res.fields);
    if (ins !== null) {
      reproxy.takeOver(x, be, res, rest, bodyStart, ins);
      return;
    }
  }
  const body = newBodyReader(res.framing, res.connection.extra);
  const http10 = x.req.minor === 0;
  const chunked = res.framing.kind === 'chunked';
  const dechunk = http10 && chunked;
  // A head that needed the lenient rewrite may frame its chunks with bare LF too (HAProxy and nginx take it): read
  // it so, and never relay that framing as is, but frame the body again.
  const rechunk = chunked && res.normalised && !dechunk;
  if (chunked && res.normalised) body.chunked!.lenientLf = true;
  // Body bytes that came with the head are checked before anything is committed: broken framing there is a bad
  // response (a retry or a 502), not a cut after a head the client already has.
  const end = dechunk || rechunk || body.done ? bodyStart : readBody(body, rest, bodyStart, rest.length, null);
  if (end === -1) {
    badResponse(x, be, body.error ?? 'bad chunked framing');
    return;
  }
  noteNodeSuccess(be, res.status);
  be.hintTimeoutMs = res.keepAliveTimeoutMs;
  be.hintMaxLeft = res.keepAliveMax;
  x.res = res;
  if (svc.pstats !== null && x.assignedMs > 0) noteStatsResponse(x, svc.pstats);
  enterPhase(x, 'response');
  x.resBody = body;
  x.dechunk = dechunk;
  x.rechunk = rechunk;
  const c = x.client;
  const clientWants = http10 ? x.req.connection.keepAlive : !x.req.connection.close;
  x.clientKeepAlive =
    c.listener.opts.persistClient &&
    x.body.done &&
    clientWants &&
    !c.ended &&
    !svc.engine.draining &&
    res.framing.kind !== 'close' &&
    !x.dechunk;
  const w = svc.engine.writer;
  const sticky = svc.sticky;
  const headCtx: ClientResponseContext = {
    suffix: x.clientKeepAlive ? svc.suffixes.keepAlive : svc.suffixes.close,
    dechunk: x.dechunk,
    upgrade: false,
    setCookie: pinningSetCookie(x),
    prefixCookie: sticky !== null && sticky.mode === 'prefix' && x.node !== null ? setCookiePrefix(sticky, x.node.key) : null,
  };
  be.deadline = svc.engine.now + svc.opts.idleTimeoutMs;

  if (x.dechunk || x.rechunk) {
    x.dechunkSink = x.rechunk ? (b, s, e) => writeToClient(x, frameChunk(b, s, e)) : (b, s, e) => writeToClient(x, copyOut(b, s, e));
    writeClientResponseHead(w, res, headCtx, 0);
    writeToClient(x, takeWritten(w));
    relayBody(x, be, rest, bodyStart);
    return;
  }
  // A chunked trailer section is held back and sent filtered (http/trailers.ts).
  const upTo = relayEnd(body, end);
  const trailer = takeTrailer(body);
  const bodyLen = upTo - bodyStart;
  x.bodyBytesOut += bodyLen;
  writeClientResponseHead(w, res, headCtx, bodyLen <= COALESCE_MAX ? bodyLen : 0);
  if (bodyLen <= COALESCE_MAX) {
    // One write for head and body: one syscall, one packet for small responses.
    putRange(w, rest, bodyStart, upTo);
    if (trailer !== null) putRange(w, trailer, 0, trailer.length);
    writeToClient(x, takeWritten(w));
  } else {
    const head = takeWritten(w);
    const bodyPart = copyOut(rest, bodyStart, upTo);
    writeAllToClient(x, trailer === null ? [head, bodyPart] : [head, bodyPart, trailer]);
  }
  if (body.done) {
    if (end < rest.length) x.backendOutOfStep = true;
    finishExchange(x);
  }
}

function relayBody(x: Exchange, be: BackendConn, buf: Buffer, start: number): void {
  const body = x.resBody!;
  be.deadline = x.svc.engine.now + x.svc.opts.idleTimeoutMs;
  if (x.dechunkSink !== null) {
    const end = readBody(body, buf, start, buf.length, x.dechunkSink);
    if (end === -1) return abortMidResponse(x, be, body.error ?? 'bad chunked framing');
    if (body.done) {
      if (x.rechunk) {
        // The last chunk, then the filtered trailers (or just the final CRLF).
        writeToClient(x, LAST_CHUNK);
        writeToClient(x, takeTrailer(body) ?? CRLF_BYTES);
      }
      if (end < buf.length) x.backendOutOfStep = true;
      finishExchange(x);
    }
    return;
  }
  const end = readBody(body, buf, start, buf.length, null);
  if (end === -1) return abortMidResponse(x, be, body.error ?? 'bad chunked framing');
  const upTo = relayEnd(body, end);
  if (upTo > start) {
    x.bodyBytesOut += upTo - start;
    writeToClient(x, copyOut(buf, start, upTo));
  }
  const trailer = takeTrailer(body);
  if (trailer !== null) writeToClient(x, trailer);
  if (body.done) {
    if (end < buf.length) x.backendOutOfStep = true;
    finishExchange(x);
  }
}

