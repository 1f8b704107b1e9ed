// One backend connection: opening it (with Perlbal's verify_backend OPTIONS probe), its phases and timeouts,
// handing it to a request and back to the idle pool (pool.ts), connect_ahead spares. It reports to the request it
// carries only through that request's UpstreamEvents (contracts.ts); what the request makes of it is relay.ts's and exchange.ts's.
import { connect, type Socket } from 'node:net';
import { connectBackendTls } from '../tls/upstream.ts';
import { readDirect } from '../../runtime/socket-reads.ts';
import type { UpstreamUser } from '../contracts.ts';
import { newBodyReader, readBody } from '../http/body.ts';
import { newHeadReader, resetHeadReader } from '../http/head-reader.ts';
import { readResponseHead } from '../http/lenient.ts';
import type { ServiceRuntime, BackendConn } from '../records.ts';
import { countResponseCode } from '../management/stats.ts';
import { noteStatus, recordFailure, recordSuccess } from './health.ts';
import { announceTransition } from './transitions.ts';
import { idleExpired, keepAfterUse, parkIdle, popIdle, sparesWanted, unparkIdle, usableIdle } from './pool.ts';
import { chooseUpstream, type Upstream } from './upstream.ts';

// Declared in records.ts with the other records that name each other (so no import cycle); re-exported here.
export type { BackendPhase, BackendConn } from '../records.ts';

/** Perlbal's probe, byte for byte (reference 2.5): HTTP/1.0, no Host, keep-alive is the pass test. */
export function verifyRequest(path: string): string {
  return `OPTIONS ${path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`;
}

const NO_VERIFY_MS = 60_000;

/**
 * The first `n` bytes of the shared read buffer as a Buffer. A backend read of the same length as the last one (a
 * kept-alive backend answering the same response again, or a full buffer) reuses the last view instead of a new
 * `subarray` Buffer per read: the bytes behind it are the same memory, and no consumer keeps a view past its read
 * (everything kept is copied out), so handing out the same object again changes nothing.
 */
let lastView: Buffer | null = null;
/** The buffer `lastView` views (compared by identity: `.buffer` would be a native call per read). */
let lastSource: Buffer | null = null;
function readView(buf: Buffer, n: number): Buffer {
  if (n === buf.length) return buf;
  const v = lastView;
  if (v !== null && lastSource === buf && v.length === n) return v;
  lastSource = buf;
  return (lastView = buf.subarray(0, n));
}

/** An idle connection to `node`, or null. Closed or stale ones found on the way are dropped. */
export function takeIdle(svc: ServiceRuntime, node: Upstream): BackendConn | null {
  const now = svc.engine.now;
  for (let be = popIdle(svc, node); be !== null; be = popIdle(svc, node)) {
    // Never hand a request a connection to a backend that is down (all_down or a trial opens a fresh one).
    if (!usableIdle(be, now) || node.health.state === 'down') {
      closeBackend(be);
      continue;
    }
    be.phase = 'busy';
    return be;
  }
  return null;
}

/**
 * Opens a connection to `node` for `exchange` (or as a connect_ahead spare when null).
 * `skipVerify`: for the retry of a keep-alive race, the backend answered just now; a probe would only put the new
 * connection into the backend's idle keep-alive state again, where a busy backend closes it (the same race).
 */
export function openBackend(svc: ServiceRuntime, node: Upstream, exchange: UpstreamUser<BackendConn> | null, skipVerify = false): BackendConn {
  const engine = svc.engine;
  // Reads go straight into the engine's one read buffer (no Buffer per read, no stream machinery); whatever is
  // kept or forwarded is copied out (exchange.ts copyOut, the head reader's carry-over).
  const tls = svc.backendTls;
  const socket: Socket =
    tls !== null
      ? connectBackendTls(node.host, node.port, tls)
      : connect({
          host: node.host,
          port: node.port,
          noDelay: true,
          onread: {
            buffer: engine.readBuffer,
            callback: (n: number, buf: Uint8Array): boolean => {
              onBackendRead(be, n, buf as Buffer);
              return true;
            },
          },
        });
  const be: BackendConn = {
    kind: 'backend',
    svc,
    node,
    socket,
    phase: 'connecting',
    uses: 0,
    exchange,
    errorCode: null,
    deadline: engine.now + svc.opts.connectTimeoutMs,
    idleUntil: 0,
    idleSince: 0,
    hintTimeoutMs: -1,
    hintMaxLeft: -1,
    verified: false,
    skipVerify,
    spare: exchange === null,
    reader: newHeadReader(),
    verifyBody: null,
  };
  node.opening++;
  node.stats.attempts++;
  node.stats.lastAttemptMs = engine.now;
  if (be.spare) svc.sparesOpening++;
  engine.backends.add(be);
  if (tls === null) {
    // Node: each read goes from the handle straight to onBackendRead (elsewhere the onread callback above does).
    readDirect(socket, engine.readBuffer, be, onBackendRead);
    socket.on('connect', () => onConnect(be));
  } else {
    // Connected means handshake done (connect_timeout covers it); TLS reads come as 'data' (no onread for TLS).
    socket.on('secureConnect', () => onConnect(be));
    socket.on('data', (chunk: Buffer) => onData(be, chunk));
  }
  socket.on('end', () => onEnd(be));
  socket.on('error', (err: NodeJS.ErrnoException) => {
    be.errorCode ??= err.code ?? err.message;
  });
  socket.on('close', () => onClose(be));
  socket.on('drain', () => {
    const x = be.exchange;
    if (x !== null) x.events.drained(x, be);
  });
  return be;
}

function onBackendRead(be: BackendConn, n: number, buf: Buffer): void {
  onData(be, readView(buf, n));
}

function onConnect(be: BackendConn): void {
  if (be.phase !== 'connecting') return;
  const svc = be.svc;
  const engine = svc.engine;
  be.node.stats.connects++;
  be.node.stats.lastConnectMs = engine.now;
  if (svc.opts.verifyBackend && !be.skipVerify) {
    const until = engine.noVerify.get(be.node.key);
    if (until === undefined || until <= engine.now) {
      if (until !== undefined) engine.noVerify.delete(be.node.key);
      be.phase = 'verifying';
      be.deadline = engine.now + svc.opts.connectTimeoutMs;
      be.socket.write(verifyRequest(svc.opts.verifyBackendPath), 'latin1');
      return;
    }
  }
  becomeReady(be);
}

function leaveOpening(be: BackendConn): void {
  be.node.opening--;
  if (be.spare) {
    be.spare = false;
    be.svc.sparesOpening--;
  }
}

/** Connected (and verified): serve the exchange it was opened for, or wait as an idle spare. */
function becomeReady(be: BackendConn): void {
  leaveOpening(be);
  be.deadline = 0;
  const x = be.exchange;
  if (x !== null && x.phase !== 'done') {
    be.phase = 'busy';
    x.events.attached(x, be);
  } else {
    makeIdle(be, be.svc.engine.now);
  }
}

function makeIdle(be: BackendConn, now: number): void {
  if (!parkIdle(be, now)) closeBackend(be);
}

function onData(be: BackendConn, chunk: Buffer): void {
  switch (be.phase) {
    case 'busy':
    case 'tunnel': {
      const x = be.exchange!;
      x.events.data(x, be, chunk);
      return;
    }
    case 'verifying':
      verifyData(be, chunk);
      return;
    default:
      // Bytes on an idle connection: the backend is out of step with us; never reuse it.
      closeBackend(be);
  }
}

function verifyData(be: BackendConn, chunk: Buffer): void {
  const svc = be.svc;
  let start = 0;
  if (be.verifyBody === null) {
    const res = readResponseHead(be.reader, chunk, 0, 'OPTIONS', svc.limits, svc.engine.responseFields);
    if (res === null) return;
    if (res.kind === 'error') return verifyFailed(be, `unparsable answer to the verify probe: ${res.reason}`, false);
    if (res.status < 200) {
      // An interim answer: wait for the final one.
      if (res.bodyStart < res.fields.buf.length) verifyData(be, res.fields.buf.subarray(res.bodyStart));
      return;
    }
    const keepAlive = !res.connection.close && (res.minor >= 1 || res.connection.keepAlive) && res.framing.kind !== 'close';
    if (!keepAlive) return verifyFailed(be, `verify probe answered ${res.status} without keep-alive`, true);
    be.verifyBody = newBodyReader(res.framing);
    chunk = res.fields.buf;
    start = res.bodyStart;
  }
  const end = readBody(be.verifyBody, chunk, start, chunk.length, null);
  if (end === -1) return verifyFailed(be, 'bad body framing in the verify answer', false);
  if (!be.verifyBody.done) return;
  if (end < chunk.length) return verifyFailed(be, 'extra bytes after the verify answer', false);
  be.verifyBody = null;
  be.verified = true;
  be.node.stats.verifies++;
  resetHeadReader(be.reader);
  noteRecovered(be, 'verify probe passed');
  becomeReady(be);
}

/**
 * The probe did not pass. A clean "no keep-alive" answer puts the backend on the 60 s no-verify list (Perlbal);
 * anything else counts as a failed connect. Either way the exchange tries again.
 */
function verifyFailed(be: BackendConn, why: string, answered: boolean): void {
  const engine = be.svc.engine;
  if (answered) {
    engine.noVerify.set(be.node.key, engine.now + NO_VERIFY_MS);
    engine.log.debug(`backend ${be.node.key}: ${why}; not verifying it for 60 s`);
    openFailed(be, 'verify-no-keepalive');
  } else {
    openFailed(be, why);
  }
}

/** Connecting or verifying did not work out: close, and let the exchange decide (retry, mark down). */
function openFailed(be: BackendConn, cause: string): void {
  const x = be.exchange;
  be.exchange = null;
  leaveOpening(be);
  be.phase = 'closed';
  destroySocket(be);
  if (cause !== 'verify-no-keepalive') {
    be.node.stats.connectFailures++;
    be.svc.stats.connectFailures++;
    noteNodeFailure(be, cause);
  }
  if (x !== null) x.events.openFailed(x, be, cause);
}

/** Marks the backend down (or further down) and logs the transition. */
export function noteNodeFailure(be: BackendConn, cause: string, counted = false): void {
  const svc = be.svc;
  const h = be.node.health;
  const t = recordFailure(h, svc.engine.now, cause, svc.backoff);
  const retry = h.checkers > 0 ? 'back after its checks pass' : `retry in ${Math.round((h.retryAt - svc.engine.now) / 100) / 10} s`;
  // `counted`: the cause says how many in a row itself (a 5xx streak).
  const why = counted ? cause : `${cause}, ${h.failures} in a row`;
  if (t === 'down') announceTransition(svc.engine, h, t, `${why}; ${retry}`);
  else svc.engine.log.debug(`backend ${h.key} still down (${why}); ${retry}`);
}

/** A response head from the backend. */
export function noteNodeSuccess(be: BackendConn, status: number): void {
  const svc = be.svc;
  countResponseCode(be.node.stats, status, svc.engine.now);
  const h = be.node.health;
  const streak = svc.health.streak5xx;
  if (streak > 0 && noteStatus(h, status, streak)) {
    noteNodeFailure(be, h.state === 'down' ? `answered ${status} again` : `${streak} answers 5xx in a row, the last ${status}`, h.state !== 'down');
    return;
  }
  noteRecovered(be, `answered ${status}`);
}

/** The backend answered: if a passive mark-down is over, say so (once, like the mark-down). */
function noteRecovered(be: BackendConn, how: string): void {
  const svc = be.svc;
  const h = be.node.health;
  const failures = h.failures;
  const t = recordSuccess(h, svc.backoff, svc.engine.now);
  if (t === 'up') announceTransition(svc.engine, h, t, `${how} after ${failures} failure${failures === 1 ? '' : 's'}`);
}

function onEnd(be: BackendConn): void {
  const x = be.exchange;
  if ((be.phase === 'busy' || be.phase === 'tunnel') && x !== null) x.events.ended(x, be);
}

function onClose(be: BackendConn): void {
  const engine = be.svc.engine;
  engine.backends.delete(be);
  switch (be.phase) {
    case 'connecting':
    case 'verifying': {
      const cause =
        be.phase === 'connecting'
          ? `connect ${be.errorCode ?? 'closed'}`
          : `closed during the verify probe${be.errorCode === null ? '' : ` (${be.errorCode})`}`;
      openFailed(be, cause);
      return;
    }
    case 'busy':
    case 'tunnel': {
      const x = be.exchange;
      be.phase = 'closed';
      be.exchange = null;
      if (x !== null) x.events.closed(x, be);
      return;
    }
    case 'idle':
      unparkIdle(be);
      be.phase = 'closed';
      return;
    case 'closed':
      return;
  }
}

function destroySocket(be: BackendConn): void {
  if (!be.socket.destroyed) be.socket.destroy();
  be.svc.engine.backends.delete(be);
}

/** Closes a connection that no exchange needs any more. */
export function closeBackend(be: BackendConn): void {
  if (be.phase === 'idle') unparkIdle(be);
  if (be.phase === 'connecting' || be.phase === 'verifying') leaveOpening(be);
  be.phase = 'closed';
  be.exchange = null;
  destroySocket(be);
}

/** Drains a node (gone from its pool): no new requests; idle connections close now, busy ones when their exchange ends. */
export function retireNode(node: Upstream): void {
  node.admin = 'drain';
  closeIdle(node);
}

export function closeIdle(node: Upstream): void {
  for (const be of [...node.idle]) closeBackend(be);
}

/**
 * An exchange is done with the connection. `reusable`: the response ended cleanly on a keep-alive connection
 * and the whole request was sent.
 */
export function releaseBackend(be: BackendConn, reusable: boolean): void {
  const svc = be.svc;
  be.exchange = null;
  be.deadline = 0;
  resetHeadReader(be.reader);
  if (keepAfterUse(be, reusable)) makeIdle(be, svc.engine.now);
  else closeBackend(be);
}

/** connect_ahead: keep this many spare connections beyond current demand (opened on demand, like Perlbal). */
export function spawnAhead(svc: ServiceRuntime): void {
  for (let n = sparesWanted(svc); n > 0; n--) {
    const node = chooseUpstream(svc, null, null);
    if (node === null) return;
    openBackend(svc, node, null);
  }
}

/** Sweep: timeouts of opening, busy and idle connections; idle connections beyond backend_persist_cache. */
export function checkBackend(be: BackendConn, now: number): void {
  switch (be.phase) {
    case 'connecting':
    case 'verifying':
      if (be.deadline !== 0 && now >= be.deadline) {
        openFailed(be, be.phase === 'connecting' ? 'connect timeout' : 'no answer to the verify probe');
      }
      return;
    case 'busy':
    case 'tunnel':
      if (be.deadline !== 0 && now >= be.deadline && be.exchange !== null) be.exchange.events.timedOut(be.exchange, be);
      return;
    case 'idle':
      if (idleExpired(be, now)) closeBackend(be);
      return;
    case 'closed':
      return;
  }
}
