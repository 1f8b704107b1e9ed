// One request/response exchange between a client connection and a backend connection: sending the request (head,
// then body with back-pressure) and relaying the response. What happens when it goes wrong is in failures.ts,
// Upgrade tunnels in tunnel.ts.
import { accessLogLine } from './access-log.ts';
import { holdWrites } from './engine.ts';
import {
  noteNodeSuccess,
  openBackend,
  pickNode,
  releaseBackend,
  spawnAhead,
  takeIdle,
  type BackendConn,
} from './backend.ts';
import { clientExchangeDone, pauseClient, resumeClient, PAUSE_BACKEND, PAUSE_QUEUE, type ClientConn } from './client.ts';
import type { ProxyFailure } from './errors.ts';
import { abortMidResponse, badResponse, respondFailure } from './failures.ts';
import { newBodyReader, readBody, relayEnd, takeTrailer, type BodyReader } from './http/body.ts';
import type { DataSink } from './http/chunked.ts';
import { writeBackendRequestHead } from './http/forward.ts';
import type { RequestHead } from './http/request.ts';
import { writeClientResponseHead, writeInterimHead } from './http/response-head.ts';
import { readResponseHead } from './http/lenient.ts';
import type { ResponseHead } from './http/response.ts';
import { LAST_CHUNK, frameChunk } from './http/trailers.ts';
import { putRange, takeWritten } from './http/writer.ts';
import { countResponse } from './management/stats.ts';
import { isIdempotent } from './retry.ts';
import type { ServiceNode, ServiceRuntime } from './service.ts';
import { startTunnel } from './tunnel.ts';

/** Request body bytes held while no backend is attached yet, before the client is paused. */
const QUEUE_MAX = 64 * 1024;
/** Request body bytes kept for a possible retry of an idempotent request. */
const REPLAY_MAX = 64 * 1024;
/** Response bodies up to this size go out in the same write as the head. */
const COALESCE_MAX = 16 * 1024;
const CRLF_BYTES = Buffer.from('\r\n', 'latin1');

export interface Exchange {
  client: ClientConn;
  svc: ServiceRuntime;
  req: RequestHead;
  /** The request head as the backend gets it (kept for retries). */
  backendHead: Buffer;
  body: BodyReader;
  /** Body bytes not yet written to the current backend. */
  queue: Buffer[];
  queued: number;
  /** Body bytes written to the current backend, kept while a retry might need them; null once given up. */
  replay: Buffer[] | null;
  replayBytes: number;
  idempotent: boolean;
  be: BackendConn | null;
  /** A connection being opened for this exchange (not attached yet). */
  opening: BackendConn | null;
  node: ServiceNode | null;
  attempts: number;
  /** Backends that failed this request, avoided by its retries. */
  failed: ServiceNode[] | null;
  lastFailure: ProxyFailure | null;
  /** After a stale keep-alive connection failed: the next attempt opens a new connection. */
  forceFresh: boolean;
  staleRetries: number;
  sent: boolean;
  gotResponseBytes: boolean;
  /** The final response head (already sent to the client). */
  res: ResponseHead | null;
  resBody: BodyReader | null;
  /** Bytes after the end of the response: the backend connection cannot be reused. */
  backendOutOfStep: boolean;
  clientKeepAlive: boolean;
  dechunk: boolean;
  /** Writes de-chunked payload to the client (HTTP/1.0 client, chunked response); made once per such exchange. */
  dechunkSink: DataSink | null;
  /** The body is de-chunked and framed again for the client (a backend's lenient chunk framing, see lenient.ts). */
  rechunk: boolean;
  clientBlocked: boolean;
  /** A backend was asked for (the first dispatch happens once the read that carried the head is parsed). */
  dispatched: boolean;
  done: boolean;
  startMs: number;
  bodyBytesOut: number;
}

export function startExchange(c: ClientConn, req: RequestHead): Exchange {
  const svc = c.svc;
  const idempotent = isIdempotent(req.method);
  const w = svc.engine.writer;
  writeBackendRequestHead(w, req, c.forward);
  const x: Exchange = {
    client: c,
    svc,
    req,
    backendHead: takeWritten(w),
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
    done: false,
    startMs: svc.accessLog === null ? 0 : performance.now(),
    bodyBytesOut: 0,
  };
  c.x = x;
  return x;
}

export function dispatchExchange(x: Exchange): void {
  x.dispatched = true;
  dispatch(x);
}

/** Sends the request to a backend: an idle keep-alive connection to the chosen one, or a new connection. */
export function dispatch(x: Exchange): void {
  const svc = x.svc;
  const node = pickNode(svc, x.failed);
  if (node === null) {
    respondFailure(x, x.lastFailure ?? { kind: 'no-backend' });
    return;
  }
  x.attempts++;
  const fresh = x.forceFresh;
  const idle = fresh ? null : takeIdle(svc, node);
  x.forceFresh = false;
  x.node = node;
  node.active++;
  if (idle !== null) {
    idle.exchange = x;
    backendAttached(x, idle);
  } else {
    x.opening = openBackend(svc, node, x, fresh);
  }
  if (svc.opts.connectAhead > 0) spawnAhead(svc);
}

/** The backend connection is ready for this exchange: write the head and whatever body is queued. */
export function backendAttached(x: Exchange, be: BackendConn): void {
  const c = x.client;
  x.be = be;
  x.opening = null;
  be.uses++;
  x.sent = true;
  x.gotResponseBytes = false;
  const socket = be.socket;
  let ok: boolean;
  if (x.queued === 0) {
    holdWrites(x.svc.engine, socket);
    ok = socket.write(x.backendHead);
  } else {
    socket.cork();
    ok = socket.write(x.backendHead);
    for (const b of x.queue) {
      keepForReplay(x, b);
      ok = socket.write(b) && ok;
    }
    x.queue = [];
    x.queued = 0;
    socket.uncork();
    resumeClient(c, PAUSE_QUEUE);
  }
  if (!ok) pauseClient(c, PAUSE_BACKEND);
  be.deadline = x.body.done ? x.svc.engine.now + x.svc.opts.responseTimeoutMs : 0;
}

function keepForReplay(x: Exchange, b: Buffer): void {
  if (x.replay === null) return;
  x.replayBytes += b.length;
  if (x.replayBytes > REPLAY_MAX) {
    x.replay = null;
    return;
  }
  x.replay.push(b);
}

/** Request body bytes from the client (framing included, exactly as received). */
export function clientBodyBytes(x: Exchange, slice: Buffer): void {
  const be = x.be;
  if (be !== null && be.phase === 'busy') {
    keepForReplay(x, slice);
    if (!be.socket.write(slice)) pauseClient(x.client, PAUSE_BACKEND);
    return;
  }
  x.queue.push(slice);
  x.queued += slice.length;
  if (x.queued > QUEUE_MAX) pauseClient(x.client, PAUSE_QUEUE);
}

/** The whole request is in: from now on the backend has response_timeout to start answering. */
export function clientBodyDone(x: Exchange): void {
  const be = x.be;
  if (be !== null && be.phase === 'busy' && x.res === null) be.deadline = x.svc.engine.now + x.svc.opts.responseTimeoutMs;
}

/** The backend's socket can take more: resume reading the client (request body or tunnel). */
export function backendDrained(be: BackendConn): void {
  const x = be.exchange;
  if (x !== null) resumeClient(x.client, PAUSE_BACKEND);
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

/**
 * Backend bytes arrive in the engine's shared read buffer (see openBackend), which the next read overwrites:
 * anything handed to a socket write must be a copy.
 */
export function copyOut(src: Buffer, start: number, end: number): Buffer {
  const n = end - start;
  const out = Buffer.allocUnsafe(n);
  if (n < 64) for (let i = 0; i < n; i++) out[i] = src[start + i]!;
  else out.set(src.subarray(start, end));
  return out;
}

export function writeToClient(x: Exchange, data: Buffer): void {
  const c = x.client;
  // Big chunks (a streamed body) go out at once: held, they would only fill the socket's buffer past its mark.
  if (data.length <= COALESCE_MAX) holdWrites(x.svc.engine, c.socket);
  const ok = c.socket.write(data);
  if (!ok && !x.clientBlocked) {
    x.clientBlocked = true;
    x.be?.socket.pause();
    // A client that stops reading gets idle_timeout to resume, then loses its connection.
    c.deadline = x.svc.engine.now + x.svc.opts.idleTimeoutMs;
    if (x.be !== null) x.be.deadline = 0;
  }
}

export function backendDataForExchange(x: Exchange, be: BackendConn, chunk: Buffer): void {
  if (be.phase === 'tunnel') {
    be.deadline = x.svc.engine.now + x.svc.opts.idleTimeoutMs;
    writeToClient(x, copyOut(chunk, 0, chunk.length));
    return;
  }
  x.gotResponseBytes = true;
  if (x.res === null) responseHeadBytes(x, be, chunk, 0);
  else relayBody(x, be, chunk, 0);
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
    // 100 Continue, 103 Early Hints: HTTP/1.1 clients get them; HTTP/1.0 clients cannot.
    if (x.req.minor === 1) {
      writeInterimHead(svc.engine.writer, res);
      writeToClient(x, takeWritten(svc.engine.writer));
    }
    if (bodyStart < rest.length) responseHeadBytes(x, be, rest, bodyStart);
    return;
  }
  noteNodeSuccess(be, res.status);
  be.hintTimeoutMs = res.keepAliveTimeoutMs;
  be.hintMaxLeft = res.keepAliveMax;
  x.res = res;
  const body = newBodyReader(res.framing, res.connection.extra);
  x.resBody = body;
  const c = x.client;
  const http10 = x.req.minor === 0;
  const chunked = res.framing.kind === 'chunked';
  x.dechunk = http10 && chunked;
  // A head that needed the lenient rewrite may frame its chunks with bare LF too (HAProxy and nginx take it): read
  // it so, and never relay that framing as is, but frame the body again.
  x.rechunk = chunked && res.normalised && !x.dechunk;
  if (chunked && res.normalised) body.chunked!.lenientLf = true;
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
  const headCtx = { suffix: x.clientKeepAlive ? svc.suffixes.keepAlive : svc.suffixes.close, dechunk: x.dechunk, upgrade: false };
  be.deadline = svc.engine.now + svc.opts.idleTimeoutMs;

  if (x.dechunk || x.rechunk) {
    x.dechunkSink = x.rechunk ? (b, s, e) => writeToClient(x, frameChunk(b, s, e)) : (b, s, e) => writeToClient(x, copyOut(b, s, e));
    writeClientResponseHead(w, res, headCtx, 0);
    writeToClient(x, takeWritten(w));
    relayBody(x, be, rest, bodyStart);
    return;
  }
  const end = body.done ? bodyStart : readBody(body, rest, bodyStart, rest.length, null);
  if (end === -1) {
    badResponse(x, be, body.error ?? 'bad chunked framing');
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
    const socket = c.socket;
    socket.cork();
    writeToClient(x, takeWritten(w));
    writeToClient(x, copyOut(rest, bodyStart, upTo));
    if (trailer !== null) writeToClient(x, trailer);
    socket.uncork();
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

/** The response is complete: hand the backend connection back, log, and let the client connection go on. */
export function finishExchange(x: Exchange): void {
  if (x.done) return;
  x.done = true;
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
  if (x.svc.accessLog !== null) logExchange(x, res.status, be);
  clientExchangeDone(x.client, x.clientKeepAlive && x.body.done);
}

export function detach(x: Exchange): void {
  const be = x.be;
  if (x.node !== null) {
    x.node.active--;
    x.node = null;
  }
  x.be = null;
  if (be !== null) {
    be.exchange = null;
    if (x.clientBlocked) be.socket.resume();
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
    }),
  );
}
