// Rate-limited logging of dropped heartbeat packets: the first few per reason and sender address are logged in full,
// the rest are counted and summed up once per interval. Anyone who can reach UDP 694 can send garbage, replays or
// packets signed with another key; one log line each would let them fill the disk or journald (issue 14: 50k garbage
// datagrams wrote 49,283 lines). The per-reason counters in `tsbal ha status` and /metrics count every packet.
// Pure: the node passes in the clock and logs what comes back.

/** Lines logged in full per reason and sender before the rest are only counted. */
export const DROP_LOG_FIRST = 3;
/** How often the counted (unlogged) drops are summed up in one line per reason and sender. */
export const DROP_SUMMARY_MS = 10_000;
/** Senders tracked one by one; beyond that (spoofed sources) they share one entry. */
export const DROP_LOG_MAX_SOURCES = 32;
const OTHER_SOURCES = 'other addresses';

interface Entry {
  reason: string;
  source: string;
  /** Lines logged in full in this entry's life. */
  logged: number;
  /** Drops counted since the last summary (not logged). */
  unlogged: number;
  total: number;
  /** Drops since the last summary, logged or not: an entry quiet for a whole interval is forgotten. */
  recent: number;
}

export interface DropLog {
  entries: Map<string, Entry>;
  /** When the next summary is due (null: nothing counted). */
  summaryAt: number | null;
}

export const newDropLog = (): DropLog => ({ entries: new Map(), summaryAt: null });

/**
 * A dropped packet: returns the line to log (the message, and on the last one logged in full a note that the rest
 * are counted), or null when it is only counted.
 */
export function noteDrop(d: DropLog, now: number, reason: string, source: string, message: string): string | null {
  let key = `${reason}\u0000${source}`;
  let e = d.entries.get(key);
  if (!e && d.entries.size >= DROP_LOG_MAX_SOURCES) {
    key = `${reason}\u0000${OTHER_SOURCES}`;
    e = d.entries.get(key);
    source = OTHER_SOURCES;
  }
  if (!e) {
    e = { reason, source, logged: 0, unlogged: 0, total: 0, recent: 0 };
    d.entries.set(key, e);
  }
  e.total++;
  e.recent++;
  d.summaryAt ??= now + DROP_SUMMARY_MS;
  if (e.logged < DROP_LOG_FIRST) {
    e.logged++;
    return e.logged === DROP_LOG_FIRST ? `${message} (more like this from ${source} are counted and summed up every ${DROP_SUMMARY_MS / 1000} s)` : message;
  }
  e.unlogged++;
  return null;
}

/** Due at `summaryAt`: one line per reason and sender with drops not logged since the last summary. */
export function dropSummary(d: DropLog, now: number): string[] {
  if (d.summaryAt === null || now < d.summaryAt) return [];
  const lines: string[] = [];
  for (const [key, e] of d.entries) {
    if (e.unlogged > 0) {
      lines.push(`dropped ${e.unlogged} more packet(s) from ${e.source} in the last ${DROP_SUMMARY_MS / 1000} s: ${e.reason} (${e.total} since first seen)`);
    }
    if (e.recent === 0) d.entries.delete(key);
    e.unlogged = 0;
    e.recent = 0;
  }
  d.summaryAt = d.entries.size > 0 ? now + DROP_SUMMARY_MS : null;
  return lines;
}
