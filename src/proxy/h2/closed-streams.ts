// What a server connection remembers of the client's stream ids below the highest one it opened, so that a frame on
// one of them gets the answer RFC 9113 5.1 asks for without keeping every stream ever opened:
// - ids the client skipped (opening 5 first leaves 1 and 3 idle, closed unused by 5.1.1): a HEADERS there is an
//   unexpected stream id, a connection error PROTOCOL_ERROR;
// - ids we reset ourselves, recently: the client may have sent frames before our RST_STREAM reached it, and those
//   are decoded (HPACK) and dropped, not an error (5.1 'closed');
// - every other id below the highest was opened and is now closed: a frame there is STREAM_CLOSED.
// Clients open ids in order (1, 3, 5, ...), so the gaps are normally none. Both records are bounded: past their
// size the oldest entry goes, and a frame on such an old id gets the STREAM_CLOSED answer, still a refusal. Pure.

export interface ClosedStreams {
  /** Skipped id ranges as flat (first, last) pairs, oldest first. */
  gaps: number[];
  /** Ids we sent RST_STREAM for (ring of RESET_RING; 0 is no entry). */
  resetByUs: Int32Array;
  resetAt: number;
}

const MAX_GAPS = 32;
const RESET_RING = 32;

export function newClosedStreams(): ClosedStreams {
  return { gaps: [], resetByUs: new Int32Array(RESET_RING), resetAt: 0 };
}

/** The client opened `id` (odd) while the highest id so far was `last`: the ids between are skipped. */
export function noteOpened(cs: ClosedStreams, last: number, id: number): void {
  const first = last === 0 ? 1 : last + 2;
  if (id <= first) return;
  if (cs.gaps.length >= MAX_GAPS * 2) cs.gaps.splice(0, 2);
  cs.gaps.push(first, id - 2);
}

/** `id` (odd, below the highest opened) was never opened by the client. */
export function wasSkipped(cs: ClosedStreams, id: number): boolean {
  const g = cs.gaps;
  for (let i = 0; i < g.length; i += 2) if (id >= g[i]! && id <= g[i + 1]!) return true;
  return false;
}

/** We reset stream `id` (REFUSED_STREAM, a stream error, a request whose response ended before its body). */
export function noteResetByUs(cs: ClosedStreams, id: number): void {
  cs.resetByUs[cs.resetAt] = id;
  cs.resetAt = (cs.resetAt + 1) % RESET_RING;
}

export function wasResetByUs(cs: ClosedStreams, id: number): boolean {
  return cs.resetByUs.includes(id);
}
