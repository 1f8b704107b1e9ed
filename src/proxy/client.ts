// Client connections: reading request heads and bodies (strictly; refusals get a short 4xx and a close),
// keep-alive (persist_client) and pipelining, header/idle timeouts, and the hand-off to an exchange per request.
import type { Socket } from 'node:net';
import type { HostPort } from '../config/model.ts';
import { answerManagement, answerOnTheSpot, refuse } from './answers.ts';
import type { DownstreamOps, PauseReason } from './contracts.ts';
import { handOver, refreshForward, routeRequest } from './route.ts';
import type { Exchange, ServiceRuntime, ClientConn } from './records.ts';
import { advanceExchange, clientBodyBytes, clientBodyDone, clientDrained, startExchange } from './relay.ts';
import { clientGone } from './failures.ts';
import { copyOut } from './exchange.ts';
import { tunnelClientEnded, tunnelFromClient } from './tunnel.ts';
import type { RequestHead } from './http/request.ts';
import { newForwardContext } from './http/forward.ts';
import { newHeadReader, resetHeadReader, scanHead } from './http/head-reader.ts';
import { readBody, relayEnd, takeTrailer } from './http/body.ts';
import { parseRequestHead, requestTarget } from './http/request.ts';
import { isTrusted, normalizePeerIp } from './trust.ts';
import { serveStatic } from './webserver/serve.ts';
import { throttleEnd, throttleStart } from './throttle.ts';
import { observedIp } from './access.ts';
import { simplePage } from './errors.ts';
import { F, fieldValue, findField, newFields, type FieldCode } from './http/fields.ts';
import { formatHostPort } from '../config/perlbal/values.ts';
import { askNoDelay, noDelayPending, peerAddress } from '../runtime/net.ts';
import { readInto } from '../runtime/socket-reads.ts';
import { flushHeld, writesPending } from '../runtime/socket-writes.ts';

function findFieldValue(req: RequestHead, code: FieldCode): string | undefined {
  const i = findField(req.fields, code);
  return i === -1 ? undefined : fieldValue(req.fields, i);
}

// Declared in records.ts with the other records that name each other (so no import cycle); re-exported here.
export type { ClientPhase, ClientConn } from './records.ts';

const PAUSE_STASH = 1;
const PAUSE_BACKEND = 2;
const PAUSE_QUEUE = 4;

function pauseBit(why: PauseReason): number {
  return why === 'backend' ? PAUSE_BACKEND : why === 'queue' ? PAUSE_QUEUE : PAUSE_STASH;
}

/** What the exchange, tsbal's own answers and the web server may do to a client connection (contracts.ts). */
const CLIENT_OPS: DownstreamOps = {
  exchangeDone: clientExchangeDone,
  abort: abortClient,
  pause: (c: ClientConn, why) => pauseClient(c, pauseBit(why)),
  resume: (c: ClientConn, why) => resumeClient(c, pauseBit(why)),
  becomeTunnel: (c: ClientConn) => {
    c.phase = 'tunnel';
    askNoDelay(c);
    const early = c.stash;
    c.stash = null;
    return early;
  },
};

/** After our FIN, how long we keep reading (and discarding) before a hard close. */
const LINGER_MS = 5_000;

/** `first`: bytes already read from the socket by whoever accepted it (h2c sniffing); the socket then keeps 'data'. */
export function acceptClient(svc: ServiceRuntime, socket: Socket, first: Buffer | null = null): void {
  const engine = svc.engine;
  const peerIp = normalizePeerIp(peerAddress(socket));
  const opts = svc.opts;
  const trusted = opts.alwaysTrusted || isTrusted(peerIp, opts.trustedUpstreamProxies);
  const forward = newForwardContext(
    peerIp,
    trusted,
    opts.blindProxy,
    opts.persistBackend,
    localHostPort(socket, opts.listen),
    opts.headerRules,
    (socket as { encrypted?: boolean }).encrypted === true,
  );
  const c: ClientConn = {
    kind: 'client',
    down: CLIENT_OPS,
    listener: svc,
    svc,
    socket,
    peerIp,
    forward,
    baseForward: forward,
    forwardGeneration: engine.configGeneration,
    targetForward: null,
    phase: 'head',
    reader: newHeadReader(),
    requestFields: newFields(),
    headStarted: false,
    x: null,
    throttled: null,
    stash: null,
    paused: 0,
    ended: false,
    noDelay: !noDelayPending(socket),
    feeding: false,
    deadline: engine.now + opts.headerTimeoutMs,
    requests: 0,
    abortStatic: null,
    upload: null,
  };
  engine.clients.add(c);
  (socket as ClientSocket)[CLIENT] = c;
  // A socket already read from flows as a stream: switching it to reads into our buffer now could lose bytes.
  if (first !== null || !readInto(socket, engine.readBuffer, c, onClientRead)) socket.on('data', onSocketData);
  socket.on('end', onSocketEnd);
  socket.on('error', ignoreSocketError);
  socket.on('close', onSocketClose);
  socket.on('drain', onSocketDrain);
  if (first !== null) feed(c, first, 0);
}

// The socket's listeners are shared by every connection (no closures per accept): each finds its connection on the
// socket it is called on.
const CLIENT = Symbol('tsbal client connection');
type ClientSocket = Socket & { [CLIENT]: ClientConn };

function onSocketData(this: ClientSocket, chunk: Buffer): void {
  feed(this[CLIENT], chunk, 0);
}

/**
 * A read into the engine's shared read buffer (readInto): the bytes are copied out first, as everything after
 * (the request record, a stash, a queued body) may keep them while the next read overwrites the buffer.
 */
function onClientRead(c: ClientConn, n: number, shared: Buffer): void {
  feed(c, copyOut(shared, 0, n), 0);
}

function onSocketEnd(this: ClientSocket): void {
  onEnd(this[CLIENT]);
}

function ignoreSocketError(): void {}

function onSocketClose(this: ClientSocket): void {
  onClose(this[CLIENT]);
}

function onSocketDrain(this: ClientSocket): void {
  const x = this[CLIENT].x;
  if (x !== null) clientDrained(x);
}

/**
 * The address the client connected to, for a request without Host. A listener bound to one address is that address:
 * asking the socket (getsockname, a system call per connection) is only needed for a wildcard listen.
 */
function localHostPort(socket: Socket, listen: HostPort | null): string {
  if (listen !== null && listen.host !== '0.0.0.0' && listen.host !== '::' && listen.port !== 0) return formatHostPort(listen);
  return formatHostPort({ host: normalizePeerIp(socket.localAddress), port: socket.localPort ?? listen?.port ?? 0 });
}

function feed(c: ClientConn, buf: Buffer, start: number): void {
  let input: Buffer | null = buf;
  c.feeding = true;
  try {
    while (input !== null) {
      drive(c, input, start);
      input = null;
      // Dispatch once the whole read is parsed: body bytes that came with the head are validated before anything
      // goes to a backend, and head plus small body leave in one write.
      const x = c.x;
      if (x !== null && !x.dispatched && x.phase !== 'done') advanceExchange(x);
      // An exchange answered on the spot (503, 413) leaves its pipelined successors to go on with: loop, not recurse.
      if (c.x === null && c.stash !== null && c.phase === 'head') {
        input = c.stash;
        c.stash = null;
        start = 0;
      }
    }
  } finally {
    c.feeding = false;
  }
}

/** Routes bytes by phase, looping while a phase change makes the rest of the buffer someone else's. */
function drive(c: ClientConn, buf: Buffer, start: number): void {
  while (start < buf.length) {
    switch (c.phase) {
      case 'head':
        start = readHead(c, buf, start);
        break;
      case 'body':
        start = readRequestBody(c, buf, start);
        break;
      case 'upload':
        start = c.upload!(buf, start);
        break;
      case 'wait':
        stash(c, buf, start);
        return;
      case 'tunnel':
        tunnelFromClient(c.x!, start === 0 ? buf : buf.subarray(start));
        return;
      case 'closing':
      case 'closed':
        return;
    }
  }
}

function readHead(c: ClientConn, buf: Buffer, start: number): number {
  const svc = c.svc;
  const o = svc.opts;
  const scan = scanHead(c.reader, buf, start, o.maxHeaderSize, o.maxUrlLength, true);
  switch (scan.kind) {
    case 'incomplete':
      if (!c.headStarted) {
        // Slowloris: the whole head must arrive within header_timeout of its first byte.
        c.headStarted = true;
        c.deadline = svc.engine.now + o.headerTimeoutMs;
      }
      return buf.length;
    case 'bare-lf':
    case 'head-lf': // only with lfEnds, which requests never get
      reject(c, 400, 'bare LF in the request head');
      return buf.length;
    case 'too-large':
      reject(c, scan.urlTooLong ? 414 : 431, scan.urlTooLong ? 'request target too long' : 'request header block too large');
      return buf.length;
    case 'head':
      break;
  }
  c.headStarted = false;
  let req = parseRequestHead(scan.buf, scan.start, scan.end, svc.limits, c.requestFields);
  if (req.kind === 'error') {
    reject(c, req.status, req.reason, null);
    return buf.length;
  }
  if (o.maxBodySize > 0 && req.framing.kind === 'length' && req.framing.length > o.maxBodySize) {
    reject(c, 413, 'request body larger than max_body_size', req);
    return buf.length;
  }
  if (svc.engine.draining) {
    reject(c, 503, 'shutting down', req);
    return buf.length;
  }
  c.requests++;
  // Nagle stays on for a request that asked to close, when its answer goes in one write (close(2) then sends it
  // with the FIN): the setsockopt is saved per connection. Everything that may write more than once asks first:
  // a connection that may go on, the web server, the management service, reproxying, and (relay.ts) a response
  // still coming after its first backend read.
  if (!asksToClose(req)) askNoDelay(c);
  if (c.forwardGeneration !== svc.engine.configGeneration) {
    refreshForward(c, c.listener);
    c.forward = c.baseForward;
  }
  const route = svc.hooks.length === 0 && svc.selector === null ? null : routeRequest(c, svc, req);
  if (route !== null && route.kind === 'answer') {
    answerOnTheSpot(c, route, req);
    // Kept alive: a pipelined request may follow in the same read.
    return c.phase === 'head' ? afterHead(c, scan, buf) : buf.length;
  }
  if (route !== null && route.svc !== svc) {
    const handed = handOver(route, req);
    if (handed.kind === 'error') {
      reject(c, handed.status, handed.reason, req);
      return buf.length;
    }
    req = handed;
    c.svc = route.svc;
    c.forward = route.forward;
  }
  if (c.svc.management || c.svc.web !== null || c.svc.reproxy !== null) askNoDelay(c);
  if (c.svc.management) {
    answerManagement(c, req);
    return buf.length;
  }
  const web = c.svc.web;
  if (web !== null) {
    // Answered from disk, now or later; bytes after the head (pipelined requests, an unread body) wait in the stash.
    serveStatic(c, req, web);
    return afterHead(c, scan, buf);
  }
  // Throttle's start_proxy_request hook (reverse_proxy only): answer 403, close, or hold the request a while.
  let holdMs = 0;
  const throttle = c.svc.throttle;
  if (throttle !== null) {
    const ip = (c.forward.trusted ? observedIp(findFieldValue(req, F.X_FORWARDED_FOR)) : null) ?? c.peerIp;
    const v = throttleStart(throttle, ip, req.method, requestTarget(req), Date.now());
    if (v.kind === 'ban') {
      c.svc.engine.log.info(`${c.svc.name}: Throttle: ${v.why}`);
      abortClient(c);
      return buf.length;
    }
    c.throttled = { state: throttle, ip };
    if (v.kind === 'deny') {
      answerOnTheSpot(c, { kind: 'answer', svc: c.svc, status: 403, why: `Throttle: ${v.why}`, build: (o) => simplePage(403, 'Forbidden.\n', o) }, req);
      return c.phase === 'head' ? afterHead(c, scan, buf) : buf.length;
    }
    if (v.kind === 'hold') holdMs = v.ms;
  }
  c.phase = req.framing.kind === 'none' ? 'wait' : 'body';
  c.deadline = c.phase === 'body' ? svc.engine.now + c.svc.opts.idleTimeoutMs : 0;
  startExchange(c, req).holdMs = holdMs;
  return afterHead(c, scan, buf);
}

/** Parsing goes on after the head: in this read, or in the joined buffer when the head spanned reads. */
function afterHead(c: ClientConn, scan: { buf: Buffer; end: number }, buf: Buffer): number {
  if (scan.buf === buf) return scan.end + 4;
  drive(c, scan.buf, scan.end + 4);
  return buf.length;
}

function readRequestBody(c: ClientConn, buf: Buffer, start: number): number {
  const x = c.x!;
  const o = c.svc.opts;
  const end = readBody(x.body, buf, start, buf.length, null);
  if (end === -1) {
    bodyFailed(c, x, 400, `bad chunked request body: ${x.body.error ?? 'framing error'}`);
    return buf.length;
  }
  if (o.maxBodySize > 0 && x.body.received > o.maxBodySize) {
    bodyFailed(c, x, 413, 'request body larger than max_body_size');
    return buf.length;
  }
  c.deadline = c.svc.engine.now + o.idleTimeoutMs;
  // A chunked trailer section is held back and forwarded filtered (http/trailers.ts).
  const upTo = relayEnd(x.body, end);
  if (upTo > start) clientBodyBytes(x, start === 0 && upTo === buf.length ? buf : buf.subarray(start, upTo));
  const trailer = takeTrailer(x.body);
  if (trailer !== null) clientBodyBytes(x, trailer);
  if (x.body.done && c.x === x) {
    if (c.phase === 'body') c.phase = 'wait';
    c.deadline = 0;
    clientBodyDone(x);
  }
  return end;
}

/** The request body broke its framing or limit: answer if we still can, and close either way. */
function bodyFailed(c: ClientConn, x: Exchange, status: number, reason: string): void {
  const answered = x.res !== null;
  clientGone(x);
  c.x = null;
  if (answered) abortClient(c);
  else reject(c, status, reason, x.req);
}

/** Refuses what the client sent (malformed, too large, timed out): a short 4xx, then close. */
function reject(c: ClientConn, status: number, reason: string, req: RequestHead | null = null): void {
  if (c.x !== null) {
    clientGone(c.x);
    c.x = null;
  }
  refuse(c, status, reason, req);
}

function stash(c: ClientConn, buf: Buffer, start: number): void {
  const part = start === 0 ? buf : buf.subarray(start);
  c.stash = c.stash === null ? part : Buffer.concat([c.stash, part]);
  pauseClient(c, PAUSE_STASH);
}

export function pauseClient(c: ClientConn, bit: number): void {
  if (c.paused === 0) c.socket.pause();
  c.paused |= bit;
}

export function resumeClient(c: ClientConn, bit: number): void {
  if ((c.paused & bit) === 0) return;
  c.paused &= ~bit;
  if (c.paused === 0 && c.phase !== 'closed') c.socket.resume();
}

/** The exchange's response is out. Keep the connection for the next request, or close it. */
export function clientExchangeDone(c: ClientConn, keepAlive: boolean): void {
  const x = c.x;
  c.x = null;
  endThrottled(c);
  // Back to the service that accepted the connection: the next request is routed afresh.
  c.svc = c.listener;
  c.forward = c.baseForward;
  if (c.phase === 'closed' || c.phase === 'closing') return;
  const engine = c.svc.engine;
  if (!keepAlive || c.ended || engine.draining) {
    if (x !== null && clientAskedClose(x) && c.stash === null) closeAfterFin(c);
    else closeGracefully(c);
    return;
  }
  askNoDelay(c);
  c.phase = 'head';
  c.headStarted = false;
  resetHeadReader(c.reader);
  c.deadline = engine.now + c.svc.opts.persistClientIdleTimeoutMs;
  const pending = c.stash;
  c.stash = null;
  // Pipelined requests that arrived meanwhile (inside feed, its loop takes them).
  if (pending !== null) {
    if (c.feeding) c.stash = pending;
    else feed(c, pending, 0);
  }
  if (c.phase === 'head' || c.phase === 'body') resumeClient(c, PAUSE_STASH);
}

/** The request says it is the last one: HTTP/1.1 `Connection: close`, HTTP/1.0 without keep-alive. */
function asksToClose(req: RequestHead): boolean {
  return req.minor === 0 ? !req.connection.keepAlive : req.connection.close;
}

/** The request said it was the last one, body and all. */
function clientAskedClose(x: Exchange): boolean {
  return x.body.done && asksToClose(x.req);
}

/**
 * The client asked to close and sent nothing more: our FIN, then close without waiting for its FIN (HAProxy's
 * way), which saves a wake-up, a read and the stream's end handling per connection. Nothing is left to read, so the
 * close sends no reset; a client that sends more after `Connection: close` gets one, as from HAProxy.
 * When the whole response is already in the kernel (the usual case: it fits the socket buffer), close(2) alone
 * sends it and then the FIN, so the shutdown(2) and its callback, 'finish' and the listener for it are skipped.
 */
function closeAfterFin(c: ClientConn): void {
  c.phase = 'closing';
  c.deadline = c.svc.engine.now + LINGER_MS;
  const socket = c.socket;
  // Writes held for the end of the turn go out now (end() would do the same).
  flushHeld(socket);
  if (writesPending(socket) === 0) {
    socket.destroy();
    return;
  }
  socket.end();
  socket.once('finish', destroyFinished);
}

function destroyFinished(this: Socket): void {
  this.destroy();
}

function closeGracefully(c: ClientConn): void {
  c.phase = 'closing';
  c.stash = null;
  c.deadline = c.svc.engine.now + LINGER_MS;
  c.socket.end();
  // Keep reading (and discarding) so the client's unread upload does not turn our FIN into a reset.
  c.paused = 0;
  c.socket.resume();
}

/** Cuts the connection: used when a response broke off after its head went out. */
export function abortClient(c: ClientConn): void {
  if (c.phase === 'closed') return;
  c.socket.destroy();
}

function onEnd(c: ClientConn): void {
  c.ended = true;
  switch (c.phase) {
    case 'head':
      // Nothing in flight: done. (A partial head is simply dropped, as a client that gives up.)
      c.socket.end();
      c.phase = 'closing';
      c.deadline = c.svc.engine.now + LINGER_MS;
      return;
    case 'body':
    case 'upload':
      // The body can no longer complete: there is nothing sensible to answer.
      abortClient(c);
      return;
    case 'tunnel':
      if (c.x !== null) tunnelClientEnded(c.x);
      return;
    default:
      // 'wait': the response still goes out, then we close (c.ended).
      return;
  }
}

/** Throttle's end_proxy_request hook: the request no longer counts as in progress. */
function endThrottled(c: ClientConn): void {
  if (c.throttled === null) return;
  throttleEnd(c.throttled.state, c.throttled.ip);
  c.throttled = null;
}

function onClose(c: ClientConn): void {
  c.phase = 'closed';
  endThrottled(c);
  c.svc.engine.clients.delete(c);
  const x = c.x;
  c.x = null;
  c.stash = null;
  if (x !== null) clientGone(x);
  if (c.abortStatic !== null) {
    c.abortStatic();
    c.abortStatic = null;
  }
  const engine = c.svc.engine;
  if (engine.draining && engine.clients.size === 0 && engine.onDrained !== null) engine.onDrained();
}

/** Sweep: header, keep-alive idle, body idle, stalled-reader and linger timeouts. */
export function checkClient(c: ClientConn, now: number): void {
  if (c.deadline === 0 || now < c.deadline) return;
  switch (c.phase) {
    case 'head':
      if (c.headStarted) reject(c, 408, 'request header not received in time');
      else c.socket.destroy();
      return;
    case 'body':
      if (c.x !== null && c.x.res === null) {
        reject(c, 408, 'request body not received in time', c.x.req);
      } else {
        c.socket.destroy();
      }
      return;
    default:
      c.socket.destroy();
  }
}

/** Graceful stop: connections waiting for a next request close now; others close after their response. */
export function drainClient(c: ClientConn): void {
  if (c.phase === 'head' && !c.headStarted) {
    c.socket.end();
    c.phase = 'closing';
    c.deadline = c.svc.engine.now + LINGER_MS;
  }
}
