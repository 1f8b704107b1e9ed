// Incremental HTTP/2 frame splitting (RFC 9113 4.1), pure: bytes in as they arrive, whole frames out to a sink.
// A frame lying whole inside the chunk is handed over as a view of the chunk (no copy); one split across chunks is
// reassembled in a buffer reused from frame to frame. Frame semantics (which types, which streams) are the
// connection's business; this only checks the length against our SETTINGS_MAX_FRAME_SIZE and the client preface.
import { DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_SIZE } from './frame-writer.ts';

/** feedFrames results. */
export const FEED_OK = 0;
/** A frame longer than our max frame size: a connection error of type FRAME_SIZE_ERROR. */
export const FEED_FRAME_SIZE_ERROR = -1;
/** The client connection preface was wrong (RFC 9113 3.4: PROTOCOL_ERROR, or not HTTP/2 at all). */
export const FEED_BAD_PREFACE = -3;
/** The sink returned false: the reader accepts nothing more. */
export const FEED_STOPPED = -4;

export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Receives each frame. payload[start, end) is valid only during the call. Return false to stop reading. */
export interface FrameSink {
  frame(type: number, flags: number, streamId: number, payload: Buffer, start: number, end: number): boolean;
}

export interface FrameReader {
  maxFrameSize: number;
  /** Octets of the client preface still expected (0 when done or not expected). */
  prefaceLeft: number;
  /** The current frame's header as far as received (headerFill < 9), then its fields. */
  header: Buffer;
  headerFill: number;
  length: number;
  type: number;
  flags: number;
  streamId: number;
  /** Reassembly of a payload split across chunks. */
  payload: Buffer;
  payloadFill: number;
  /** The frame header is complete and its payload is being gathered. */
  inPayload: boolean;
  /** Once non-zero, the code every later feed returns. */
  failed: number;
}

export function newFrameReader(maxFrameSize = DEFAULT_MAX_FRAME_SIZE, options: { expectPreface?: boolean } = {}): FrameReader {
  return {
    maxFrameSize,
    prefaceLeft: options.expectPreface === true ? CLIENT_PREFACE.length : 0,
    header: Buffer.alloc(FRAME_HEADER_SIZE),
    headerFill: 0,
    length: 0,
    type: 0,
    flags: 0,
    streamId: 0,
    payload: Buffer.alloc(0),
    payloadFill: 0,
    inPayload: false,
    failed: 0,
  };
}

/** Our SETTINGS_MAX_FRAME_SIZE changed (after the peer acknowledged it). */
export function setReaderMaxFrameSize(r: FrameReader, maxFrameSize: number): void {
  r.maxFrameSize = maxFrameSize;
}

/**
 * Splits `chunk` (appended to what came before) into frames, calling sink.frame for each whole one. Returns FEED_OK,
 * FEED_FRAME_SIZE_ERROR, FEED_BAD_PREFACE or FEED_STOPPED; after anything but FEED_OK the reader is done.
 */
export function feedFrames(r: FrameReader, chunk: Buffer, sink: FrameSink): number {
  if (r.failed !== 0) return r.failed;
  let pos = 0;
  const end = chunk.length;
  if (r.prefaceLeft > 0) {
    const offset = CLIENT_PREFACE.length - r.prefaceLeft;
    const n = Math.min(r.prefaceLeft, end);
    for (let i = 0; i < n; i++) {
      if (chunk[i] !== CLIENT_PREFACE[offset + i]) return (r.failed = FEED_BAD_PREFACE);
    }
    r.prefaceLeft -= n;
    pos = n;
  }
  while (pos < end) {
    if (!r.inPayload) {
      if (r.headerFill === 0 && end - pos >= FRAME_HEADER_SIZE) {
        // The common case: the header is whole in the chunk.
        r.length = (chunk[pos]! << 16) | (chunk[pos + 1]! << 8) | chunk[pos + 2]!;
        r.type = chunk[pos + 3]!;
        r.flags = chunk[pos + 4]!;
        r.streamId = ((chunk[pos + 5]! & 0x7f) * 0x1000000) + ((chunk[pos + 6]! << 16) | (chunk[pos + 7]! << 8) | chunk[pos + 8]!);
        pos += FRAME_HEADER_SIZE;
      } else {
        const n = Math.min(FRAME_HEADER_SIZE - r.headerFill, end - pos);
        chunk.copy(r.header, r.headerFill, pos, pos + n);
        r.headerFill += n;
        pos += n;
        if (r.headerFill < FRAME_HEADER_SIZE) return FEED_OK;
        const h = r.header;
        r.length = (h[0]! << 16) | (h[1]! << 8) | h[2]!;
        r.type = h[3]!;
        r.flags = h[4]!;
        r.streamId = ((h[5]! & 0x7f) * 0x1000000) + ((h[6]! << 16) | (h[7]! << 8) | h[8]!);
        r.headerFill = 0;
      }
      if (r.length > r.maxFrameSize) return (r.failed = FEED_FRAME_SIZE_ERROR);
      if (end - pos >= r.length) {
        const payloadEnd = pos + r.length;
        const more = sink.frame(r.type, r.flags, r.streamId, chunk, pos, payloadEnd);
        pos = payloadEnd;
        if (!more) return (r.failed = FEED_STOPPED);
        continue;
      }
      r.inPayload = true;
      r.payloadFill = 0;
      if (r.payload.length < r.length) r.payload = Buffer.allocUnsafe(Math.max(r.length, Math.min(r.payload.length * 2, r.maxFrameSize)));
    }
    const n = Math.min(r.length - r.payloadFill, end - pos);
    chunk.copy(r.payload, r.payloadFill, pos, pos + n);
    r.payloadFill += n;
    pos += n;
    if (r.payloadFill < r.length) return FEED_OK;
    r.inPayload = false;
    if (!sink.frame(r.type, r.flags, r.streamId, r.payload, 0, r.length)) return (r.failed = FEED_STOPPED);
  }
  return FEED_OK;
}
