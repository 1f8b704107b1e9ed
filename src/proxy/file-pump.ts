// Sends a byte range of an open file to a client socket, one 64 KiB read at a time, waiting for 'drain' when the
// socket's buffer is full, so a large file never sits in memory. web_server files, concatenated files and
// reproxied files all go out through it; the caller owns the descriptor and the exchange's bookkeeping.
import { read } from 'node:fs';
import type { Socket } from 'node:net';

const CHUNK = 64 * 1024;

/** What the pump reports to the code that owns the response. */
export interface FilePumpHandler {
  /** True when the client went away or the send was aborted: the pump stops without touching the socket. */
  stopped(): boolean;
  /** `n` more bytes were handed to the socket (the caller moves its idle deadline and counts them). */
  sent(n: number): void;
  /** The whole range was handed to the socket. */
  finished(): void;
  /** A read failed or the file ended before the range did: the response cannot be completed. */
  failed(reason: string): void;
}

/** Writes `length` bytes of `fd` from `pos` to `socket`. */
export function pumpFile(socket: Socket, fd: number, pos: number, length: number, handler: FilePumpHandler): void {
  if (length <= 0) {
    handler.finished();
    return;
  }
  const n = Math.min(CHUNK, length);
  read(fd, Buffer.allocUnsafe(n), 0, n, pos, (err, got, buf) => {
    if (handler.stopped()) return;
    if (err !== null || got === 0) {
      handler.failed(err?.message ?? 'file shorter than its Content-Length');
      return;
    }
    handler.sent(got);
    const next = (): void => pumpFile(socket, fd, pos + got, length - got, handler);
    if (socket.write(got === buf.length ? buf : buf.subarray(0, got))) next();
    else socket.once('drain', next);
  });
}
