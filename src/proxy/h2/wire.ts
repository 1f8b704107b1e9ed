// HTTP/2 frame constants (RFC 9113 section 6 and 11) and the small control frames a server sends, each built as one
// Buffer. Pure.

export const FRAME = {
  DATA: 0x0, HEADERS: 0x1, PRIORITY: 0x2, RST_STREAM: 0x3, SETTINGS: 0x4, PUSH_PROMISE: 0x5, PING: 0x6, GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8, CONTINUATION: 0x9,
} as const;

export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export const ERR = {
  NO_ERROR: 0x0, PROTOCOL_ERROR: 0x1, INTERNAL_ERROR: 0x2, FLOW_CONTROL_ERROR: 0x3, SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5, FRAME_SIZE_ERROR: 0x6, REFUSED_STREAM: 0x7, CANCEL: 0x8, COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa, ENHANCE_YOUR_CALM: 0xb, INADEQUATE_SECURITY: 0xc, HTTP_1_1_REQUIRED: 0xd,
} as const;

export const SETTING = {
  HEADER_TABLE_SIZE: 0x1, ENABLE_PUSH: 0x2, MAX_CONCURRENT_STREAMS: 0x3, INITIAL_WINDOW_SIZE: 0x4, MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** Writes a 9-byte frame head at `at` of `out`. */
export function writeFrameHead(out: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  out[at] = length >>> 16;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(streamId, at + 5);
}

export function frameHead(length: number, type: number, flags: number, streamId: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  writeFrameHead(b, 0, length, type, flags, streamId);
  return b;
}

/** SETTINGS from (id, value) pairs. */
export function settingsFrame(pairs: number[]): Buffer {
  const b = Buffer.allocUnsafe(9 + pairs.length * 3);
  writeFrameHead(b, 0, pairs.length * 3, FRAME.SETTINGS, 0, 0);
  for (let i = 0, at = 9; i < pairs.length; i += 2, at += 6) {
    b.writeUInt16BE(pairs[i]!, at);
    b.writeUInt32BE(pairs[i + 1]!, at + 2);
  }
  return b;
}

const SETTINGS_ACK = frameHead(0, FRAME.SETTINGS, FLAG.ACK, 0);

export function settingsAck(): Buffer {
  return SETTINGS_ACK;
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  writeFrameHead(b, 0, 4, FRAME.WINDOW_UPDATE, 0, streamId);
  b.writeUInt32BE(increment, 9);
  return b;
}

export function rstFrame(streamId: number, code: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  writeFrameHead(b, 0, 4, FRAME.RST_STREAM, 0, streamId);
  b.writeUInt32BE(code, 9);
  return b;
}

export function goawayFrame(lastStreamId: number, code: number): Buffer {
  const b = Buffer.allocUnsafe(17);
  writeFrameHead(b, 0, 8, FRAME.GOAWAY, 0, 0);
  b.writeUInt32BE(lastStreamId, 9);
  b.writeUInt32BE(code, 13);
  return b;
}
