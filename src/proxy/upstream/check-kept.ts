// health_check_reuse = on (the default), plain HTTP checks: one connection per checked target, kept between checks,
// as Envoy's checker does (reuse_connection). Each check sends the prebuilt request on it and reads the whole
// answer (check-response.ts), so the next check can go on the same connection. The connection is dropped and made
// again when the backend closes it, answers `Connection: close` or an answer not framed by length or chunks, times
// out or errors. A timeout or an error is a failed check as with a connection per check; a kept connection that
// the backend closed since the last check (it closes idle keep-alive connections) is not: the check reconnects at
// once. A backend that dies resets its connection, the next connect is refused, and that check fails.
import { connect, type Socket } from 'node:net';
import { clockNow } from '../engine.ts';
import { expectedStatus, type CheckSpec } from './check-spec.ts';
import { feedCheckResponse, newCheckResponseReader, resetCheckResponse, type CheckResponseReader } from './check-response.ts';

export interface KeptConnection {
  host: string;
  port: number;
  spec: CheckSpec;
  request: Buffer;
  /** Called once per check with its verdict (set once, at creation: no closure per check). */
  done: (passed: boolean, answer: string, startedAt: number) => void;
  socket: Socket | null;
  /** The socket is connected (else still connecting). */
  ready: boolean;
  reader: CheckResponseReader;
  /** A check is waiting for its answer. */
  inFlight: boolean;
  /** The running check was sent on a connection kept from an earlier check (may be stale: retried on close). */
  onKept: boolean;
  /** Bytes of the running check's answer came. */
  answered: boolean;
  startedAt: number;
  timeout: ReturnType<typeof setTimeout> | null;
  /** The last socket error's code, for the close that follows it. */
  lastError: string | null;
}

/** Where every kept check connection reads into (onread): answers are parsed in the callback, nothing is kept. */
const KEPT_READ_BUFFER = Buffer.alloc(16 * 1024);

export function newKept(host: string, port: number, spec: CheckSpec, request: Buffer, done: KeptConnection['done']): KeptConnection {
  return {
    host, port, spec, request, done,
    socket: null, ready: false, reader: newCheckResponseReader(spec.method),
    inFlight: false, onKept: false, answered: false, startedAt: 0, timeout: null, lastError: null,
  };
}

/** Closes the kept connection (stop, or a target no service uses any more). Ends a running check without a verdict. */
export function stopKept(k: KeptConnection): void {
  if (k.timeout !== null) clearTimeout(k.timeout);
  k.timeout = null;
  k.inFlight = false;
  dropSocket(k);
}

function dropSocket(k: KeptConnection): void {
  const s = k.socket;
  k.socket = null;
  k.ready = false;
  s?.destroy();
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

export function runKeptCheck(k: KeptConnection): void {
  k.startedAt = clockNow();
  k.inFlight = true;
  k.answered = false;
  k.timeout = setTimeout(onTimeout, k.spec.timeoutMs, k);
  k.timeout.unref?.();
  // An answer still coming from the last check (its body outlived the interval): do not wait for it.
  if (k.socket !== null && k.ready && !k.reader.complete && k.reader.status !== -1) dropSocket(k);
  if (k.socket !== null && k.ready) {
    k.onKept = true;
    resetCheckResponse(k.reader);
    k.socket.write(k.request);
  } else if (k.socket === null) {
    open(k);
  } // else: connecting; the request goes when it is up
}

function onTimeout(k: KeptConnection): void {
  k.timeout = null;
  if (!k.inFlight) return;
  const connected = k.ready;
  dropSocket(k);
  finish(k, false, `${connected ? 'no answer' : 'no connect'} within ${seconds(k.spec.timeoutMs)}`);
}

function finish(k: KeptConnection, passed: boolean, answer: string): void {
  if (!k.inFlight) return;
  k.inFlight = false;
  if (k.timeout !== null) clearTimeout(k.timeout);
  k.timeout = null;
  k.done(passed, answer, k.startedAt);
}

function open(k: KeptConnection): void {
  k.onKept = false;
  k.ready = false;
  k.lastError = null;
  resetCheckResponse(k.reader);
  const socket: Socket = connect({
    host: k.host,
    port: k.port,
    onread: {
      buffer: KEPT_READ_BUFFER,
      callback: (n: number, buf: Buffer): boolean => {
        if (k.socket === socket) onAnswerBytes(k, buf, n);
        return true;
      },
    },
  });
  k.socket = socket;
  socket.on('connect', () => {
    if (k.socket !== socket) return;
    k.ready = true;
    if (k.inFlight) socket.write(k.request);
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (k.socket === socket) k.lastError = err.code ?? err.message;
  });
  socket.on('close', () => {
    if (k.socket !== socket) return;
    const connected = k.ready;
    const error = k.lastError;
    k.socket = null;
    k.ready = false;
    if (!k.inFlight) return; // closed between checks: the next check reconnects
    if (k.onKept && !k.answered) {
      // The backend closed the kept connection before this check's request reached it: not the backend's fault.
      open(k);
      return;
    }
    if (error !== null) finish(k, false, `${connected ? '' : 'connect '}${error}`);
    else finish(k, false, connected ? 'closed without an answer' : 'connect closed');
  });
}

function onAnswerBytes(k: KeptConnection, buf: Buffer, n: number): void {
  const r = k.reader;
  if (k.inFlight) k.answered = true;
  feedCheckResponse(r, buf, n);
  if (k.inFlight && r.status !== -1) {
    if (r.status === -2) finish(k, false, 'not an HTTP answer');
    else finish(k, expectedStatus(k.spec, r.status), String(r.status));
  }
  if (r.complete && !r.reusable) dropSocket(k);
}
