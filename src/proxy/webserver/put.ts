// Writing to a web_server's docroot (Perlbal's ClientHTTP: enable_put, enable_delete). A PUT body, sized or
// chunked, streams into a temp file beside its target (O_EXCL, O_NOFOLLOW), which is renamed over the target only
// once complete (and its Content-MD5 checked): a reader never sees half a file, and an aborted upload leaves none.
// Every directory used or made is proved inside the docroot after symlinks first. Back-pressure: the client is
// paused while more than 1 MiB waits for the disk.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { close, constants, mkdir, open, realpath, rename, stat, unlink, write } from 'node:fs';
import { promisify } from 'node:util';
import type { WebConn } from './conn.ts';
import { newBodyReader, readBody, type BodyReader } from '../http/body.ts';
import { getField } from '../http/fields.ts';
import { requestTarget, type RequestHead } from '../http/request.ts';
import { gone, page } from './answer.ts';
import type { WebServerOptions } from './options.ts';
import { isInside } from './path.ts';
import { deleteTarget, errnoText, md5Matches, putTarget } from './write-rules.ts';

const openAsync = promisify(open);
const closeAsync = promisify(close);
const mkdirAsync = promisify(mkdir);
const renameAsync = promisify(rename);
const statAsync = promisify(stat);
const unlinkAsync = promisify(unlink);
const realpathAsync = promisify(realpath);
/** Body bytes held for the disk before the client is paused. */
const HOLD_MAX = 1024 * 1024;
const TEMP_FLAGS = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW;

const code = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

interface Upload {
  c: WebConn;
  req: RequestHead;
  web: WebServerOptions;
  startMs: number;
  body: BodyReader;
  md5: Hash | null;
  /** The client's Content-MD5 (when checked). */
  expectMd5: string;
  held: Buffer[];
  heldBytes: number;
  fd: number;
  tempPath: string;
  finalPath: string;
  pos: number;
  writing: boolean;
  bodyDone: boolean;
  /** Answered (or abandoned): nothing more happens but cleanup. */
  over: boolean;
}

/** A PUT on a web_server with enable_put: checks, then reads the body into the docroot. */
export function handlePut(c: WebConn, req: RequestHead, web: WebServerOptions, startMs: number): void {
  const framing = req.framing;
  if (framing.kind === 'length' && web.maxPutSize > 0 && framing.length > web.maxPutSize) {
    page(c, req, 400, `Content-length of ${framing.length} is invalid.`, 'PUT larger than max_put_size', startMs);
    return;
  }
  if (web.docroot === '') {
    page(c, req, 500, 'Docroot unconfigured', 'PUT without a docroot', startMs);
    return;
  }
  const target = putTarget(requestTarget(req), web.minPutDirectory);
  if (target.kind === 'page') {
    page(c, req, target.status, target.message, target.message, startMs);
    return;
  }
  const contentMd5 = web.enableMd5 ? (getField(req.fields, 'content-md5') ?? '') : '';
  const u: Upload = {
    c,
    req,
    web,
    startMs,
    body: newBodyReader(framing),
    md5: contentMd5 !== '' ? createHash('md5') : null,
    expectMd5: contentMd5,
    held: [],
    heldBytes: 0,
    fd: -1,
    tempPath: '',
    finalPath: '',
    pos: 0,
    writing: false,
    bodyDone: framing.kind === 'none',
    over: false,
  };
  c.abortStatic = () => abandon(u);
  // The client may send the body now (Perlbal says so only for chunked PUTs; tsbal for every one it accepts).
  if (req.expectContinue && framing.kind !== 'none') c.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
  if (!u.bodyDone) {
    c.phase = 'upload';
    c.upload = (buf, start) => uploadBytes(u, buf, start);
  }
  openTemp(u, target.existing, target.made, target.filename).catch((e: Error) => fail(u, 500, 'Internal error', e.message));
}

/** Body bytes from the client: returns where this request's body ends in buf. */
function uploadBytes(u: Upload, buf: Buffer, start: number): number {
  const c = u.c;
  const end = readBody(u.body, buf, start, buf.length, (b, s, e) => hold(u, b, s, e));
  if (end === -1) {
    fail(u, 400, 'Bad chunked body', u.body.error ?? 'bad chunked framing');
    return buf.length;
  }
  if (u.body.framing === 'chunked' && u.web.maxChunkedRequestSize > 0 && u.body.received > u.web.maxChunkedRequestSize) {
    // Perlbal disconnects such a client.
    c.svc.engine.log.debug(`${c.svc.name}: chunked PUT from ${c.peerIp} over max_chunked_request_size; connection cut`);
    c.socket.destroy();
    return buf.length;
  }
  c.deadline = c.svc.engine.now + c.svc.opts.idleTimeoutMs;
  if (u.body.done) {
    u.bodyDone = true;
    c.upload = null;
    // Bytes after the body (a pipelined request) wait in the stash until the answer is out.
    c.phase = 'wait';
    pump(u);
  }
  return end;
}

function hold(u: Upload, b: Buffer, s: number, e: number): void {
  if (e <= s) return;
  const copy = Buffer.from(b.subarray(s, e));
  u.md5?.update(copy);
  u.held.push(copy);
  u.heldBytes += copy.length;
  if (u.heldBytes > HOLD_MAX) u.c.down.pause(u.c, 'queue');
  pump(u);
}

/** Makes sure `dir` (made if `make`) is a directory inside the docroot `root`; an error page's status otherwise. */
async function directoryInside(root: string, dir: string, make: boolean): Promise<{ status: 403 | 404 | 500; message: string } | null> {
  if (make) {
    try {
      await mkdirAsync(dir, 0o755);
    } catch (e) {
      if (code(e) !== 'EEXIST') return { status: 500, message: 'Unable to create directory' };
    }
  }
  let real: string;
  try {
    real = await realpathAsync(dir);
    if (!(await statAsync(real)).isDirectory()) return { status: 404, message: 'Base directory does not exist' };
  } catch {
    return { status: 404, message: 'Base directory does not exist' };
  }
  return isInside(root, real) ? null : { status: 403, message: 'Directory outside the docroot' };
}

async function openTemp(u: Upload, existing: string[], made: string[], filename: string): Promise<void> {
  const root = await realpathAsync(u.web.docroot);
  let dir = u.web.docroot;
  for (const d of existing) dir += `/${d}`;
  // One directory at a time, each proved inside the docroot before anything is made in it.
  let refusal = await directoryInside(root, dir, false);
  for (let i = 0; refusal === null && i < made.length; i++) {
    dir += `/${made[i]}`;
    refusal = await directoryInside(root, dir, true);
  }
  if (u.over) return;
  if (refusal !== null) return fail(u, refusal.status, refusal.message, `${refusal.message}: ${dir}`);
  u.finalPath = `${dir}/${filename}`;
  u.tempPath = `${dir}/${filename}.${process.pid}.${randomBytes(4).readUInt32BE(0)}.tmp`;
  const fd = await openAsync(u.tempPath, TEMP_FLAGS, 0o644);
  if (u.over) {
    close(fd, () => unlink(u.tempPath, () => {}));
    return;
  }
  u.fd = fd;
  pump(u);
}

/** Writes what is held, one write at a time; completes the PUT once the body is in and written. */
function pump(u: Upload): void {
  if (u.over || u.writing || u.fd === -1) return;
  if (u.held.length === 0) {
    if (u.bodyDone) void complete(u);
    return;
  }
  const data = u.held.length === 1 ? u.held[0]! : Buffer.concat(u.held);
  u.held = [];
  u.heldBytes = 0;
  u.c.down.resume(u.c, 'queue');
  u.writing = true;
  writeAll(u, data, 0);
}

function writeAll(u: Upload, data: Buffer, off: number): void {
  write(u.fd, data, off, data.length - off, u.pos, (err, n) => {
    if (u.over) return;
    if (err !== null) return fail(u, 500, 'Error saving file', `${u.tempPath}: ${err.message}`);
    u.pos += n;
    if (off + n < data.length) return writeAll(u, data, off + n);
    u.writing = false;
    pump(u);
  });
}

async function complete(u: Upload): Promise<void> {
  u.writing = true;
  const fd = u.fd;
  u.fd = -1;
  try {
    await closeAsync(fd);
  } catch (e) {
    return fail(u, 500, 'Error saving file', `close ${u.tempPath}: ${(e as Error).message}`);
  }
  if (u.md5 !== null) {
    const actual = u.md5.digest('base64');
    if (!md5Matches(u.expectMd5, actual)) {
      const expect = u.expectMd5.replace(/=+\s*$/, '');
      return fail(u, 400, `Content-MD5 mismatch, expected: ${expect} actual: ${actual.replace(/=+$/, '')}`, 'Content-MD5 mismatch');
    }
  }
  try {
    await renameAsync(u.tempPath, u.finalPath);
  } catch (e) {
    return fail(u, 500, 'Error renaming file', `rename to ${u.finalPath}: ${(e as Error).message}`);
  }
  u.tempPath = '';
  finish(u);
  // Perlbal: 201 when the MD5 was checked (the temp-and-rename path), else 200.
  page(u.c, u.req, u.md5 !== null ? 201 : 200, '', '', u.startMs, true);
}

function finish(u: Upload): void {
  u.over = true;
  const c = u.c;
  if (c.upload !== null && c.phase === 'upload') c.upload = null;
  c.abortStatic = null;
  c.down.resume(c, 'queue');
}

/** Answers `status` and removes whatever was written. */
function fail(u: Upload, status: number, message: string, why: string): void {
  if (u.over) return;
  const c = u.c;
  if (status >= 500) c.svc.engine.log.warn(`${c.svc.name}: PUT ${requestTarget(u.req)}: ${why}`);
  const read = u.bodyDone;
  cleanup(u);
  finish(u);
  if (!read) c.upload = null;
  page(c, u.req, status, message, why, u.startMs, read);
}

/** The client went away mid-upload. */
function abandon(u: Upload): void {
  if (u.over) return;
  u.c.svc.engine.log.debug(`${u.c.svc.name}: PUT ${requestTarget(u.req)} abandoned by the client; temp file removed`);
  cleanup(u);
  u.over = true;
}

function cleanup(u: Upload): void {
  const fd = u.fd;
  const temp = u.tempPath;
  u.fd = -1;
  u.tempPath = '';
  u.held = [];
  if (fd !== -1) close(fd, () => (temp !== '' ? unlink(temp, () => {}) : undefined));
  else if (temp !== '') unlink(temp, () => {});
}

/** A DELETE on a web_server with enable_delete. */
export function handleDelete(c: WebConn, req: RequestHead, web: WebServerOptions, startMs: number): void {
  const target = deleteTarget(requestTarget(req));
  if (target.kind === 'page') {
    page(c, req, target.status, target.message, target.message, startMs);
    return;
  }
  if (web.docroot === '') {
    page(c, req, 500, 'Docroot unconfigured', 'DELETE without a docroot', startMs);
    return;
  }
  removeFile(web.docroot, target.parts).then(
    (r) => {
      if (!gone(c)) page(c, req, r.status, r.message, r.why, startMs);
    },
    (e: Error) => page(c, req, 500, 'Internal error', e.message, startMs),
  );
}

async function removeFile(docroot: string, parts: string[]): Promise<{ status: number; message: string; why: string }> {
  const root = await realpathAsync(docroot);
  const dir = [docroot, ...parts.slice(0, -1)].join('/');
  let realDir: string;
  try {
    realDir = await realpathAsync(dir);
  } catch (e) {
    return code(e) === 'ENOENT' ? { status: 404, message: '', why: 'no such file' } : { status: 400, message: errnoText(code(e)), why: String(e) };
  }
  // unlink removes a symlink itself, never its target; only the directory it sits in must be ours.
  if (!isInside(root, realDir)) return { status: 403, message: '', why: `${dir} resolves outside the docroot` };
  try {
    await unlinkAsync(`${realDir}/${parts[parts.length - 1]}`);
    return { status: 204, message: '', why: '' };
  } catch (e) {
    return code(e) === 'ENOENT' ? { status: 404, message: '', why: 'no such file' } : { status: 400, message: errnoText(code(e)), why: String(e) };
  }
}
