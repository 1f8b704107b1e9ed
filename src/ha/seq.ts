// Per-sender generation and sequence tracking (heartbeat's should_drop_message) and our send history for
// retransmissions (hb_rexmit.c). Pure: the caller passes `now`.

/** More lost packets than this and heartbeat gives up on the gap and starts over. */
export const SEQ_GAP_LIMIT = 250;
/** Heartbeat keeps this many sent packets for retransmission. */
export const HISTORY_SIZE = 500;
/** A packet re-sent this recently is not re-sent again. */
export const REXMIT_MIN_INTERVAL_MS = 240;
/** At most this many packets answer one retransmit request. */
export const REXMIT_MAX_PER_REQUEST = 50;

export interface SeqTrack {
  /** Highest generation seen from this sender; null before the first packet. */
  generation: number | null;
  lastSeq: number | null;
  /** Missing seq -> when to (re)request it. */
  missing: Map<number, number>;
}

export const newSeqTrack = (): SeqTrack => ({ generation: null, lastSeq: null, missing: new Map() });

export type SeqVerdict =
  | { kind: 'accept'; restarted: boolean; filledGap: boolean; lost: number }
  | { kind: 'drop'; reason: 'staleGeneration' | 'oldSeq' | 'duplicate' };

/**
 * Decides whether a packet from this sender is new. Unlike heartbeat, the last seq survives the sender being declared
 * dead, so a replay of its old packets cannot bring it back to life; a real partition keeps counting up and is accepted,
 * and (as in heartbeat, which starts over) the packets lost during it are not requested again.
 */
export function checkSeq(
  track: SeqTrack,
  generation: number,
  seq: number | null,
  now: number,
  requestDelay: () => number,
  /** The sender was declared dead: what it sent meanwhile is history, not to be requested and replayed as news. */
  senderWasDead = false,
): SeqVerdict {
  if (track.generation !== null && generation < track.generation) return { kind: 'drop', reason: 'staleGeneration' };
  let restarted = false;
  if (track.generation === null || generation > track.generation) {
    restarted = track.generation !== null;
    track.generation = generation;
    track.lastSeq = null;
    track.missing.clear();
  }
  if (seq === null) return { kind: 'accept', restarted, filledGap: false, lost: 0 };
  const last = track.lastSeq;
  if (last === null || seq === last + 1) {
    track.lastSeq = seq;
    return { kind: 'accept', restarted, filledGap: false, lost: 0 };
  }
  if (seq === last) return { kind: 'drop', reason: 'duplicate' };
  if (seq > last) {
    const lost = seq - last - 1;
    if (lost > SEQ_GAP_LIMIT || senderWasDead) {
      track.missing.clear();
    } else {
      for (let s = last + 1; s < seq; s++) track.missing.set(s, now + requestDelay());
    }
    track.lastSeq = seq;
    return { kind: 'accept', restarted, filledGap: false, lost };
  }
  if (track.missing.delete(seq)) return { kind: 'accept', restarted, filledGap: true, lost: 0 };
  return { kind: 'drop', reason: 'oldSeq' };
}

export interface SentPacket {
  bytes: Uint8Array;
  /** When we last re-sent it for a retransmit request (the original send does not count). */
  lastResentAt: number | null;
}

/** The last HISTORY_SIZE sequenced packets we sent, by seq (Map keeps insertion order, so the oldest is first). */
export type SendHistory = Map<number, SentPacket>;

export function remember(history: SendHistory, seq: number, bytes: Uint8Array): void {
  history.set(seq, { bytes, lastResentAt: null });
  if (history.size > HISTORY_SIZE) history.delete(history.keys().next().value as number);
}

export type RexmitAnswer = { kind: 'resend'; seq: number; bytes: Uint8Array } | { kind: 'nak'; seq: number };

/** What to send for a peer's NS_rexmit: the stored bytes unchanged, or a NAK when they are gone. */
export function answerRexmit(history: SendHistory, first: number, last: number, now: number): RexmitAnswer[] {
  const out: RexmitAnswer[] = [];
  if (last < first) return out;
  for (let s = first; s <= last && out.length < REXMIT_MAX_PER_REQUEST; s++) {
    const sent = history.get(s);
    if (!sent) out.push({ kind: 'nak', seq: s });
    else if (sent.lastResentAt === null || now - sent.lastResentAt >= REXMIT_MIN_INTERVAL_MS) {
      sent.lastResentAt = now;
      out.push({ kind: 'resend', seq: s, bytes: sent.bytes });
    }
  }
  return out;
}
