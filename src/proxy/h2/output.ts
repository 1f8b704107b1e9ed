// The response side of an HTTP/2 connection (connection.ts): HEADERS (+CONTINUATION) encoded with HPACK, DATA split
// at the client's max frame size and held back by its flow control windows (the connection's and the stream's),
// and 'drain' for a stream whose queued output went down after a write was refused. Pure: frames go to conn.out.
import { encodeHeaderBlock, encodedSizeBound } from './hpack-encoder.ts';
import { closeStream, queue, streamError, type H2Connection, type H2Stream } from './connection.ts';
import { noteResetByUs } from './closed-streams.ts';
import { ErrorCode as ERR, FrameFlag as FLAG, FrameType as FRAME, dataFrameHeader, rstStreamFrame, writeFrameHeader } from './frame-writer.ts';

/** Queued response bytes per stream past which a write returns false (the exchange pauses its backend). */
export const STREAM_HIGH_MARK = 65_536;

/** At most this much DATA is moved to the output in one flush (the glue flushes again once the socket drained). */
const FLUSH_BUDGET = 256 * 1024;

/** The response head: `headers` is the flat list with `:status` first. */
export function respond(conn: H2Connection, st: H2Stream, headers: string[], endStream: boolean): boolean {
  if (st.state === 'closed' || st.responded) return false;
  // Encoded right after room for the frame header: the common head is one HEADERS frame, no copy.
  const buf = Buffer.allocUnsafe(9 + encodedSizeBound(headers));
  const end = encodeHeaderBlock(conn.encoder, headers, buf, 9);
  const len = end - 9;
  st.responded = true;
  const max = conn.peerMaxFrame;
  const endFlag = endStream ? FLAG.END_STREAM : 0;
  if (len <= max) {
    writeFrameHeader(buf, 0, len, FRAME.HEADERS, FLAG.END_HEADERS | endFlag, st.id);
    queue(conn, buf.subarray(0, end));
  } else {
    for (let at = 0; at < len; at += max) {
      const n = Math.min(max, len - at);
      const last = at + n >= len ? FLAG.END_HEADERS : 0;
      const frame = Buffer.allocUnsafe(9 + n);
      writeFrameHeader(frame, 0, n, at === 0 ? FRAME.HEADERS : FRAME.CONTINUATION, (at === 0 ? endFlag : 0) | last, st.id);
      buf.copy(frame, 9, 9 + at, 9 + at + n);
      queue(conn, frame);
    }
  }
  if (endStream) localEnded(conn, st);
  return true;
}

/**
 * Response body bytes (after respond). Sent at once when the windows allow and nothing waits before it, else
 * queued. False when the stream's queue is past the mark: the writer waits for handler.drain.
 */
export function sendData(conn: H2Connection, st: H2Stream, data: Buffer, endStream: boolean): boolean {
  if (st.state === 'closed' || st.state === 'half-closed-local') return true;
  const n = data.length;
  if (st.pendingBytes === 0 && conn.sendQueue.length === 0 && n <= conn.peerMaxFrame && n <= conn.sendWindow && n <= st.sendWindow) {
    conn.sendWindow -= n;
    st.sendWindow -= n;
    queue(conn, dataFrameHeader(n, st.id, endStream));
    if (n > 0) queue(conn, data);
    if (endStream) localEnded(conn, st);
    return true;
  }
  if (n > 0) {
    st.pending.push(data);
    st.pendingBytes += n;
  }
  if (endStream) st.pendingEnd = true;
  if (!conn.sendQueue.includes(st)) conn.sendQueue.push(st);
  conn.handler.wantFlush(conn);
  if (st.pendingBytes <= STREAM_HIGH_MARK) return true;
  st.wantsDrain = true;
  return false;
}

/** Moves queued DATA into the output as far as the windows (and this flush's budget) allow; then drain events. */
export function flushData(conn: H2Connection): void {
  if (conn.sendQueue.length === 0) return;
  let budget = FLUSH_BUDGET;
  let drained: H2Stream[] | null = null;
  let progress = true;
  while (progress && budget > 0 && conn.sendQueue.length > 0) {
    progress = false;
    // One frame per stream per round: streams share the connection window fairly.
    for (let i = 0; i < conn.sendQueue.length && budget > 0;) {
      const st = conn.sendQueue[i]!;
      if (st.state === 'closed') {
        conn.sendQueue.splice(i, 1);
        continue;
      }
      const room = Math.min(conn.sendWindow, st.sendWindow, conn.peerMaxFrame);
      if (st.pendingBytes > 0 && room <= 0) {
        i++;
        continue;
      }
      // An empty END_STREAM needs no window, and a window the client's SETTINGS drove negative must not count (6.9.2).
      const n = st.pendingBytes === 0 ? 0 : Math.min(room, st.pendingBytes);
      const payload = takePending(st, n);
      const last = st.pendingBytes === 0 && st.pendingEnd;
      conn.sendWindow -= n;
      st.sendWindow -= n;
      budget -= n + 9;
      queue(conn, dataFrameHeader(n, st.id, last));
      if (n > 0) queue(conn, payload!);
      progress = true;
      if (st.wantsDrain && st.pendingBytes <= STREAM_HIGH_MARK / 2) {
        st.wantsDrain = false;
        (drained ??= []).push(st);
      }
      if (st.pendingBytes === 0) {
        conn.sendQueue.splice(i, 1);
        if (last) {
          st.pendingEnd = false;
          localEnded(conn, st);
        }
        continue;
      }
      i++;
    }
  }
  if (drained !== null) for (const st of drained) if (st.state !== 'closed') conn.handler.drain(conn, st);
}

function takePending(st: H2Stream, n: number): Buffer | null {
  if (n === 0) return null;
  st.pendingBytes -= n;
  const first = st.pending[0]!;
  if (first.length === n) {
    st.pending.shift();
    return first;
  }
  if (first.length > n) {
    st.pending[0] = first.subarray(n);
    return first.subarray(0, n);
  }
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  while (at < n) {
    const b = st.pending[0]!;
    const take = Math.min(b.length, n - at);
    b.copy(out, at, 0, take);
    at += take;
    if (take === b.length) st.pending.shift();
    else st.pending[0] = b.subarray(take);
  }
  return out;
}

/** We sent END_STREAM. A request still sending its body is told to stop (RST_STREAM NO_ERROR, RFC 9113 8.1). */
function localEnded(conn: H2Connection, st: H2Stream): void {
  if (st.state === 'half-closed-remote') closeStream(conn, st, -1, false);
  else if (st.state === 'open') {
    queue(conn, rstStreamFrame(st.id, ERR.NO_ERROR));
    // Its DATA and trailers still on the way are dropped when they come (5.1), not answered as on a closed stream.
    noteResetByUs(conn.closedStreams, st.id);
    closeStream(conn, st, -1, false);
  }
}

/** Abandons a stream's response (the exchange broke off): RST_STREAM with `code`. */
export function resetStream(conn: H2Connection, st: H2Stream, code: number): void {
  if (st.state === 'closed') return;
  streamError(conn, st.id, code);
}
