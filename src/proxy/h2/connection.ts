// One HTTP/2 server connection (RFC 9113) as a pure state machine: bytes from the client go in (feedConnection),
// frames for the client come out (takeOutput), and what the streams carry is reported through one handler interface
// (H2Handler). No sockets, no timers: session.ts is the I/O around it. The output side (responses, flow control
// windows, DATA frame splitting) is in output.ts; this file reads frames and keeps the streams' states.
import { decodeHeaderBlock, newHpackDecoder, type HpackDecoder } from './hpack.ts';
import { CLIENT_PREFACE, FEED_BAD_PREFACE, FEED_FRAME_SIZE_ERROR, feedFrames, newFrameReader, type FrameReader, type FrameSink } from './frame-reader.ts';
import { newHpackEncoder, setEncoderLimit, type HpackEncoder } from './hpack-encoder.ts';
import { newClosedStreams, noteOpened, noteResetByUs, wasResetByUs, wasSkipped, type ClosedStreams } from './closed-streams.ts';
import { malformedTrailers } from './translate.ts';
import {
  ErrorCode as ERR, FrameFlag as FLAG, FrameType as FRAME, SettingId as SETTING, goawayFrame, pingAckFrame, rstStreamFrame, settingsAckFrame, settingsFrame, windowUpdateFrame,
} from './frame-writer.ts';

export { CLIENT_PREFACE };

export interface H2Settings {
  maxConcurrentStreams: number;
  maxHeaderListSize: number;
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: what a client may send on one stream before we acknowledge it. */
  streamWindow: number;
  /** The connection's receive window (raised from 65535 by a WINDOW_UPDATE right after our SETTINGS). */
  connectionWindow: number;
}

export const DEFAULT_STREAM_WINDOW = 1 << 20;
export const DEFAULT_CONNECTION_WINDOW = 16 << 20;
const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 0x7fffffff;
/** Streams taken at once before the client acknowledged our SETTINGS (RFC 9113 6.5.2 suggests no limit below 100). */
const PRE_ACK_STREAMS = 100;

export type StreamState = 'open' | 'half-closed-remote' | 'half-closed-local' | 'closed';

export interface H2Stream {
  id: number;
  state: StreamState;
  /** What we may still send (the client's window for this stream). */
  sendWindow: number;
  /** What the client may still send before our next WINDOW_UPDATE. */
  recvWindow: number;
  /** Bytes the glue has consumed but we have not credited back yet. */
  unacked: number;
  /** Request body bytes still announced by content-length, or -1. */
  bodyLeft: number;
  /** Response DATA waiting for window or for the next flush. */
  pending: Buffer[];
  pendingBytes: number;
  /** END_STREAM goes with the last pending byte. */
  pendingEnd: boolean;
  /** HEADERS went out (or are queued). */
  responded: boolean;
  /** Said by the glue: pending output above the mark made a write return false; 'drain' follows. */
  wantsDrain: boolean;
  /** The glue's own record for this stream. */
  user: unknown;
}

export interface H2Handler {
  /**
   * A request's HEADERS. `fields`: flat name,value list, valid during this call only; null when its header list is
   * over the limit.
   */
  request(conn: H2Connection, st: H2Stream, fields: string[] | null, endStream: boolean): void;
  /** Request body bytes (padding removed); endStream with the last. */
  data(conn: H2Connection, st: H2Stream, buf: Buffer, start: number, end: number, endStream: boolean): void;
  /** Request trailers (the stream's end); `fields` valid during this call only. */
  trailers(conn: H2Connection, st: H2Stream, fields: string[]): void;
  /** The stream is over: `code` -1 when both sides ended it, else the RST_STREAM code; byPeer: the client reset it. */
  closed(conn: H2Connection, st: H2Stream, code: number, byPeer: boolean): void;
  /** The stream's queued response went under the mark after a write was refused. */
  drain(conn: H2Connection, st: H2Stream): void;
  /** Frames were queued while none were: flush soon. */
  wantFlush(conn: H2Connection): void;
}

export interface H2Connection {
  settings: H2Settings;
  handler: H2Handler;
  /** 'preface': waiting for the client preface; 'closing': GOAWAY sent or received, no new streams; 'closed': dead. */
  phase: 'preface' | 'open' | 'closing' | 'closed';
  /** Set on a connection error: the GOAWAY code (the glue closes after flushing). */
  error: number;
  streams: Map<number, H2Stream>;
  /** Highest stream id the client opened (for GOAWAY and id order). */
  lastStreamId: number;
  /** Which ids below lastStreamId were skipped, and which we reset: what a late frame on one of them gets. */
  closedStreams: ClosedStreams;
  /** The last stream id our GOAWAY named (-1: none sent): frames on streams past it are ignored (RFC 9113 6.8). */
  goawayLastId: number;
  /** Streams open that count against MAX_CONCURRENT_STREAMS. */
  active: number;
  peerInitialWindow: number;
  peerMaxFrame: number;
  sendWindow: number;
  recvWindow: number;
  recvUnacked: number;
  decoder: HpackDecoder;
  encoder: HpackEncoder;
  /** Frames ready for the socket. */
  out: Buffer[];
  outBytes: number;
  /** Streams with pending DATA, in the order they asked. */
  sendQueue: H2Stream[];
  /** Splits the client's bytes into frames (checks the preface and our max frame size, 16384). */
  reader: FrameReader;
  sink: FrameSink;
  /** HEADERS without END_HEADERS: the block so far, and what the HEADERS frame said. */
  headerBlock: { streamId: number; endStream: boolean; selfDependent: boolean; parts: Buffer[]; size: number } | null;
  /** The client acknowledged our SETTINGS: our limits are in force. */
  settingsAcked: boolean;
  /** The decoder's output list, reused for every header block. */
  fields: string[];
  /** The glue's own record for this connection. */
  owner: unknown;
}

export function newConnection(settings: H2Settings, handler: H2Handler, decoder: HpackDecoder = newHpackDecoder(), encoder: HpackEncoder = newHpackEncoder()): H2Connection {
  const conn: H2Connection = {
    settings, handler, phase: 'preface', error: 0, streams: new Map(), lastStreamId: 0, closedStreams: newClosedStreams(), goawayLastId: -1, active: 0,
    peerInitialWindow: DEFAULT_WINDOW, peerMaxFrame: 16_384, sendWindow: DEFAULT_WINDOW,
    recvWindow: settings.connectionWindow, recvUnacked: 0, decoder, encoder,
    out: [], outBytes: 0, sendQueue: [], reader: newFrameReader(16_384, { expectPreface: true }), sink: null as unknown as FrameSink, headerBlock: null, fields: [], owner: null, settingsAcked: false,
  };
  conn.sink = frameSink(conn);
  return conn;
}

/** Our SETTINGS and the connection window raise: the server preface, sent when the connection starts. */
export function startConnection(conn: H2Connection): void {
  const s = conn.settings;
  // The order nghttp prints them in (and tests read): ENABLE_PUSH, MAX_CONCURRENT_STREAMS, MAX_HEADER_LIST_SIZE.
  queue(conn, settingsFrame([
    SETTING.ENABLE_PUSH, 0,
    SETTING.MAX_CONCURRENT_STREAMS, s.maxConcurrentStreams,
    SETTING.MAX_HEADER_LIST_SIZE, s.maxHeaderListSize,
    SETTING.INITIAL_WINDOW_SIZE, s.streamWindow,
  ]));
  if (s.connectionWindow > DEFAULT_WINDOW) queue(conn, windowUpdateFrame(0, s.connectionWindow - DEFAULT_WINDOW));
}

/** Queues a frame for the socket. */
export function queue(conn: H2Connection, frame: Buffer): void {
  if (conn.phase === 'closed') return;
  if (conn.out.length === 0) conn.handler.wantFlush(conn);
  conn.out.push(frame);
  conn.outBytes += frame.length;
}

/** Bytes from the client. Frames are handled in order; a connection error stops reading (conn.error, GOAWAY queued). */
export function feedConnection(conn: H2Connection, chunk: Buffer): void {
  if (conn.phase === 'closed' || conn.error !== 0) return;
  const r = feedFrames(conn.reader, chunk, conn.sink);
  if (r === FEED_BAD_PREFACE) connectionError(conn, ERR.PROTOCOL_ERROR);
  else if (r === FEED_FRAME_SIZE_ERROR) connectionError(conn, ERR.FRAME_SIZE_ERROR);
}

/** The frame reader's sink for `conn`: each frame in turn, until a connection error. */
function frameSink(conn: H2Connection): FrameSink {
  return {
    frame(type, flags, streamId, payload, start, end) {
      if (conn.phase === 'preface') {
        // The client's preface ends with its SETTINGS (RFC 9113 3.4): anything else first is a connection error.
        if (type !== FRAME.SETTINGS) {
          connectionError(conn, ERR.PROTOCOL_ERROR);
          return false;
        }
        conn.phase = 'open';
      }
      onFrame(conn, type, flags, streamId, payload, start, end);
      return conn.error === 0;
    },
  };
}

function onFrame(conn: H2Connection, type: number, flags: number, id: number, buf: Buffer, start: number, end: number): void {
  const hb = conn.headerBlock;
  if (hb !== null && (type !== FRAME.CONTINUATION || id !== hb.streamId)) return connectionError(conn, ERR.PROTOCOL_ERROR);
  switch (type) {
    case FRAME.DATA: return onData(conn, flags, id, buf, start, end);
    case FRAME.HEADERS: return onHeaders(conn, flags, id, buf, start, end);
    case FRAME.PRIORITY:
      if (id === 0) return connectionError(conn, ERR.PROTOCOL_ERROR);
      if (end - start !== 5) return streamError(conn, id, ERR.FRAME_SIZE_ERROR);
      if ((buf.readUInt32BE(start) & 0x7fffffff) === id) return streamError(conn, id, ERR.PROTOCOL_ERROR); // 5.3.1
      return;
    case FRAME.RST_STREAM: return onReset(conn, id, buf, start, end);
    case FRAME.SETTINGS: return onSettings(conn, flags, id, buf, start, end);
    case FRAME.PUSH_PROMISE: return connectionError(conn, ERR.PROTOCOL_ERROR);
    case FRAME.PING:
      if (id !== 0) return connectionError(conn, ERR.PROTOCOL_ERROR);
      if (end - start !== 8) return connectionError(conn, ERR.FRAME_SIZE_ERROR);
      if ((flags & FLAG.ACK) === 0) queue(conn, pingAckFrame(buf, start));
      return;
    case FRAME.GOAWAY:
      if (id !== 0) return connectionError(conn, ERR.PROTOCOL_ERROR);
      if (end - start < 8) return connectionError(conn, ERR.FRAME_SIZE_ERROR);
      // The client leaves: streams it opened still get their answers; no new ones.
      if (conn.phase === 'open') conn.phase = 'closing';
      return;
    case FRAME.WINDOW_UPDATE: return onWindowUpdate(conn, id, buf, start, end);
    case FRAME.CONTINUATION: return onContinuation(conn, flags, id, buf, start, end);
    default:
      return; // unknown frame types are ignored (RFC 9113 5.5)
  }
}

function onHeaders(conn: H2Connection, flags: number, id: number, buf: Buffer, start: number, end: number): void {
  if (id === 0) return connectionError(conn, ERR.PROTOCOL_ERROR);
  let s = start;
  let e = end;
  if ((flags & FLAG.PADDED) !== 0) {
    if (e - s < 1) return connectionError(conn, ERR.FRAME_SIZE_ERROR);
    const pad = buf[s]!;
    s++;
    if (pad > e - s) return connectionError(conn, ERR.PROTOCOL_ERROR);
    e -= pad;
  }
  let selfDependent = false;
  if ((flags & FLAG.PRIORITY) !== 0) {
    if (e - s < 5) return connectionError(conn, ERR.FRAME_SIZE_ERROR);
    // A stream cannot depend on itself (5.3.1): a stream error, once the block is decoded (the HPACK table is shared).
    selfDependent = (buf.readUInt32BE(s) & 0x7fffffff) === id;
    s += 5;
  }
  const endStream = (flags & FLAG.END_STREAM) !== 0;
  if ((flags & FLAG.END_HEADERS) === 0) {
    conn.headerBlock = { streamId: id, endStream, selfDependent, parts: [Buffer.from(buf.subarray(s, e))], size: e - s };
    return;
  }
  headerBlockDone(conn, id, endStream, selfDependent, buf, s, e);
}

function onContinuation(conn: H2Connection, flags: number, id: number, buf: Buffer, start: number, end: number): void {
  const hb = conn.headerBlock;
  if (hb === null) return connectionError(conn, ERR.PROTOCOL_ERROR);
  if (end > start) hb.parts.push(Buffer.from(buf.subarray(start, end)));
  // Each frame counts its 9-byte header too: a flood of empty CONTINUATION frames is bounded like a long block.
  hb.size += end - start + 9;
  // A block far past any list we would take: a client feeding CONTINUATION forever (CVE-2024-27316).
  if (hb.size > conn.settings.maxHeaderListSize * 2 + 65_536) return connectionError(conn, ERR.ENHANCE_YOUR_CALM);
  if ((flags & FLAG.END_HEADERS) === 0) return;
  conn.headerBlock = null;
  const block = Buffer.concat(hb.parts);
  headerBlockDone(conn, id, hb.endStream, hb.selfDependent, block, 0, block.length);
}

/** A complete header block on stream `id`: a new request, trailers, or a late block on a stream already over. */
function headerBlockDone(conn: H2Connection, id: number, endStream: boolean, selfDependent: boolean, buf: Buffer, start: number, end: number): void {
  // Decoded whatever becomes of the stream: the HPACK table is the connection's.
  const fields = conn.fields;
  fields.length = 0;
  const r = decodeHeaderBlock(conn.decoder, buf, start, end, fields, conn.settings.maxHeaderListSize);
  if (r === -1) return connectionError(conn, ERR.COMPRESSION_ERROR);
  // Not copied: the handler reads the list during its call only (conn.fields is reused by the next block).
  const list = r === -2 ? null : fields;
  const st = conn.streams.get(id);
  if (st !== undefined) {
    // Trailers: they must end the stream, and hold no pseudo-header (8.1) nor any field a request may not (8.2).
    if (st.state !== 'open' && st.state !== 'half-closed-local') return streamError(conn, id, ERR.STREAM_CLOSED);
    if (!endStream || list === null || selfDependent || malformedTrailers(list)) return streamError(conn, id, ERR.PROTOCOL_ERROR);
    if (st.bodyLeft > 0) return streamError(conn, id, ERR.PROTOCOL_ERROR);
    remoteEnded(conn, st);
    conn.handler.trailers(conn, st, list);
    return;
  }
  if ((id & 1) === 0) return connectionError(conn, ERR.PROTOCOL_ERROR);
  if (id <= conn.lastStreamId) {
    // Sent before our RST_STREAM or our GOAWAY reached the client: dropped (5.1, 6.8).
    if (lateFrame(conn, id)) return;
    // An id the client skipped is one it may no longer open (5.1.1); any other was opened and is over (5.1 closed).
    return connectionError(conn, wasSkipped(conn.closedStreams, id) ? ERR.PROTOCOL_ERROR : ERR.STREAM_CLOSED);
  }
  noteOpened(conn.closedStreams, conn.lastStreamId, id);
  conn.lastStreamId = id;
  if (conn.phase !== 'open') return; // after GOAWAY: not processed (the client retries elsewhere)
  if (selfDependent) return resetUnopened(conn, id, ERR.PROTOCOL_ERROR);
  // Until the client acknowledged our SETTINGS it may not know our limit yet (h2load sends its first -m streams with
  // its preface): up to the RFC's suggested minimum of 100 are still taken then (RFC 9113 5.1.2, 6.5.3).
  const limit = conn.settingsAcked ? conn.settings.maxConcurrentStreams : Math.max(conn.settings.maxConcurrentStreams, PRE_ACK_STREAMS);
  if (conn.active >= limit) return resetUnopened(conn, id, ERR.REFUSED_STREAM);
  const stream: H2Stream = {
    id, state: endStream ? 'half-closed-remote' : 'open', sendWindow: conn.peerInitialWindow, recvWindow: conn.settings.streamWindow,
    unacked: 0, bodyLeft: -1, pending: [], pendingBytes: 0, pendingEnd: false, responded: false, wantsDrain: false, user: null,
  };
  conn.streams.set(id, stream);
  conn.active++;
  conn.handler.request(conn, stream, list, endStream);
}

function onData(conn: H2Connection, flags: number, id: number, buf: Buffer, start: number, end: number): void {
  if (id === 0) return connectionError(conn, ERR.PROTOCOL_ERROR);
  const size = end - start;
  // The whole payload counts against the windows, padding too.
  if (size > conn.recvWindow) return connectionError(conn, ERR.FLOW_CONTROL_ERROR);
  conn.recvWindow -= size;
  const st = conn.streams.get(id);
  if (st === undefined) {
    if (id > conn.lastStreamId || wasSkipped(conn.closedStreams, id)) return connectionError(conn, ERR.PROTOCOL_ERROR);
    // A stream already over: its bytes are dropped but the connection window is given back. Sent before our
    // RST_STREAM or GOAWAY reached the client, they are just dropped; on a stream the client ended, STREAM_CLOSED.
    creditConnection(conn, size);
    if (lateFrame(conn, id)) return;
    return streamError(conn, id, ERR.STREAM_CLOSED);
  }
  if (st.state !== 'open' && st.state !== 'half-closed-local') {
    creditConnection(conn, size);
    return streamError(conn, id, ERR.STREAM_CLOSED);
  }
  if (size > st.recvWindow) {
    creditConnection(conn, size);
    return streamError(conn, id, ERR.FLOW_CONTROL_ERROR);
  }
  st.recvWindow -= size;
  let s = start;
  let e = end;
  if ((flags & FLAG.PADDED) !== 0) {
    if (size < 1) return connectionError(conn, ERR.FRAME_SIZE_ERROR);
    const pad = buf[s]!;
    s++;
    if (pad > e - s) return connectionError(conn, ERR.PROTOCOL_ERROR);
    e -= pad;
    // Padding is never consumed by anyone: credit it back now.
    consumed(conn, st, size - (e - s));
  }
  const endStream = (flags & FLAG.END_STREAM) !== 0;
  if (st.bodyLeft >= 0) {
    st.bodyLeft -= e - s;
    if (st.bodyLeft < 0 || (endStream && st.bodyLeft !== 0)) return streamError(conn, id, ERR.PROTOCOL_ERROR);
  }
  if (endStream) remoteEnded(conn, st);
  conn.handler.data(conn, st, buf, s, e, endStream);
}

function onReset(conn: H2Connection, id: number, buf: Buffer, start: number, end: number): void {
  if (id === 0) return connectionError(conn, ERR.PROTOCOL_ERROR);
  if (end - start !== 4) return connectionError(conn, ERR.FRAME_SIZE_ERROR);
  if (id > conn.lastStreamId) return connectionError(conn, ERR.PROTOCOL_ERROR);
  const st = conn.streams.get(id);
  if (st === undefined) return;
  closeStream(conn, st, buf.readUInt32BE(start), true);
}

function onSettings(conn: H2Connection, flags: number, id: number, buf: Buffer, start: number, end: number): void {
  if (id !== 0) return connectionError(conn, ERR.PROTOCOL_ERROR);
  if ((flags & FLAG.ACK) !== 0) {
    if (end !== start) return connectionError(conn, ERR.FRAME_SIZE_ERROR);
    conn.settingsAcked = true;
    return;
  }
  if ((end - start) % 6 !== 0) return connectionError(conn, ERR.FRAME_SIZE_ERROR);
  // INITIAL_WINDOW_SIZE is applied to the streams once per frame, with its last value: a frame repeating it 2730
  // times made us walk every stream 2730 times (63 ms of CPU per MB received with 100 streams open).
  let initialWindow = -1;
  for (let i = start; i < end; i += 6) {
    const key = buf.readUInt16BE(i);
    const value = buf.readUInt32BE(i + 2);
    switch (key) {
      case SETTING.HEADER_TABLE_SIZE:
        setEncoderLimit(conn.encoder, value);
        break;
      case SETTING.ENABLE_PUSH:
        if (value > 1) return connectionError(conn, ERR.PROTOCOL_ERROR);
        break;
      case SETTING.INITIAL_WINDOW_SIZE:
        if (value > MAX_WINDOW) return connectionError(conn, ERR.FLOW_CONTROL_ERROR);
        initialWindow = value;
        break;
      case SETTING.MAX_FRAME_SIZE:
        if (value < 16_384 || value > 16_777_215) return connectionError(conn, ERR.PROTOCOL_ERROR);
        conn.peerMaxFrame = value;
        break;
      default:
        break; // MAX_CONCURRENT_STREAMS (we push nothing), MAX_HEADER_LIST_SIZE (advisory), unknown ones
    }
  }
  if (initialWindow >= 0 && initialWindow !== conn.peerInitialWindow) {
    const delta = initialWindow - conn.peerInitialWindow;
    conn.peerInitialWindow = initialWindow;
    for (const st of conn.streams.values()) {
      st.sendWindow += delta;
      if (st.sendWindow > MAX_WINDOW) return connectionError(conn, ERR.FLOW_CONTROL_ERROR);
    }
    if (delta > 0) conn.handler.wantFlush(conn);
  }
  queue(conn, settingsAckFrame());
}

function onWindowUpdate(conn: H2Connection, id: number, buf: Buffer, start: number, end: number): void {
  if (end - start !== 4) return connectionError(conn, ERR.FRAME_SIZE_ERROR);
  const inc = buf.readUInt32BE(start) & 0x7fffffff;
  if (id === 0) {
    if (inc === 0) return connectionError(conn, ERR.PROTOCOL_ERROR);
    conn.sendWindow += inc;
    if (conn.sendWindow > MAX_WINDOW) return connectionError(conn, ERR.FLOW_CONTROL_ERROR);
    if (conn.sendQueue.length > 0) conn.handler.wantFlush(conn);
    return;
  }
  if (id > conn.lastStreamId) return connectionError(conn, ERR.PROTOCOL_ERROR);
  const st = conn.streams.get(id);
  if (st === undefined) return; // closed: frames in flight are fine
  if (inc === 0) return streamError(conn, id, ERR.PROTOCOL_ERROR);
  st.sendWindow += inc;
  if (st.sendWindow > MAX_WINDOW) return streamError(conn, id, ERR.FLOW_CONTROL_ERROR);
  if (st.pendingBytes > 0 || st.pendingEnd) conn.handler.wantFlush(conn);
}

/** The client sent END_STREAM: half-closed (remote), or closed if our response is complete too. */
function remoteEnded(conn: H2Connection, st: H2Stream): void {
  if (st.state === 'open') st.state = 'half-closed-remote';
  else if (st.state === 'half-closed-local') closeStream(conn, st, -1, false);
}

/** The stream is over; its pending output is dropped. */
export function closeStream(conn: H2Connection, st: H2Stream, code: number, byPeer: boolean): void {
  if (st.state === 'closed') return;
  st.state = 'closed';
  conn.streams.delete(st.id);
  conn.active--;
  st.pending.length = 0;
  st.pendingBytes = 0;
  st.pendingEnd = false;
  conn.handler.closed(conn, st, code, byPeer);
}

/** A frame on closed stream `id` that the client sent before it knew: after our RST_STREAM, or past our GOAWAY. */
function lateFrame(conn: H2Connection, id: number): boolean {
  return (conn.goawayLastId >= 0 && id > conn.goawayLastId) || wasResetByUs(conn.closedStreams, id);
}

/** A new stream refused before it was opened (REFUSED_STREAM, or a request malformed at the frame level). */
function resetUnopened(conn: H2Connection, id: number, code: number): void {
  queue(conn, rstStreamFrame(id, code));
  noteResetByUs(conn.closedStreams, id);
}

/** A stream error: RST_STREAM with `code`; the stream (if we knew it) is closed. */
export function streamError(conn: H2Connection, id: number, code: number): void {
  queue(conn, rstStreamFrame(id, code));
  noteResetByUs(conn.closedStreams, id);
  const st = conn.streams.get(id);
  if (st !== undefined) closeStream(conn, st, code, false);
}

/** A connection error: GOAWAY with `code`, and nothing more is read. The glue closes once the output is flushed. */
export function connectionError(conn: H2Connection, code: number): void {
  if (conn.error !== 0 || conn.phase === 'closed') return;
  conn.error = code;
  queue(conn, goawayFrame(conn.lastStreamId, code));
  conn.goawayLastId = conn.lastStreamId;
  conn.phase = 'closing';
}

/** A graceful GOAWAY (NO_ERROR or ENHANCE_YOUR_CALM): streams already opened go on, new ones are not taken. */
export function goAway(conn: H2Connection, code: number): void {
  if (conn.phase === 'closed') return;
  if (conn.goawayLastId < 0) {
    queue(conn, goawayFrame(conn.lastStreamId, code));
    conn.goawayLastId = conn.lastStreamId;
  }
  conn.phase = 'closing';
}

/** The glue consumed `n` request body bytes of `st`: window credit goes back to the client in batches. */
export function consumed(conn: H2Connection, st: H2Stream, n: number): void {
  creditConnection(conn, n);
  if (st.state === 'closed' || st.state === 'half-closed-remote') return;
  st.unacked += n;
  if (st.unacked >= conn.settings.streamWindow >>> 2 || st.unacked >= 65_536) {
    queue(conn, windowUpdateFrame(st.id, st.unacked));
    st.recvWindow += st.unacked;
    st.unacked = 0;
  }
}

function creditConnection(conn: H2Connection, n: number): void {
  conn.recvUnacked += n;
  if (conn.recvUnacked >= conn.settings.connectionWindow >>> 2 || conn.recvUnacked >= 1 << 20) {
    queue(conn, windowUpdateFrame(0, conn.recvUnacked));
    conn.recvWindow += conn.recvUnacked;
    conn.recvUnacked = 0;
  }
}

/** The frames queued so far, as one buffer for one socket write (null when none). */
export function takeOutput(conn: H2Connection): Buffer | null {
  if (conn.out.length === 0) return null;
  const out = conn.out.length === 1 ? conn.out[0]! : Buffer.concat(conn.out, conn.outBytes);
  conn.out = [];
  conn.outBytes = 0;
  return out;
}
