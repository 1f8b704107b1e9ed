// Tracks where a message body ends, for any framing. The proxy forwards body bytes as received; this only says
// how many of them belong to the current message, and whether it is complete.
import { ChunkState, decodeChunked, newChunkedDecoder, type ChunkedDecoder, type DataSink } from './chunked.ts';
import type { Framing } from './parser.ts';

export interface BodyReader {
  framing: Framing['kind'];
  /** For `length`: bytes still to come. */
  remaining: number;
  chunked: ChunkedDecoder | null;
  done: boolean;
  /** Body bytes seen so far (framing included for chunked). */
  received: number;
  error: string | null;
}

/** Chunk-extension and trailer bytes allowed per chunk line / trailer section. */
export const MAX_TRAILER_BYTES = 16 * 1024;

/** `hopByHop`: names the head's Connection field listed (lowercase), dropped from a trailer section too. */
export function newBodyReader(framing: Framing, hopByHop: string[] | null = null): BodyReader {
  switch (framing.kind) {
    case 'none':
      return { framing: 'none', remaining: 0, chunked: null, done: true, received: 0, error: null };
    case 'length':
      return { framing: 'length', remaining: framing.length, chunked: null, done: false, received: 0, error: null };
    case 'chunked': {
      const chunked = newChunkedDecoder(MAX_TRAILER_BYTES);
      chunked.hopByHop = hopByHop;
      return {
        framing: 'chunked',
        remaining: 0,
        chunked,
        done: false,
        received: 0,
        error: null,
      };
    }
    case 'close':
      return { framing: 'close', remaining: 0, chunked: null, done: false, received: 0, error: null };
  }
}

/**
 * Consumes body bytes from `buf[start, end)` and returns the offset where this message's body ends within it
 * (`end` if all of it belongs to the body), or -1 on a chunked framing error. `onData` receives de-chunked
 * payload ranges when given (only used to turn a chunked response into a close-delimited one).
 */
export function readBody(r: BodyReader, buf: Buffer, start: number, end: number, onData: DataSink | null): number {
  if (r.done) {
    if (r.chunked !== null) r.chunked.relayEnd = start;
    return start;
  }
  switch (r.framing) {
    case 'length': {
      const take = Math.min(r.remaining, end - start);
      r.remaining -= take;
      r.received += take;
      if (r.remaining === 0) r.done = true;
      if (onData !== null && take > 0) onData(buf, start, start + take);
      return start + take;
    }
    case 'chunked': {
      const d = r.chunked!;
      const stop = decodeChunked(d, buf, start, end, onData);
      if (stop === -1) {
        r.error = d.error;
        return -1;
      }
      r.received += stop - start;
      if (d.state === ChunkState.Done) r.done = true;
      return stop;
    }
    case 'close':
      r.received += end - start;
      if (onData !== null && end > start) onData(buf, start, end);
      return end;
    case 'none':
      return start;
  }
}

/**
 * After readBody returned `end` (not -1): the bytes to relay as they came are [start, relayEnd(r, end)). A chunked
 * trailer section after that is held back, and takeTrailer() gives it, filtered, once the body is done.
 */
export function relayEnd(r: BodyReader, end: number): number {
  return r.chunked === null ? end : r.chunked.relayEnd;
}

/** The filtered trailer section (then the final CRLF) to send after the relayed bytes, once; null if none. */
export function takeTrailer(r: BodyReader): Buffer | null {
  const d = r.chunked;
  if (d === null || d.trailerOut === null) return null;
  const out = d.trailerOut;
  d.trailerOut = null;
  return out;
}
