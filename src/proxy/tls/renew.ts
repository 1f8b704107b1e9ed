// Session tickets that renew when a session resumes (Node only). A TLS 1.3 ticket is single use, so a client
// resumes again only if the resumed connection brings it a fresh ticket. Node's built-in ticket callback answers
// OpenSSL "valid, keep" for a ticket under the current key, and OpenSSL then sends no new ticket: a client that
// keeps one ticket per server (wrk, curl, most HTTP libraries) resumed only every other connection and paid a full
// handshake in between (measured with wrk: 312 full, 311 resumed; HAProxy, nginx and Bun's BoringSSL renew, and
// resumed nearly all). Node's own ticket callback hook (`enableTicketKeyCallback`/`onticketkeycallback` on the
// native SecureContext, which Node's test-https-resume-after-renew uses) lets us answer "valid, renew" instead.
// Same key, same lifetime: a ticket under an older key is still refused (a full handshake), as before.
import { randomFillSync } from 'node:crypto';
import type { Server } from 'node:tls';

type TicketKeyAnswer = [result: 0 | 1 | 2, hmacKey: Buffer, aesKey: Buffer, name?: Buffer, iv?: Buffer];

interface NativeSecureContext {
  enableTicketKeyCallback(): void;
  onticketkeycallback: (name: Buffer, iv: Buffer, encrypt: boolean) => TicketKeyAnswer;
}

/**
 * Has `server` issue a new ticket on every resumption, with the 48-byte key `currentKey()` returns (name, HMAC
 * secret, AES key: Node's setTicketKeys layout), read at each handshake so a rotation takes effect at once.
 * False when the runtime has no such hook (Bun: BoringSSL renews on its own).
 */
export function renewTicketsOnResume(server: Server, currentKey: () => Buffer): boolean {
  const ctx = (server as unknown as { _sharedCreds?: { context?: Partial<NativeSecureContext> } })._sharedCreds?.context;
  if (ctx === undefined || typeof ctx.enableTicketKeyCallback !== 'function') return false;
  // Node reads the answer (and copies the IV) before the callback returns, so one set of answers serves every
  // handshake without allocating: they are rebuilt only when the key rotates, and the IV is refilled in place.
  const iv = Buffer.alloc(16);
  const ivs = newIvPool();
  let key: Buffer | null = null;
  let encrypt: TicketKeyAnswer = [1, iv, iv, iv, iv];
  let renew: TicketKeyAnswer = [2, iv, iv];
  let refuse: TicketKeyAnswer = [0, iv, iv];
  ctx.onticketkeycallback = (name: Buffer, _iv: Buffer, encrypting: boolean): TicketKeyAnswer => {
    const current = currentKey();
    if (current !== key) {
      key = current;
      const hmac = current.subarray(16, 32);
      const aes = current.subarray(32, 48);
      encrypt = [1, hmac, aes, current.subarray(0, 16), iv];
      renew = [2, hmac, aes];
      refuse = [0, hmac, aes];
    }
    if (encrypting) {
      nextIv(ivs, iv);
      return encrypt;
    }
    // 2: the ticket is good and OpenSSL issues a new one; 0: not our key, a full handshake.
    return current.compare(name, 0, 16, 0, 16) === 0 ? renew : refuse;
  };
  ctx.enableTicketKeyCallback();
  return true;
}

/**
 * Random IVs for ticket encryption, drawn from the CSPRNG 256 at a time: every ticket needs a fresh unpredictable IV
 * (AES-CBC), and one randomFillSync per ticket (a crypto job object and a C++ call, two per full TLS 1.3 handshake)
 * was a quarter of the ticket callback's cost. Each IV is used once.
 */
export interface IvPool { bytes: Buffer; next: number }

const IV_BYTES = 16;
const IVS_PER_FILL = 256;

export function newIvPool(): IvPool {
  return { bytes: Buffer.alloc(IV_BYTES * IVS_PER_FILL), next: IVS_PER_FILL };
}

export function nextIv(pool: IvPool, into: Buffer): void {
  if (pool.next === IVS_PER_FILL) {
    randomFillSync(pool.bytes);
    pool.next = 0;
  }
  const bytes = pool.bytes;
  const start = pool.next * IV_BYTES;
  for (let i = 0; i < IV_BYTES; i++) into[i] = bytes[start + i]!;
  pool.next++;
}
