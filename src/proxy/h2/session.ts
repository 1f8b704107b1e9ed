// HTTP/2 for clients on a TLS listener (ALPN h2) or, when asked for, on a plain one (h2c with prior knowledge): the
// I/O around connection.ts (our own HTTP/2, no node:http2). Every stream becomes one virtual HTTP/1.1 connection
// handed to the service's ordinary client code (`accept`), so an HTTP/2 request takes exactly the path an HTTP/1.1
// request takes: routing, plugins, access control, limits, X-Forwarded-*, balancing, retries and HTTP/1.1 backend
// connections. The virtual connection carries one request (`Connection: close`); what tsbal writes to it (an
// HTTP/1.1 response) is turned back into HEADERS and DATA frames (stream-socket.ts, translate.ts).
// Output is batched: frames of every stream queue on the connection and leave in one socket write per event-loop
// turn (after the read that caused them, or from a setImmediate for those caused elsewhere, e.g. by a backend).
// Limits: concurrent streams and header list size (SETTINGS), rapid-reset protection (guard.ts), idle timeout.
// Endings: a client's half-close, a reload removing the service and a stop each end with GOAWAY NO_ERROR after the
// streams in flight are answered (goAwaySessions; the service keeps its sessions in ServiceState.h2Sessions).
import type { Socket } from 'node:net';
import type { ConsolaInstance } from 'consola';
import { newResetGuard, noteEarlyReset, type ResetGuard } from './guard.ts';
import { requestHeadFromList } from './translate.ts';
import { StreamSocket, type StreamTransport } from './stream-socket.ts';
import {
  connectionError, DEFAULT_CONNECTION_WINDOW, DEFAULT_STREAM_WINDOW, feedConnection, goAway, newConnection, startConnection, streamError, takeOutput,
  type H2Connection, type H2Handler, type H2Settings, type H2Stream,
} from './connection.ts';
import { flushData, resetStream, respond, sendData } from './output.ts';
import { ErrorCode as ERR } from './frame-writer.ts';

export interface H2Limits {
  maxConcurrentStreams: number;
  /** max_header_size: the SETTINGS_MAX_HEADER_LIST_SIZE offered. */
  maxHeaderListSize: number;
  /** idle_timeout: a connection with no open stream and no frame for this long is closed (GOAWAY). */
  idleTimeoutMs: number;
}

export interface H2Host {
  /** Hands a virtual connection to the service's client code (acceptClient). */
  accept(virtual: Socket): void;
  draining(): boolean;
  /** The service's open HTTP/2 connections (kept across reloads): a reload that removes it, or a stop, says GOAWAY to each. */
  sessions: Set<H2Session>;
  log: ConsolaInstance;
  service: string;
}

/** A listener's HTTP/2 side: its limits and the SETTINGS they make. */
export interface H2Listener {
  limits: H2Limits;
  settings: H2Settings;
}

export function newH2Listener(limits: H2Limits): H2Listener {
  return {
    limits,
    settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderListSize, streamWindow: DEFAULT_STREAM_WINDOW, connectionWindow: DEFAULT_CONNECTION_WINDOW },
  };
}

/** One client connection speaking HTTP/2: the socket, the state machine, and what the glue keeps. */
export interface H2Session {
  socket: Socket;
  /** The socket's addresses, read once: every stream's virtual connection copies them (net's getters cost per read). */
  transport: StreamTransport;
  conn: H2Connection;
  host: H2Host;
  limits: H2Limits;
  guard: ResetGuard | null;
  /** Inside the socket's read callback: a flush asked for now happens at its end. */
  reading: boolean;
  flushAsked: boolean;
  /** Inside flush(): frames asked for now are written by it, or by one more flush it schedules. */
  flushing: boolean;
  immediate: NodeJS.Immediate | null;
  lastActive: number;
  idleTimer: NodeJS.Timeout | null;
  /** Until the client acknowledged our SETTINGS (its streams are held to 100, not to our limit, meanwhile). */
  settingsTimer: NodeJS.Timeout | null;
  cut: boolean;
  closing: boolean;
  /** The client half-closed: no frame, so no WINDOW_UPDATE, will come any more. */
  peerEnded: boolean;
}

const SESSION = Symbol('tsbal h2 session');
type SessionSocket = Socket & { [SESSION]: H2Session };

/** The socket's buffered output past which queued DATA waits for 'drain' instead of joining the next write. */
const SOCKET_HIGH_MARK = 256 * 1024;
/** Unwritten output past which the client is no longer read until the socket drained (slow-read, PING flood). */
const READ_PAUSE_MARK = 1024 * 1024;

/** Serves HTTP/2 on a socket: a TLS one that negotiated `h2`, or a plain one whose client sent the preface. `first`: bytes already read. */
export function serveH2(socket: Socket, h2: H2Listener, host: H2Host, first: Buffer | null = null): void {
  const s: H2Session = {
    socket, transport: { remoteAddress: socket.remoteAddress, localAddress: socket.localAddress, localPort: socket.localPort, encrypted: (socket as { encrypted?: boolean }).encrypted === true },
    conn: null as unknown as H2Connection, host, limits: h2.limits, guard: null, reading: false, flushAsked: false, flushing: false,
    immediate: null, lastActive: performance.now(), idleTimer: null, settingsTimer: null, cut: false, closing: false, peerEnded: false,
  };
  s.conn = newConnection(h2.settings, HANDLER);
  s.conn.owner = s;
  (socket as SessionSocket)[SESSION] = s;
  host.sessions.add(s);
  socket.setNoDelay?.(true);
  socket.on('data', onSocketData);
  socket.on('error', ignore);
  socket.on('close', onSocketClose);
  socket.on('end', onSocketEnd);
  socket.on('drain', onSocketDrain);
  startConnection(s.conn);
  armIdle(s);
  s.settingsTimer = setTimeout(onSettingsTimeout, SETTINGS_ACK_TIMEOUT_MS, s);
  s.settingsTimer.unref();
  if (first !== null && first.length > 0) onSocketData.call(socket as SessionSocket, first);
  else flush(s);
}

function ignore(): void {}

function sessionOf(conn: H2Connection): H2Session {
  return conn.owner as H2Session;
}

function onSocketData(this: SessionSocket, chunk: Buffer): void {
  const s = this[SESSION];
  s.lastActive = performance.now();
  s.reading = true;
  try {
    feedConnection(s.conn, chunk);
  } finally {
    s.reading = false;
  }
  // A client's GOAWAY with nothing open (or its last stream reset) ends the connection now.
  if (s.flushAsked || s.conn.error !== 0 || (s.conn.phase === 'closing' && s.conn.streams.size === 0)) flush(s);
  // A client that sends (PINGs, SETTINGS, requests) but does not read what it is owed is not read either until it
  // does: the ACKs and answers it causes are written whatever the windows, so they would queue without bound.
  if (this.writableLength > READ_PAUSE_MARK && !this.isPaused()) this.pause();
}

/**
 * The client half-closed (FIN after its last frames, as `nc -N` or a script does): nothing more will come, so the
 * streams it finished sending are answered and the connection closes after the last one, at once if none is left,
 * as HAProxy 2.6 does (not after idle_timeout). A stream whose request body was still coming can never
 * complete: it is reset (CANCEL) and its exchange goes as an HTTP/1.1 request whose client left mid-body.
 */
function onSocketEnd(this: SessionSocket): void {
  const s = this[SESSION];
  const conn = s.conn;
  if (conn.phase === 'closed' || s.closing) return;
  s.peerEnded = true;
  for (const st of [...conn.streams.values()]) if (st.state === 'open' || st.state === 'half-closed-local') streamError(conn, st.id, ERR.CANCEL);
  goAway(conn, ERR.NO_ERROR);
  flush(s);
}

function onSocketDrain(this: SessionSocket): void {
  const s = this[SESSION];
  if (this.isPaused()) this.resume();
  if (s.conn.sendQueue.length > 0) flush(s);
}

function onSocketClose(this: SessionSocket): void {
  const s = this[SESSION];
  const conn = s.conn;
  s.host.sessions.delete(s);
  conn.phase = 'closed';
  if (s.idleTimer !== null) clearTimeout(s.idleTimer);
  if (s.settingsTimer !== null) clearTimeout(s.settingsTimer);
  s.settingsTimer = null;
  if (s.immediate !== null) clearImmediate(s.immediate);
  s.idleTimer = null;
  s.immediate = null;
  // Every stream still open ends with the connection: its exchange goes as when an HTTP/1.1 client goes away.
  for (const st of [...conn.streams.values()]) {
    conn.streams.delete(st.id);
    st.state = 'closed';
    const v = st.user as StreamSocket | null;
    if (v !== null) v.destroy();
  }
  conn.active = 0;
}

/** Writes what the connection queued, in one write; then ends the connection if it is over. */
function flush(s: H2Session): void {
  // Frames queued while this flush runs (by drain handlers, say) are asked for again below, not by a new Immediate.
  if (s.flushing) {
    s.flushAsked = true;
    return;
  }
  s.flushAsked = false;
  if (s.immediate !== null) {
    clearImmediate(s.immediate);
    s.immediate = null;
  }
  const socket = s.socket;
  if (socket.destroyed) return;
  const conn = s.conn;
  s.flushing = true;
  try {
    if (socket.writableLength < SOCKET_HIGH_MARK) flushData(conn);
    if (s.peerEnded && conn.sendQueue.length > 0) cancelStarved(conn);
    const out = takeOutput(conn);
    if (out !== null) socket.write(out);
  } finally {
    s.flushing = false;
  }
  if (conn.error !== 0) {
    cutOff(s);
    return;
  }
  if (conn.phase === 'closing' && conn.streams.size === 0 && !s.closing) {
    s.closing = true;
    socket.end();
    setTimeout(destroySocket, CUT_OFF_GRACE_MS, socket).unref();
    return;
  }
  if (s.flushAsked) {
    s.flushAsked = false;
    if ((conn.out.length > 0 || conn.sendQueue.length > 0) && s.immediate === null) s.immediate = setImmediate(flushSoon, s);
  }
}

/**
 * A reload removed the service, or the proxy is stopping: each connection gets GOAWAY (NO_ERROR, naming the last
 * stream it opened), so its client opens no more streams here; the streams already open are answered, and the
 * connection closes after the last one (at once when none is open), as an HTTP/1.1 connection closes after its
 * request.
 */
export function goAwaySessions(sessions: Set<H2Session>): void {
  for (const s of [...sessions]) {
    if (s.closing || s.conn.phase === 'closed') continue;
    goAway(s.conn, ERR.NO_ERROR);
    flush(s);
  }
}

/** The proxy's stop is over (drained, or its deadline passed): connections still open end once their output left. */
export function closeSessions(sessions: Set<H2Session>): void {
  for (const s of [...sessions]) {
    if (s.conn.phase === 'closed') continue;
    goAway(s.conn, ERR.NO_ERROR);
    cutOff(s);
  }
}

/**
 * After the client half-closed, a response waiting for flow control credit waits for a WINDOW_UPDATE that cannot
 * come: it is reset (CANCEL) now rather than when idle_timeout runs out, so the connection closes.
 */
function cancelStarved(conn: H2Connection): void {
  for (const st of [...conn.sendQueue]) {
    if (st.state !== 'closed' && st.pendingBytes > 0 && (st.sendWindow <= 0 || conn.sendWindow <= 0)) resetStream(conn, st, ERR.CANCEL);
  }
}

function flushSoon(s: H2Session): void {
  s.immediate = null;
  flush(s);
}

/** Closes after a connection error or a cut-off: the GOAWAY had time to leave. */
function cutOff(s: H2Session): void {
  if (s.closing) return;
  s.closing = true;
  const out = takeOutput(s.conn);
  if (out !== null) s.socket.write(out);
  s.socket.end();
  setTimeout(destroySocket, CUT_OFF_GRACE_MS, s.socket).unref();
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

/** How long a closing connection's last frames get before the socket is destroyed. */
const CUT_OFF_GRACE_MS = 250;

/**
 * A client that never acknowledges our SETTINGS would keep the pre-ACK allowance of 100 streams whatever
 * http2_max_concurrent_streams says: RFC 9113 6.5.3 lets us end it with SETTINGS_TIMEOUT.
 */
const SETTINGS_ACK_TIMEOUT_MS = 10_000;

function onSettingsTimeout(s: H2Session): void {
  s.settingsTimer = null;
  if (s.conn.settingsAcked || s.conn.phase === 'closed' || s.closing) return;
  connectionError(s.conn, ERR.SETTINGS_TIMEOUT);
  flush(s);
}

function armIdle(s: H2Session): void {
  if (s.limits.idleTimeoutMs <= 0) return;
  s.idleTimer = setTimeout(onIdleTimer, s.limits.idleTimeoutMs, s);
  s.idleTimer.unref();
}

function onIdleTimer(s: H2Session): void {
  s.idleTimer = null;
  if (s.conn.phase === 'closed' || s.closing) return;
  const now = performance.now();
  const left = s.lastActive + s.limits.idleTimeoutMs - now;
  if (s.conn.streams.size > 0 || left > 1) {
    s.idleTimer = setTimeout(onIdleTimer, s.conn.streams.size > 0 ? s.limits.idleTimeoutMs : left, s);
    s.idleTimer.unref();
    return;
  }
  goAway(s.conn, ERR.NO_ERROR);
  flush(s);
}

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/** A stream's request as the glue keeps it: the virtual connection, and whether its body goes out chunked. */
type StreamUser = StreamSocket & { chunked?: boolean };

const HANDLER: H2Handler = {
  wantFlush(conn) {
    const s = sessionOf(conn);
    if (s.reading || s.flushing) s.flushAsked = true;
    else if (s.immediate === null) s.immediate = setImmediate(flushSoon, s);
  },

  request(conn, st, fields, endStream) {
    const s = sessionOf(conn);
    const host = s.host;
    if (host.draining()) {
      goAway(conn, ERR.NO_ERROR);
      streamError(conn, st.id, ERR.REFUSED_STREAM);
      return;
    }
    if (fields === null) return answer(conn, st, 431, 'request header block too large');
    const head = requestHeadFromList(fields, endStream);
    if (!head.ok) {
      if (head.status === 0) {
        host.log.debug(`service ${host.service}: HTTP/2 stream ${st.id} from ${s.socket.remoteAddress ?? '?'} malformed: ${head.why}`);
        return streamError(conn, st.id, ERR.PROTOCOL_ERROR);
      }
      return answer(conn, st, head.status, head.why);
    }
    st.bodyLeft = head.contentLength;
    const virtual = new StreamSocket(conn, st, head.method, s.transport) as StreamUser;
    if (head.chunkedBody) virtual.chunked = true;
    st.user = virtual;
    host.accept(virtual as unknown as Socket);
    virtual.feed(Buffer.from(head.head, 'latin1'));
  },

  data(_conn, st, buf, start, end, endStream) {
    const v = st.user as StreamUser | null;
    if (v === null) return;
    const n = end - start;
    if (v.chunked === true) {
      if (n > 0) v.feed(Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), buf.subarray(start, end), CRLF]), n);
      if (endStream) v.feed(LAST_CHUNK);
    } else if (n > 0) v.feed(Buffer.from(buf.subarray(start, end)), n);
  },

  trailers(_conn, st, fields) {
    const v = st.user as StreamUser | null;
    if (v === null || v.chunked !== true) return;
    // A chunked body's trailer section (the client code filters it as it does an HTTP/1.1 client's).
    let t = '0\r\n';
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!;
      const value = fields[i + 1]!;
      if (name.charCodeAt(0) === 0x3a || /[\0\r\n]/.test(value) || /[^a-z0-9!#$%&'*+\-.^_`|~]/.test(name)) continue;
      t += `${name}: ${value}\r\n`;
    }
    v.feed(Buffer.from(`${t}\r\n`, 'latin1'));
  },

  closed(conn, st, code, byPeer) {
    const s = sessionOf(conn);
    s.lastActive = performance.now();
    const v = st.user as StreamUser | null;
    // A reset the client provoked with a protocol error costs the same as its own (MadeYouReset, CVE-2025-8671).
    if (byPeer || code === ERR.PROTOCOL_ERROR || code === ERR.FLOW_CONTROL_ERROR || code === ERR.STREAM_CLOSED) {
      const host = s.host;
      host.log.debug(`service ${host.service}: HTTP/2 stream ${st.id} from ${s.socket.remoteAddress ?? '?'} reset ${byPeer ? 'by the client' : 'for its error'} (code ${code}) before its response was complete`);
      const guard = (s.guard ??= newResetGuard());
      if (noteEarlyReset(guard, performance.now()) && !s.cut) {
        s.cut = true;
        host.log.warn(`service ${host.service}: HTTP/2 client ${s.socket.remoteAddress ?? '?'} cut off: more than ${guard.limit} streams cancelled within ${guard.windowMs / 1000} s (rapid reset)`);
        goAway(conn, ERR.ENHANCE_YOUR_CALM);
        cutOff(s);
      }
    }
    // The stream is over: so is its virtual connection (the client code sees it close).
    if (v !== null) v.destroy();
    // Stopping: the client hears GOAWAY as its streams finish, and the connection ends with its last one. Written
    // now, not on the next turn: the last stream's end lets the engine finish stopping within this turn.
    if (s.host.draining()) {
      goAway(conn, ERR.NO_ERROR);
      flush(s);
    } else if (conn.phase === 'closing' && conn.streams.size === 0) HANDLER.wantFlush(conn);
  },

  drain(_conn, st) {
    const v = st.user as StreamUser | null;
    if (v !== null) v.drained();
  },
};

/** tsbal's own short answer on a stream (a request HTTP/2 carried but tsbal will not serve). */
function answer(conn: H2Connection, st: H2Stream, status: number, why: string): void {
  if (respond(conn, st, [':status', String(status), 'content-type', 'text/plain'], false)) sendData(conn, st, Buffer.from(`${why}\n`), true);
}
