// Buffered uploads (Perlbal's buffer_backend_connect and buffer_uploads): whether a request body is held before a
// backend is asked for, whether it goes to a spool file, and that file's I/O. The decision is pure (decideAtHead,
// decideAfterRead) and follows ClientProxy.pm's start_buffering_request and decide_to_buffer_to_disk.
import { closeSync, openSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { decodeChunked, newChunkedDecoder, type ChunkedDecoder, type DataSink } from './http/chunked.ts';
import { MAX_TRAILER_BYTES } from './http/body.ts';

export interface UploadPolicy {
  /** Body bytes read into memory before a backend is asked for (0: at once). */
  bufferBackendConnect: number;
  bufferUploads: boolean;
  /** Directory of spool files (set whenever bufferUploads is). */
  path: string;
  /** Spool when Content-Length is at least this (0: off). */
  thresholdSize: number;
  /** Spool when the client sends slower than this, bytes per second (0: off). */
  thresholdRate: number;
  /** Spool when the rest of the body would take longer than this, ms (0: off). */
  thresholdTimeMs: number;
}

export type SpoolReason = 'size' | 'chunked' | 'rate' | 'time';

/** At the head: a body known to be large (or chunked, whose size is unknown) goes to disk from its first byte. */
export function decideAtHead(p: UploadPolicy, framing: string, length: number): SpoolReason | null {
  if (!p.bufferUploads) return null;
  if (framing === 'chunked') return 'chunked';
  if (framing === 'length' && p.thresholdSize > 0 && length >= p.thresholdSize) return 'size';
  return null;
}

export type ReadDecision = { kind: 'wait' } | { kind: 'dispatch' } | { kind: 'spool'; reason: SpoolReason };

/**
 * After a read of body bytes with no backend asked for yet: keep reading into memory until buffer_backend_connect
 * bytes are in (or the body is complete), then either spool the rest (too slow by rate or estimated time) or ask
 * for a backend. The rate is over the time since the head; a zero duration counts as one second, as Perlbal's
 * `tv_interval(...) || 1` does.
 */
export function decideAfterRead(p: UploadPolicy, received: number, remaining: number, done: boolean, elapsedMs: number): ReadDecision {
  if (done) return { kind: 'dispatch' };
  if (received < p.bufferBackendConnect) return { kind: 'wait' };
  if (!p.bufferUploads) return { kind: 'dispatch' };
  const seconds = elapsedMs > 0 ? elapsedMs / 1000 : 1;
  const rate = received / seconds;
  let reason: SpoolReason | null = null;
  if (p.thresholdRate > 0 && rate < p.thresholdRate) reason = 'rate';
  if (p.thresholdTimeMs > 0 && rate > 0 && (remaining / rate) * 1000 > p.thresholdTimeMs) reason = 'time';
  return reason === null ? { kind: 'dispatch' } : { kind: 'spool', reason };
}

/** One request body on disk. */
export interface Spool {
  path: string;
  fd: number;
  /** Bytes in the file (the payload alone when de-chunking). */
  bytes: number;
  /** A chunked body is stored de-chunked, as Perlbal does, and goes out with a Content-Length (lengthHead). */
  dechunk: ChunkedDecoder | null;
  sink: DataSink | null;
}

let spoolSeq = 0;
const SPOOL_NAME = /^tsbal-upload-(\d+)-\d+$/;

/** Whether a process with this pid exists (EPERM: it exists, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes the spool files a crashed or killed tsbal left in `dir`: ours by name, whose writer's pid no longer
 * runs. A live process's files (another worker, another tsbal sharing the directory) are never touched. Returns
 * the names removed; a directory that cannot be read is left to the first upload's error.
 */
export function removeStaleSpools(dir: string, alive: (pid: number) => boolean = pidAlive): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = SPOOL_NAME.exec(name);
    if (m === null || alive(Number(m[1]))) continue;
    try {
      unlinkSync(join(dir, name));
      removed.push(name);
    } catch {
      // Removed meanwhile, or not ours to remove: nothing to do.
    }
  }
  return removed;
}

/**
 * Opens a new spool file (exclusive, owner-only). Writes are synchronous on purpose: an error such as ENOSPC is
 * known at once, before anything could go to a backend. Throws the fs error.
 */
export function openSpool(dir: string, dechunk: boolean): Spool {
  const path = join(dir, `tsbal-upload-${process.pid}-${++spoolSeq}`);
  const s: Spool = { path, fd: openSync(path, 'wx', 0o600), bytes: 0, dechunk: null, sink: null };
  if (dechunk) {
    s.dechunk = newChunkedDecoder(MAX_TRAILER_BYTES);
    s.sink = (b, start, end) => writeRange(s, b, start, end);
  }
  return s;
}

function writeRange(s: Spool, data: Buffer, start: number, end: number): void {
  let off = start;
  while (off < end) off += writeSync(s.fd, data, off, end - off);
  s.bytes += end - start;
}

/**
 * Appends the body bytes as received (framing already checked by the client's reader); a chunked body is decoded
 * on the way, its trailers dropped. Throws the fs error (ENOSPC, EIO).
 */
export function writeSpool(s: Spool, data: Buffer): void {
  if (s.dechunk === null) writeRange(s, data, 0, data.length);
  else decodeChunked(s.dechunk, data, 0, data.length, s.sink);
}

const TE_LINE = /\r\nTransfer-Encoding:[^\r]*\r\n/i;
const EXPECT_LINE = /\r\nExpect:[^\r]*\r\n/i;

/**
 * The backend head of a de-chunked spooled body: `Transfer-Encoding` becomes `Content-Length: <bytes>` and
 * `Expect` goes (tsbal answered it), as Perlbal does. The head came from our own writer: one line of each at most.
 */
export function lengthHead(head: Buffer, bytes: number): Buffer {
  const text = head.toString('latin1').replace(TE_LINE, `\r\nContent-Length: ${bytes}\r\n`).replace(EXPECT_LINE, '\r\n');
  return Buffer.from(text, 'latin1');
}

/** Closes the descriptor (the file stays, for sending); idempotent. */
export function closeSpoolFd(s: Spool): void {
  if (s.fd === -1) return;
  try {
    closeSync(s.fd);
  } catch {
    // Closing an fd we opened cannot fail in a way that matters here.
  }
  s.fd = -1;
}

/** Closes and deletes the file; idempotent. */
export function removeSpool(s: Spool): void {
  closeSpoolFd(s);
  try {
    unlinkSync(s.path);
  } catch {
    // Already gone.
  }
}

/** `ENOSPC (no space left on device)` from an fs error, for the one log line. */
export function spoolErrorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOSPC') return 'ENOSPC (no space left on device)';
  if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS') return `${err.code} (not writable)`;
  if (err.code === 'ENOENT') return 'ENOENT (directory does not exist)';
  return err.code ?? String(err.message ?? e);
}
