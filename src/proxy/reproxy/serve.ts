// enable_reproxy, the I/O: a backend answered with X-Reproxy-File or X-Reproxy-URL. Its connection goes back to the
// pool at once (its own body, normally empty, is read or the connection is closed), and the client gets the file,
// or the first URL of the list that answers 2xx/416 (dead hosts and errors are skipped), under the backend's
// fields (plan.ts). Ranges are served on files (webserver/decide.ts) and passed to URL targets. The client
// connection stays usable afterwards when the content had a length.
import { close, fstat, open } from 'node:fs';
import { enterPhase, detach, logExchange, type Exchange } from '../exchange.ts';
import { simplePage } from '../errors.ts';
import { newBodyReader, readBody } from '../http/body.ts';
import { getField } from '../http/fields.ts';
import { requestTarget } from '../http/request.ts';
import { responseReason, type ResponseHead } from '../http/response.ts';
import { reasonPhrase } from '../http/status.ts';
import { countResponse } from '../management/stats.ts';
import { noteNodeSuccess, releaseBackend, type BackendConn } from '../upstream/conn.ts';
import { decideRange, httpDate } from '../webserver/decide.ts';
import {
  cacheEntry,
  cacheGet,
  cacheKey,
  cachePut,
  parseReproxyUrls,
  removeField,
  findField,
  primaryFields,
  reproxyHead,
  setField,
  type Field,
  type ReproxyInstruction,
  type ReproxyTarget,
} from './plan.ts';
import { fetchTarget, type TargetAnswer } from './fetch.ts';
import type { ReproxyHandlers } from '../service.ts';
import { pumpFile, type FilePumpHandler } from '../file-pump.ts';


/** What the client gets in front of the reproxied body: the backend's status and fields (plan.ts primaryFields). */
export interface Primary {
  status: number;
  reason: string;
  fields: Field[];
}

/**
 * Takes over an exchange whose backend answered with reproxy instructions: frees the backend (back to its pool
 * when its answer ended cleanly) and serves what the instructions name. Everything needed from `res` is copied
 * here: its buffer is the engine's, reused by the next response.
 */
export function takeOverForReproxy(x: Exchange, be: BackendConn, res: ResponseHead, rest: Buffer, bodyStart: number, ins: ReproxyInstruction): void {
  const svc = x.svc;
  const body = newBodyReader(res.framing, res.connection.extra);
  const end = body.done ? bodyStart : readBody(body, rest, bodyStart, rest.length, null);
  const backendKeepAlive = res.minor >= 1 ? !res.connection.close : res.connection.keepAlive;
  const reusable = end === rest.length && body.done && backendKeepAlive && x.body.done && !res.conflictingLength && res.framing.kind !== 'close';
  noteNodeSuccess(be, res.status);
  x.res = res;
  enterPhase(x, 'response');
  const primary: Primary = { status: res.status, reason: responseReason(res), fields: primaryFields(res) };
  if (ins.kind === 'url' && svc.reproxyCache !== null) {
    const cacheFor = getField(res.fields, 'x-reproxy-cache-for');
    const entry = cacheFor === undefined ? null : cacheEntry(cacheFor, res.fields, ins.urls, Date.now());
    if (entry !== null) cachePut(svc.reproxyCache, cacheKey(requestHost(x), requestTarget(x.req)), entry);
  }
  detach(x);
  releaseBackend(be, reusable);
  // From here on only the request (Range, Host, method) and the copies above are used.
  decideClientKeepAlive(x);
  if (ins.kind === 'file') serveFile(x, primary, ins.path, ins.expectedSize);
  else serveUrls(x, primary, ins.targets, ins.expectedSize);
}

function requestHost(x: Exchange): string | null {
  return x.req.hostIndex === -1 ? null : getField(x.req.fields, 'host') ?? null;
}

function decideClientKeepAlive(x: Exchange): void {
  const c = x.client;
  const clientWants = x.req.minor === 0 ? x.req.connection.keepAlive : !x.req.connection.close;
  x.clientKeepAlive = c.listener.opts.persistClient && x.body.done && clientWants && !c.ended && !x.svc.engine.draining;
}

/**
 * Perlbal's satisfy_request_from_cache: a live cache entry for this Host and URI answers without a backend: 304 when
 * If-Modified-Since equals the cached Last-Modified, else a 200 with the cached fields and the cached URLs fetched.
 */
export function serveFromCache(x: Exchange): boolean {
  const cache = x.svc.reproxyCache;
  if (cache === null || x.req.framing.kind !== 'none') return false;
  const entry = cacheGet(cache, cacheKey(requestHost(x), requestTarget(x.req)), Date.now());
  if (entry === null) return false;
  enterPhase(x, 'response');
  decideClientKeepAlive(x);
  const ims = getField(x.req.fields, 'if-modified-since');
  if (ims !== undefined && ims.replace(/; length=\d+/, '') === (findField(entry.fields, 'last-modified') ?? '')) {
    x.client.socket.write(reproxyHead(304, reasonPhrase(304), [['Content-Length', '0']], suffix(x, x.clientKeepAlive)));
    finish(x, 304, x.clientKeepAlive);
    return true;
  }
  const primary: Primary = { status: 200, reason: 'OK', fields: [['Date', httpDate(Date.now())], ...entry.fields] };
  serveUrls(x, primary, parseReproxyUrls(entry.urls), null);
  return true;
}

function gone(x: Exchange): boolean {
  return x.phase === 'done' || x.client.phase === 'closed' || x.client.phase === 'closing';
}

/** The response is out (or cut): count it, log it, and let the client connection go on or close. */
function finish(x: Exchange, status: number, keepAlive: boolean): void {
  if (x.phase === 'done') return;
  enterPhase(x, 'done');
  countResponse(x.svc.stats, status, x.bodyBytesOut);
  if (x.svc.accessLog !== null) logExchange(x, status, null);
  x.client.abortStatic = null;
  x.client.down.exchangeDone(x.client, keepAlive);
}

/** Perlbal's _simple_response for a reproxy that found nothing (404) or nowhere to go (503), or broke (500). */
function answerPage(x: Exchange, status: number, why: string): void {
  if (gone(x)) return;
  const svc = x.svc;
  svc.engine.log.debug(`${svc.name}: reproxy ${status} for ${requestTarget(x.req)}: ${why}`);
  const keepAlive = x.clientKeepAlive;
  x.client.socket.write(simplePage(status, '', { keepAlive, keepAliveTimeoutSec: svc.keepAliveTimeoutSec, serverTokens: svc.opts.serverTokens, head: x.req.method === 'HEAD' }));
  finish(x, status, keepAlive);
}

function suffix(x: Exchange, keepAlive: boolean): Buffer {
  return keepAlive ? x.svc.suffixes.keepAlive : x.svc.suffixes.close;
}

// ---------------------------------------------------------------------------------------------------------------
// X-Reproxy-File
// ---------------------------------------------------------------------------------------------------------------

function serveFile(x: Exchange, primary: Primary, path: string, expectedSize: number | null): void {
  const range = getField(x.req.fields, 'range') ?? null;
  open(path, 'r', (err, fd) => {
    if (err !== null) return answerPage(x, 404, `${path}: ${err.code ?? err.message}`);
    fstat(fd, (err2, st) => {
      if (err2 !== null || gone(x)) {
        close(fd, () => {});
        if (err2 !== null) answerPage(x, 500, `${path}: ${err2.message}`);
        return;
      }
      // Perlbal: an empty or missing file, or one of another size than X-Reproxy-Expected-Size, is a 404.
      const size = st.size;
      if (size === 0 || !st.isFile() || (expectedSize !== null && expectedSize !== size)) {
        close(fd, () => {});
        return answerPage(x, 404, `${path}: ${size === 0 ? 'empty or missing' : !st.isFile() ? 'not a regular file' : `size ${size}, expected ${expectedSize}`}`);
      }
      const r = decideRange(range, size);
      const keepAlive = x.clientKeepAlive;
      if (r.kind === 'unsatisfiable') {
        close(fd, () => {});
        const fields: Field[] = [['Content-Range', `bytes */${size}`], ['Content-Length', '0']];
        x.client.socket.write(reproxyHead(416, reasonPhrase(416), fields, suffix(x, keepAlive)));
        return finish(x, 416, keepAlive);
      }
      const fields = primary.fields.slice();
      setField(fields, 'Accept-Ranges', 'bytes');
      let status = primary.status === 204 ? 200 : primary.status;
      let reason = primary.status === 204 ? 'OK' : primary.reason;
      let start = 0;
      let length = size;
      if (r.kind === 'partial') {
        status = 206;
        reason = reasonPhrase(206);
        start = r.start;
        length = r.end - r.start + 1;
        setField(fields, 'Content-Range', `bytes ${r.start}-${r.end}/${size}`);
      }
      setField(fields, 'Content-Length', String(length));
      const c = x.client;
      c.socket.write(reproxyHead(status, reason, fields, suffix(x, keepAlive)));
      if (x.req.method === 'HEAD') {
        close(fd, () => {});
        return finish(x, status, keepAlive);
      }
      c.abortStatic = () => close(fd, () => {});
      pumpFile(c.socket, fd, start, length, new ReproxiedFile(x, fd, status, keepAlive));
    });
  });
}

/** One reproxied file's progress, as the pump reports it. */
class ReproxiedFile implements FilePumpHandler {
  private readonly x: Exchange;
  private readonly fd: number;
  private readonly status: number;
  private readonly keepAlive: boolean;
  constructor(x: Exchange, fd: number, status: number, keepAlive: boolean) {
    this.x = x;
    this.fd = fd;
    this.status = status;
    this.keepAlive = keepAlive;
  }
  stopped(): boolean {
    return gone(this.x);
  }
  sent(n: number): void {
    this.x.bodyBytesOut += n;
    this.x.client.deadline = this.x.svc.engine.now + this.x.svc.opts.idleTimeoutMs;
  }
  finished(): void {
    this.x.client.abortStatic = null;
    close(this.fd, () => {});
    finish(this.x, this.status, this.keepAlive);
  }
  failed(reason: string): void {
    // The file shrank after its length went out: the response cannot be completed, cut it.
    const x = this.x;
    x.svc.engine.log.warn(`${x.svc.name}: reproxy file: ${reason}; connection cut`);
    x.client.abortStatic = null;
    close(this.fd, () => {});
    enterPhase(x, 'done');
    x.client.down.abort(x.client);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// X-Reproxy-URL
// ---------------------------------------------------------------------------------------------------------------

/** Tries each URL in turn; the first 2xx or 416 answer (of the expected size, if one was given) is relayed. */
export function serveUrls(x: Exchange, primary: Primary, targets: ReproxyTarget[], expectedSize: number | null): void {
  const range = getField(x.req.fields, 'range') ?? null;
  const host = requestHost(x);
  const method = x.req.method === 'HEAD' ? 'HEAD' : 'GET';
  let i = 0;
  const next = (why: string | null): void => {
    if (gone(x)) return;
    if (why !== null) x.svc.engine.log.debug(`${x.svc.name}: reproxy ${requestTarget(x.req)}: ${why}; trying the next URL`);
    const t = targets[i++];
    // Perlbal: no URL (left) to try is a 503.
    if (t === undefined) return answerPage(x, 503, 'no reproxy URL answered');
    fetchTarget(t, { method, range, host, timeoutMs: x.svc.opts.connectTimeoutMs, responseTimeoutMs: x.svc.opts.responseTimeoutMs }, (a) => {
      if (gone(x)) {
        if (a.kind === 'ok') a.socket.destroy();
        return;
      }
      if (a.kind === 'failed') return next(`${t.host}:${t.port}: ${a.why}`);
      const ok = (a.status >= 200 && a.status <= 299) || a.status === 416;
      if (!ok || (expectedSize !== null && a.contentLength !== expectedSize)) {
        a.socket.destroy();
        return next(`${t.host}:${t.port}${t.path} answered ${a.status}${ok ? `, length ${a.contentLength} not ${expectedSize}` : ''}`);
      }
      relayTarget(x, primary, a);
    });
  };
  x.client.abortStatic = null;
  next(null);
}

function relayTarget(x: Exchange, primary: Primary, a: Extract<TargetAnswer, { kind: 'ok' }>): void {
  const c = x.client;
  const fields = primary.fields.slice();
  let status = primary.status === 204 ? 200 : primary.status;
  let reason = primary.status === 204 ? 'OK' : primary.reason;
  // Perlbal keeps the backend's status, but a 206 or 416 of the target (a Range was passed on) wins, with its ranges.
  if (a.status === 206 || a.status === 416) {
    status = a.status;
    reason = reasonPhrase(a.status);
    const ar = findField(a.fields, 'accept-ranges');
    const cr = findField(a.fields, 'content-range');
    if (ar !== null) setField(fields, 'Accept-Ranges', ar);
    if (cr !== null) setField(fields, 'Content-Range', cr);
  }
  const length = a.contentLength;
  // Without a length the body runs to the target's close, and so must the client's connection.
  const keepAlive = x.clientKeepAlive && length !== null;
  if (length !== null) setField(fields, 'Content-Length', String(length));
  else removeField(fields, 'Content-Length');
  c.socket.write(reproxyHead(status, reason, fields, suffix(x, keepAlive)));
  const socket = a.socket;
  c.abortStatic = () => socket.destroy();
  // A target that stalls mid-body: the client's idle timeout ends it (checkClient), and abortStatic the fetch.
  c.deadline = x.svc.engine.now + x.svc.opts.idleTimeoutMs;
  const bodyExpected = x.req.method === 'HEAD' || status === 416 && length === 0 ? 0 : length;
  if (bodyExpected === 0) {
    socket.destroy();
    return finish(x, status, keepAlive);
  }
  let remaining = bodyExpected ?? Infinity;
  const take = (chunk: Buffer): void => {
    if (gone(x)) return void socket.destroy();
    const part = chunk.length > remaining ? chunk.subarray(0, remaining) : chunk;
    remaining -= part.length;
    x.bodyBytesOut += part.length;
    c.deadline = x.svc.engine.now + x.svc.opts.idleTimeoutMs;
    if (!c.socket.write(part)) {
      socket.pause();
      c.socket.once('drain', () => socket.resume());
    }
    if (remaining === 0) {
      socket.destroy();
      finish(x, status, keepAlive);
    }
  };
  if (a.early.length > 0) take(a.early);
  if (remaining === 0 || gone(x)) return;
  socket.on('data', take);
  socket.resume();
  socket.on('end', () => {
    if (gone(x)) return;
    if (remaining === Infinity) return finish(x, status, false);
    cut(x, 'reproxy URL target closed before the end of its body');
  });
  socket.on('error', (e) => {
    if (!gone(x)) cut(x, `reproxy URL target: ${e.message}`);
  });
}

function cut(x: Exchange, why: string): void {
  const c = x.client;
  x.svc.engine.log.warn(`${x.svc.name}: ${why}; connection cut`);
  c.abortStatic = null;
  enterPhase(x, 'done');
  c.down.abort(c);
}

/** What compile.ts hands a service with enable_reproxy (service.ts ReproxyHandlers). */
export const REPROXY_HANDLERS: ReproxyHandlers = { takeOver: takeOverForReproxy, fromCache: serveFromCache };
