// enable_concatenate_get (Perlbal's _serve_request_multiple): `/dir/??a.css,b.css` answers the listed files of
// that directory one after another, with the newest mtime as Last-Modified and the first known extension's type.
// Each file is opened (inside the docroot, after symlinks) before the head goes out, then streamed in order with
// back-pressure.
import { close, stat } from 'node:fs';
import { promisify } from 'node:util';
import type { WebConn } from './conn.ts';
import { getField } from '../http/fields.ts';
import type { RequestHead } from '../http/request.ts';
import { gone, page, record, webKeepAlive } from './answer.ts';
import { httpDate, responseHead, type Field } from './decide.ts';
import { knownContentType } from './mime.ts';
import { openInside, realpathBytes, bytes } from './open.ts';
import type { WebServerOptions } from './options.ts';
import { concatRefusal, isInside } from './path.ts';
import { pumpFile } from '../file-pump.ts';

const statAsync = promisify(stat);

interface Part {
  /** -1 once closed (a descriptor number is reused at once: never close one twice). */
  fd: number;
  size: number;
}

function closePart(p: Part): void {
  if (p.fd === -1) return;
  close(p.fd, () => {});
  p.fd = -1;
}

export function serveConcat(c: WebConn, req: RequestHead, web: WebServerOptions, t: { base: string; files: string[] }, startMs: number): void {
  const refusal = concatRefusal(t, web.docroot, web.enableConcatenateGet);
  if (refusal !== null) {
    page(c, req, refusal.status, refusal.message, refusal.message, startMs);
    return;
  }
  openAll(c, req, web, t, startMs).catch((e: Error) => {
    c.svc.engine.log.warn(`${c.svc.name}: serving ${t.base}??: ${e.message}`);
    if (c.phase === 'wait' && c.abortStatic === null) page(c, req, 500, '', e.message, startMs);
    else c.down.abort(c);
  });
}

async function openAll(c: WebConn, req: RequestHead, web: WebServerOptions, t: { base: string; files: string[] }, startMs: number): Promise<void> {
  const root = await realpathBytes(web.docroot);
  const dir = web.docroot + t.base;
  const baseOk = await realpathBytes(dir).then(
    async (real) => isInside(root, real) && (await statAsync(bytes(real))).isDirectory(),
    () => false,
  );
  if (!baseOk) return page(c, req, 404, 'Base directory not a directory', `${dir} is not a directory`, startMs);
  const parts: Part[] = [];
  const release = (): void => {
    for (const p of parts) closePart(p);
  };
  let newest = 0;
  let type: string | null = null;
  for (const f of t.files) {
    const o = await openInside(root, dir + f);
    if (o.kind === 'ok' && o.st.isFile()) {
      parts.push({ fd: o.fd, size: o.st.size });
      newest = Math.max(newest, Math.floor(o.st.mtimeMs / 1000) * 1000);
      type ??= knownContentType(f);
      continue;
    }
    if (o.kind === 'ok') close(o.fd, () => {});
    release();
    return page(c, req, 404, 'One or more file does not exist', `${dir}${f}: ${o.kind === 'ok' ? 'not a regular file' : o.why}`, startMs);
  }
  if (gone(c)) return release();
  const lastModified = httpDate(newest);
  const notModified = (getField(req.fields, 'if-modified-since') ?? '') === lastModified;
  const total = parts.reduce((n, p) => n + p.size, 0);
  // Perlbal's order: Content-Length (set first), Date, Server, Last-Modified, Content-Type.
  const fields: Field[] = notModified ? [] : [['Content-Length', String(total)]];
  fields.push(['Date', httpDate(Date.now())]);
  if (c.svc.opts.serverTokens) fields.push(['Server', 'tsbal']);
  fields.push(['Last-Modified', lastModified], ['Content-Type', type ?? 'text/plain']);
  const keepAlive = webKeepAlive(c, req, true);
  const status = notModified ? 304 : 200;
  c.socket.write(responseHead(status, fields, { keepAlive, keepAliveTimeoutSec: c.svc.keepAliveTimeoutSec }));
  if (notModified || req.method === 'HEAD' || parts.length === 0) {
    release();
    record(c, req, status, 0, startMs);
    c.down.exchangeDone(c, keepAlive);
    return;
  }
  c.abortStatic = release;
  streamParts(c, req, parts, 0, keepAlive, startMs, 0);
}

/** Sends parts[i], then the next; the response ends after the last. */
function streamParts(c: WebConn, req: RequestHead, parts: Part[], i: number, keepAlive: boolean, startMs: number, sent: number): void {
  const part = parts[i]!;
  let partSent = 0;
  pumpFile(c.socket, part.fd, 0, part.size, {
    stopped: () => gone(c) || c.abortStatic === null,
    sent: (n) => {
      partSent += n;
      c.deadline = c.svc.engine.now + c.svc.opts.idleTimeoutMs;
    },
    finished: () => {
      closePart(part);
      if (i + 1 < parts.length) return streamParts(c, req, parts, i + 1, keepAlive, startMs, sent + partSent);
      c.abortStatic = null;
      record(c, req, 200, sent + partSent, startMs);
      c.down.exchangeDone(c, keepAlive);
    },
    failed: (reason) => {
      // A file shrank after its length went out: the response cannot be completed.
      c.svc.engine.log.warn(`${c.svc.name}: ${reason}; connection cut`);
      for (const p of parts) closePart(p);
      c.abortStatic = null;
      c.down.abort(c);
    },
  });
}
