// HTTP/2 frame writing (RFC 9113 4 and 6), pure: constants, and writers either into a caller's buffer (the hot
// path: HEADERS and DATA headers next to the bytes they frame) or returning small Buffers for rare control frames.

export const FRAME_HEADER_SIZE = 9;
export const DEFAULT_MAX_FRAME_SIZE = 16384;
export const MAX_ALLOWED_FRAME_SIZE = 16777215;
export const MAX_WINDOW_INCREMENT = 0x7fffffff;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FrameFlag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export const SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
  ENABLE_CONNECT_PROTOCOL: 0x8,
} as const;

/** Writes a 9-octet frame header at offset; returns offset + 9. */
export function writeFrameHeader(out: Uint8Array, offset: number, length: number, type: number, flags: number, streamId: number): number {
  out[offset] = (length >>> 16) & 0xff;
  out[offset + 1] = (length >>> 8) & 0xff;
  out[offset + 2] = length & 0xff;
  out[offset + 3] = type;
  out[offset + 4] = flags;
  out[offset + 5] = (streamId >>> 24) & 0x7f;
  out[offset + 6] = (streamId >>> 16) & 0xff;
  out[offset + 7] = (streamId >>> 8) & 0xff;
  out[offset + 8] = streamId & 0xff;
  return offset + FRAME_HEADER_SIZE;
}

function writeUint32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = (value >>> 24) & 0xff;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

/** A SETTINGS frame carrying `settings` (flat id, value, id, value...). */
export function settingsFrame(settings: readonly number[]): Buffer {
  const count = settings.length >>> 1;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + count * 6);
  writeFrameHeader(frame, 0, count * 6, FrameType.SETTINGS, 0, 0);
  for (let i = 0; i < count; i++) {
    const at = FRAME_HEADER_SIZE + i * 6;
    const id = settings[i * 2]!;
    frame[at] = (id >>> 8) & 0xff;
    frame[at + 1] = id & 0xff;
    writeUint32(frame, at + 2, settings[i * 2 + 1]!);
  }
  return frame;
}

/** SETTINGS with ACK, empty. */
export function settingsAckFrame(): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  writeFrameHeader(frame, 0, 0, FrameType.SETTINGS, FrameFlag.ACK, 0);
  return frame;
}

/** PING with ACK echoing the 8 octets of the received PING at payload[start, start + 8). */
export function pingAckFrame(payload: Uint8Array, start: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 8);
  writeFrameHeader(frame, 0, 8, FrameType.PING, FrameFlag.ACK, 0);
  frame.set(payload.subarray(start, start + 8), FRAME_HEADER_SIZE);
  return frame;
}

/** GOAWAY with the last stream id processed, an error code and optional debug text (latin1). */
export function goawayFrame(lastStreamId: number, errorCode: number, debug = ''): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 8 + debug.length);
  writeFrameHeader(frame, 0, 8 + debug.length, FrameType.GOAWAY, 0, 0);
  writeUint32(frame, FRAME_HEADER_SIZE, lastStreamId & 0x7fffffff);
  writeUint32(frame, FRAME_HEADER_SIZE + 4, errorCode);
  if (debug.length > 0) frame.write(debug, FRAME_HEADER_SIZE + 8, 'latin1');
  return frame;
}

/** RST_STREAM for `streamId` with an error code. */
export function rstStreamFrame(streamId: number, errorCode: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 4);
  writeRstStream(frame, 0, streamId, errorCode);
  return frame;
}

/** RST_STREAM into out at offset; returns offset + 13. */
export function writeRstStream(out: Uint8Array, offset: number, streamId: number, errorCode: number): number {
  writeFrameHeader(out, offset, 4, FrameType.RST_STREAM, 0, streamId);
  writeUint32(out, offset + FRAME_HEADER_SIZE, errorCode);
  return offset + FRAME_HEADER_SIZE + 4;
}

/** WINDOW_UPDATE for `streamId` (0: the connection) by `increment` (1..2^31-1). */
export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 4);
  writeWindowUpdate(frame, 0, streamId, increment);
  return frame;
}

/** WINDOW_UPDATE into out at offset; returns offset + 13. */
export function writeWindowUpdate(out: Uint8Array, offset: number, streamId: number, increment: number): number {
  writeFrameHeader(out, offset, 4, FrameType.WINDOW_UPDATE, 0, streamId);
  writeUint32(out, offset + FRAME_HEADER_SIZE, increment & 0x7fffffff);
  return offset + FRAME_HEADER_SIZE + 4;
}

/** The 9-octet header of a DATA frame whose `length` payload octets the caller writes right after. */
export function writeDataHeader(out: Uint8Array, offset: number, length: number, streamId: number, endStream: boolean): number {
  return writeFrameHeader(out, offset, length, FrameType.DATA, endStream ? FrameFlag.END_STREAM : 0, streamId);
}

/** A DATA frame header as its own Buffer (for a payload written separately). */
export function dataFrameHeader(length: number, streamId: number, endStream: boolean): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  writeDataHeader(header, 0, length, streamId, endStream);
  return header;
}

/** Octets a header block of `blockLength` takes once framed as HEADERS + CONTINUATION frames of at most maxFrameSize. */
export function headersFramesSize(blockLength: number, maxFrameSize: number): number {
  const frames = blockLength === 0 ? 1 : Math.ceil(blockLength / maxFrameSize);
  return blockLength + frames * FRAME_HEADER_SIZE;
}

/**
 * Frames the header block block[start, end) as HEADERS (+ CONTINUATION frames when longer than the peer's
 * maxFrameSize) into out at offset. END_STREAM goes on the HEADERS frame, END_HEADERS on the last frame
 * (RFC 9113 6.2, 6.10). Returns the new offset, or -1 if out has fewer than headersFramesSize(...) octets left.
 */
export function writeHeadersFrames(
  out: Uint8Array, offset: number, streamId: number, block: Uint8Array, start: number, end: number, endStream: boolean, maxFrameSize: number,
): number {
  const length = end - start;
  if (out.length - offset < headersFramesSize(length, maxFrameSize)) return -1;
  let pos = offset;
  let at = start;
  let type: number = FrameType.HEADERS;
  let flags: number = endStream ? FrameFlag.END_STREAM : 0;
  for (;;) {
    const chunk = Math.min(maxFrameSize, end - at);
    const last = at + chunk === end;
    pos = writeFrameHeader(out, pos, chunk, type, last ? flags | FrameFlag.END_HEADERS : flags, streamId);
    out.set(block.subarray(at, at + chunk), pos);
    pos += chunk;
    at += chunk;
    if (last) return pos;
    type = FrameType.CONTINUATION;
    flags = 0;
  }
}

/**
 * Frames in place a header block the caller encoded at out[offset + 9, offset + 9 + blockLength) (9 octets left
 * free before it for the HEADERS frame header): no copy when it fits one frame; otherwise the tail is moved to make
 * room for the CONTINUATION headers. Returns the end offset, or -1 when out is too short for the extra headers.
 */
export function frameHeadersInPlace(out: Uint8Array, offset: number, blockLength: number, streamId: number, endStream: boolean, maxFrameSize: number): number {
  const flags = endStream ? FrameFlag.END_STREAM : 0;
  if (blockLength <= maxFrameSize) {
    writeFrameHeader(out, offset, blockLength, FrameType.HEADERS, flags | FrameFlag.END_HEADERS, streamId);
    return offset + FRAME_HEADER_SIZE + blockLength;
  }
  const total = headersFramesSize(blockLength, maxFrameSize);
  if (out.length - offset < total) return -1;
  // Move the chunks from the last to the second into their places, then write the headers.
  const blockStart = offset + FRAME_HEADER_SIZE;
  const frames = Math.ceil(blockLength / maxFrameSize);
  for (let k = frames - 1; k >= 1; k--) {
    const from = blockStart + k * maxFrameSize;
    const chunk = Math.min(maxFrameSize, blockLength - k * maxFrameSize);
    const to = offset + k * (FRAME_HEADER_SIZE + maxFrameSize) + FRAME_HEADER_SIZE;
    out.copyWithin(to, from, from + chunk);
    writeFrameHeader(out, to - FRAME_HEADER_SIZE, chunk, FrameType.CONTINUATION, k === frames - 1 ? FrameFlag.END_HEADERS : 0, streamId);
  }
  writeFrameHeader(out, offset, maxFrameSize, FrameType.HEADERS, flags, streamId);
  return offset + total;
}
