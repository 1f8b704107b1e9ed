// Incremental validator/decoder for the chunked transfer coding (RFC 9112 7.1), byte-driven so it works on any
// split of the input. The proxy relays chunked bodies as they came (framing included) once they validate, so the
// bytes a backend reads are exactly the bytes whose framing we checked; `onData` is only used to de-chunk (for
// HTTP/1.0 clients, and to re-frame a lenient backend's body). A trailer section is held back instead of relayed
// and handed over filtered (trailers.ts) once complete: see `relayEnd` and `trailerOut`.
import { filterTrailerSection } from './trailers.ts';

export const ChunkState = {
  Size: 0,
  SizeWs: 1,
  Ext: 2,
  SizeLf: 3,
  Data: 4,
  DataCr: 5,
  DataLf: 6,
  TrailerLineStart: 7,
  TrailerLine: 8,
  TrailerLf: 9,
  FinalLf: 10,
  Done: 11,
  Error: 12,
} as const;
export type ChunkState = (typeof ChunkState)[keyof typeof ChunkState];

export interface ChunkedDecoder {
  state: ChunkState;
  /** Remaining bytes of the current chunk's data (or the size being accumulated, in Size). */
  remaining: number;
  sizeDigits: number;
  /** Bytes in the current trailer section, capped. */
  trailerBytes: number;
  maxTrailerBytes: number;
  /** In a trailer line: the colon after the field name was seen. */
  trailerColon: boolean;
  error: string | null;
  /**
   * Accept a bare LF where CRLF ends a framing line (HAProxy and nginx do, in responses). Such bytes must not be
   * relayed as they are: the caller de-chunks (`onData`) and frames the body again.
   */
  lenientLf: boolean;
  /** Of the bytes the last decodeChunked call consumed, those before this offset are relayed as they came. */
  relayEnd: number;
  /** Once Done after a trailer section: the filtered section (ending with the final CRLF) to send instead. */
  trailerOut: Buffer | null;
  /** Names the message head's Connection field listed (lowercase): dropped from the trailers too. */
  hopByHop: string[] | null;
  /** The trailer section received so far (held back from the relay). */
  held: Buffer[] | null;
  /** Where in the current buffer the held trailer section started, set by the decode loop. */
  heldFrom: number;
}

/** Sizes above 2^48 cannot be real and would lose precision; 12 hex digits is the cap. */
const MAX_SIZE_DIGITS = 12;

export function newChunkedDecoder(maxTrailerBytes: number): ChunkedDecoder {
  return {
    state: ChunkState.Size,
    remaining: 0,
    sizeDigits: 0,
    trailerBytes: 0,
    maxTrailerBytes,
    trailerColon: false,
    error: null,
    lenientLf: false,
    relayEnd: 0,
    trailerOut: null,
    hopByHop: null,
    held: null,
    heldFrom: -1,
  };
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** Field-content bytes allowed in chunk extensions and trailer lines: VCHAR, obs-text, SP, HTAB. */
function isFieldByte(c: number): boolean {
  return c === 0x09 || (c >= 0x20 && c !== 0x7f);
}

const TOKEN_BYTES = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  TOKEN_BYTES[c.charCodeAt(0)] = 1;
}

function isTokenByte(c: number): boolean {
  return c < 128 && TOKEN_BYTES[c] === 1;
}

export type DataSink = (buf: Buffer, start: number, end: number) => void;

function failChunked(d: ChunkedDecoder, why: string): number {
  d.state = ChunkState.Error;
  d.error = why;
  return -1;
}

/**
 * Consumes `buf[start, end)`. Returns the offset just past the last byte that belongs to the chunked body
 * (== end unless the body finished inside this buffer), or -1 on a framing error (`d.error` says why).
 * `d.state === ChunkState.Done` once the final CRLF was read. Relay `buf[start, d.relayEnd)` as it came; a trailer
 * section from `d.relayEnd` on is held, and `d.trailerOut` replaces it once Done.
 */
export function decodeChunked(
  d: ChunkedDecoder,
  buf: Buffer,
  start: number,
  end: number,
  onData: DataSink | null,
): number {
  const wasHolding = d.held !== null;
  const stop = decode(d, buf, start, end, onData);
  if (d.held === null) {
    d.relayEnd = stop === -1 ? start : stop;
    return stop;
  }
  const from = wasHolding ? start : d.heldFrom;
  d.relayEnd = from;
  if (stop === -1) return -1;
  // A copy: a backend's bytes sit in a read buffer the next read overwrites.
  d.held.push(Buffer.from(buf.subarray(from, stop)));
  if (d.state === ChunkState.Done) {
    d.trailerOut = filterTrailerSection(Buffer.concat(d.held), d.hopByHop);
    d.held = null;
  }
  return stop;
}

/** After the LF that ends a chunk-size line. */
function sizeLineDone(d: ChunkedDecoder): void {
  d.sizeDigits = 0;
  d.trailerBytes = 0;
  d.state = d.remaining === 0 ? ChunkState.TrailerLineStart : ChunkState.Data;
}

function decode(d: ChunkedDecoder, buf: Buffer, start: number, end: number, onData: DataSink | null): number {
  let i = start;
  while (i < end) {
    switch (d.state) {
      case ChunkState.Data: {
        const take = Math.min(d.remaining, end - i);
        if (onData !== null) onData(buf, i, i + take);
        i += take;
        d.remaining -= take;
        if (d.remaining === 0) d.state = ChunkState.DataCr;
        break;
      }
      case ChunkState.Size: {
        const c = buf[i]!;
        const h = hexValue(c);
        if (h !== -1) {
          if (++d.sizeDigits > MAX_SIZE_DIGITS) return failChunked(d, 'chunk size too large');
          d.remaining = d.remaining * 16 + h;
          i++;
          break;
        }
        if (d.sizeDigits === 0) return failChunked(d, 'invalid chunk size');
        if (c === 0x0a && d.lenientLf) sizeLineDone(d);
        else if (c === 0x0d) d.state = ChunkState.SizeLf;
        else if (c === 0x3b) d.state = ChunkState.Ext;
        else if (c === 0x20 || c === 0x09) d.state = ChunkState.SizeWs;
        else return failChunked(d, 'invalid chunk size');
        i++;
        break;
      }
      case ChunkState.SizeWs: {
        // BWS is only allowed before a chunk extension.
        const c = buf[i]!;
        if (c === 0x3b) d.state = ChunkState.Ext;
        else if (c !== 0x20 && c !== 0x09) return failChunked(d, 'invalid chunk size');
        i++;
        break;
      }
      case ChunkState.Ext: {
        const c = buf[i]!;
        if (c === 0x0d) d.state = ChunkState.SizeLf;
        else if (c === 0x0a && d.lenientLf) sizeLineDone(d);
        else if (!isFieldByte(c)) return failChunked(d, 'invalid byte in chunk extension');
        // The extension is part of the chunk-size line, which counts against the trailer/line cap.
        if (++d.trailerBytes > d.maxTrailerBytes) return failChunked(d, 'chunk extension too long');
        i++;
        break;
      }
      case ChunkState.SizeLf: {
        if (buf[i] !== 0x0a) return failChunked(d, 'bare CR in chunk size line');
        i++;
        sizeLineDone(d);
        break;
      }
      case ChunkState.DataCr:
        if (buf[i] === 0x0a && d.lenientLf) d.state = ChunkState.Size;
        else if (buf[i] !== 0x0d) return failChunked(d, 'chunk data longer than its size');
        else d.state = ChunkState.DataLf;
        i++;
        break;
      case ChunkState.DataLf:
        if (buf[i] !== 0x0a) return failChunked(d, 'chunk data not followed by CRLF');
        d.state = ChunkState.Size;
        i++;
        break;
      case ChunkState.TrailerLineStart: {
        const c = buf[i]!;
        if (c === 0x0d) {
          d.state = ChunkState.FinalLf;
        } else if (c === 0x0a && d.lenientLf) {
          d.state = ChunkState.Done;
          return i + 1;
        } else if (c === 0x20 || c === 0x09) {
          return failChunked(d, 'obs-fold in trailer');
        } else if (!isTokenByte(c)) {
          return failChunked(d, 'invalid trailer field name');
        } else {
          d.state = ChunkState.TrailerLine;
          d.trailerColon = false;
          if (d.held === null) {
            // A trailer field: hold the section back from here, to forward it filtered.
            d.held = [];
            d.heldFrom = i;
          }
        }
        if (++d.trailerBytes > d.maxTrailerBytes) return failChunked(d, 'trailer section too large');
        i++;
        break;
      }
      case ChunkState.TrailerLine: {
        const c = buf[i]!;
        if (c === 0x0d || (c === 0x0a && d.lenientLf)) {
          if (!d.trailerColon) return failChunked(d, 'trailer line without a colon');
          d.state = c === 0x0d ? ChunkState.TrailerLf : ChunkState.TrailerLineStart;
        } else if (d.trailerColon) {
          if (!isFieldByte(c)) return failChunked(d, 'invalid byte in trailer');
        } else if (c === 0x3a) {
          d.trailerColon = true;
        } else if (!isTokenByte(c)) {
          return failChunked(d, 'invalid trailer field name');
        }
        if (++d.trailerBytes > d.maxTrailerBytes) return failChunked(d, 'trailer section too large');
        i++;
        break;
      }
      case ChunkState.TrailerLf:
        if (buf[i] !== 0x0a) return failChunked(d, 'bare CR in trailer');
        d.state = ChunkState.TrailerLineStart;
        i++;
        break;
      case ChunkState.FinalLf:
        if (buf[i] !== 0x0a) return failChunked(d, 'bare CR after the last chunk');
        d.state = ChunkState.Done;
        return i + 1;
      case ChunkState.Done:
        return i;
      case ChunkState.Error:
        return -1;
    }
  }
  return i;
}
