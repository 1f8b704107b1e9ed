// Serving a web_server request from disk: open (never blocking on a FIFO), prove the opened file lies inside the
// docroot after every symlink, then answer from decide.ts and stream the bytes with back-pressure (one 64 KiB read
// in flight, the next only once the socket has drained). Memory per connection is bounded whatever the file size.
import { close, readdir, stat, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { getField } from '../http/fields.ts';
import { requestTarget, type RequestHead } from '../http/request.ts';
import { fileAnswer, listingFields, listingPage, responseHead, type DirEntry } from './decide.ts';
import { resolveTarget } from './path.ts';
import { bytes, openInside, realpathBytes } from './open.ts';
import { serveConcat } from './concat.ts';
import type { WebServerOptions } from './options.ts';
import { gone, page, record, webKeepAlive } from './answer.ts';
import type { WebConn } from './conn.ts';
import { handleDelete, handlePut } from './put.ts';
import { pumpFile, type FilePumpHandler } from '../file-pump.ts';

const closeAsync = promisify(close);
const statAsync = promisify(stat);

/** Takes a request routed to a web_server; answers it now or when the disk has. Pipelined input waits in the stash. */
export function serveStatic(c: WebConn, req: RequestHead, web: WebServerOptions): void {
  const startMs = performance.now();
  if (c.svc.pstats !== null) c.svc.pstats.counts.web_requests++;
  c.phase = 'wait';
  c.deadline = c.svc.engine.now + c.svc.opts.idleTimeoutMs;
  if (req.method === 'PUT' && web.enablePut) return handlePut(c, req, web, startMs);
  if (req.method === 'DELETE' && web.enableDelete) return handleDelete(c, req, web, startMs);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    // Perlbal: PUT and DELETE are 403 unless enabled, any other method 400.
    const status = req.method === 'PUT' || req.method === 'DELETE' ? 403 : 400;
    page(c, req, status, '', `method ${req.method}`, startMs);
    return;
  }
  const target = resolveTarget(requestTarget(req), web.leadingDir);
  if (target.kind === 'page') {
    page(c, req, target.status, target.message, target.message, startMs);
    return;
  }
  if (target.kind === 'concat') {
    serveConcat(c, req, web, target, startMs);
    return;
  }
  if (web.docroot === '') {
    // A web_server that only redirects (the Redirect plugin answers its hosts) needs no docroot, as in Perlbal.
    page(c, req, 500, 'Docroot unconfigured', 'no docroot', startMs);
    return;
  }
  serveUri(c, req, web, target.uri, startMs).catch((e: Error) => {
    c.svc.engine.log.warn(`${c.svc.name}: serving ${target.uri}: ${e.message}`);
    // Before the head went out an error page can still be sent; after, only a cut tells the client.
    if (c.phase === 'wait' && c.abortStatic === null) page(c, req, 500, '', e.message, startMs);
    else c.down.abort(c);
  });
}

async function serveUri(c: WebConn, req: RequestHead, web: WebServerOptions, uri: string, startMs: number): Promise<void> {
  let root: string;
  try {
    // Per request, so a docroot that is a symlink (`current -> releases/42`) can be switched under a running server.
    root = await realpathBytes(web.docroot);
  } catch (e) {
    page(c, req, 404, '', `docroot ${web.docroot}: ${(e as Error).message}`, startMs);
    return;
  }
  const path = web.docroot + uri;
  const o = await openInside(root, path);
  if (gone(c)) {
    if (o.kind === 'ok') close(o.fd, () => {});
    return;
  }
  if (o.kind === 'error') {
    page(c, req, o.status, '', o.why, startMs);
    return;
  }
  if (o.st.isFile()) {
    await sendFile(c, req, o.fd, o.st, path, startMs);
    return;
  }
  await closeAsync(o.fd);
  if (!o.st.isDirectory()) {
    // A FIFO, socket or device node: Perlbal never answers; tsbal refuses.
    page(c, req, 403, '', 'not a regular file or directory', startMs);
    return;
  }
  for (const name of web.indexFiles) {
    const candidate = `${path}/${name}`;
    const idx = await openInside(root, candidate);
    if (idx.kind === 'ok' && idx.st.isFile() && !gone(c)) {
      await sendFile(c, req, idx.fd, idx.st, candidate, startMs);
      return;
    }
    if (idx.kind === 'ok') await closeAsync(idx.fd);
    if (gone(c)) return;
  }
  if (!web.dirindexing) {
    page(c, req, 200, 'Directory listing disabled', '', startMs);
    return;
  }
  await sendListing(c, req, path, uri, o.st, startMs);
}

async function dirEntries(path: string): Promise<DirEntry[]> {
  const dirents = await new Promise<import('node:fs').Dirent[]>((resolve, reject) =>
    readdir(bytes(path), { withFileTypes: true }, (err, d) => (err === null ? resolve(d) : reject(err))),
  );
  const out: DirEntry[] = [];
  for (const d of dirents) {
    // Perlbal's `-d` follows symlinks.
    let isDir = d.isDirectory();
    if (d.isSymbolicLink()) isDir = await statAsync(Buffer.concat([bytes(`${path}/`), Buffer.from(d.name)])).then((s) => s.isDirectory(), () => false);
    out.push({ name: d.name, isDir });
  }
  return out;
}

async function sendListing(c: WebConn, req: RequestHead, path: string, uri: string, st: Stats, startMs: number): Promise<void> {
  const body = Buffer.from(listingPage(bytes(uri).toString('utf8'), await dirEntries(path)), 'utf8');
  if (gone(c)) return;
  const svc = c.svc;
  const keepAlive = webKeepAlive(c, req, true);
  const head = responseHead(200, listingFields(st.mtimeMs, Date.now(), svc.opts.serverTokens, body.length), { keepAlive, keepAliveTimeoutSec: svc.keepAliveTimeoutSec });
  const isHead = req.method === 'HEAD';
  c.socket.write(isHead ? head : Buffer.concat([head, body]));
  record(c, req, 200, isHead ? 0 : body.length, startMs);
  c.down.exchangeDone(c, keepAlive);
}

async function sendFile(c: WebConn, req: RequestHead, fd: number, st: Stats, path: string, startMs: number): Promise<void> {
  const svc = c.svc;
  const answer = fileAnswer(
    { path, size: st.size, mtimeMs: st.mtimeMs },
    { ims: getField(req.fields, 'if-modified-since') ?? null, range: getField(req.fields, 'range') ?? null, nowMs: Date.now(), serverTokens: svc.opts.serverTokens },
  );
  const keepAlive = webKeepAlive(c, req, true);
  const head = responseHead(answer.status, answer.fields, { keepAlive, keepAliveTimeoutSec: svc.keepAliveTimeoutSec });
  const body = answer.body;
  if (req.method === 'HEAD' || body === null || body.end < body.start) {
    await closeAsync(fd);
    if (gone(c)) return;
    c.socket.write(head);
    record(c, req, answer.status, 0, startMs);
    c.down.exchangeDone(c, keepAlive);
    return;
  }
  if (svc.pstats !== null) svc.pstats.counts.files_sent++;
  c.abortStatic = () => close(fd, () => {});
  c.socket.cork();
  c.socket.write(head);
  pumpFile(c.socket, fd, body.start, body.end - body.start + 1, new FileAnswer(c, req, fd, answer.status, keepAlive, startMs));
  c.socket.uncork();
}

/** One file answer's progress, as the pump reports it. */
class FileAnswer implements FilePumpHandler {
  private sentBytes = 0;
  private readonly c: WebConn;
  private readonly req: RequestHead;
  private readonly fd: number;
  private readonly status: number;
  private readonly keepAlive: boolean;
  private readonly startMs: number;
  constructor(c: WebConn, req: RequestHead, fd: number, status: number, keepAlive: boolean, startMs: number) {
    this.c = c;
    this.req = req;
    this.fd = fd;
    this.status = status;
    this.keepAlive = keepAlive;
    this.startMs = startMs;
  }
  stopped(): boolean {
    return gone(this.c) || this.c.abortStatic === null;
  }
  sent(n: number): void {
    this.sentBytes += n;
    this.c.deadline = this.c.svc.engine.now + this.c.svc.opts.idleTimeoutMs;
  }
  finished(): void {
    this.release();
    record(this.c, this.req, this.status, this.sentBytes, this.startMs);
    this.c.down.exchangeDone(this.c, this.keepAlive);
  }
  failed(reason: string): void {
    // The file shrank (or failed) after its length went out: the response cannot be completed, cut it.
    this.c.svc.engine.log.warn(`${this.c.svc.name}: ${reason}; connection cut`);
    this.release();
    this.c.down.abort(this.c);
  }
  private release(): void {
    this.c.abortStatic = null;
    close(this.fd, () => {});
  }
}
