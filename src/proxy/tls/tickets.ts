// Session ticket keys of a TLS listener: random, replaced every ssl_ticket_rotation (default 12 h) so that a stolen key opens
// at most that much recorded traffic (forward secrecy for resumed sessions), and carried over a reload so clients
// keep resuming. OpenSSL through Node holds one key at a time: a ticket older than one rotation means a full
// handshake, which clients do without a visible error. Pure apart from the random bytes.
import { randomBytes } from 'node:crypto';

export const TICKET_KEY_LIFETIME_MS = 12 * 3_600_000;
/** Node's setTicketKeys takes 48 bytes: name, HMAC secret, AES key. */
export const TICKET_KEY_BYTES = 48;

export interface TicketKeys {
  key: Buffer;
  /** On the engine's monotonic clock. */
  since: number;
}

export function newTicketKeys(now: number): TicketKeys {
  return { key: randomBytes(TICKET_KEY_BYTES), since: now };
}

export function ticketKeysDue(keys: TicketKeys, now: number, lifetimeMs = TICKET_KEY_LIFETIME_MS): boolean {
  return now - keys.since >= lifetimeMs;
}
