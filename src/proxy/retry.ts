// When may a failed attempt be tried again on another backend? Pure, so the rules are pinned by tests.

/** RFC 9110 9.2.2: repeating these cannot change the outcome. */
export function isIdempotent(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'TRACE':
    case 'PUT':
    case 'DELETE':
      return true;
    default:
      return false;
  }
}

export interface AttemptFacts {
  /** Backends tried so far for this request (including the one that just failed). */
  attempts: number;
  maxRetries: number;
  /** Some byte of the request reached the failed backend's socket. */
  sent: boolean;
  /** The failed backend sent some byte of a response. */
  gotResponseBytes: boolean;
  idempotent: boolean;
  /** The request body sent so far is still held, so it can be sent again. */
  replayable: boolean;
}

/**
 * A request that never left us can always go elsewhere. One that did may be repeated only if it is idempotent,
 * its body is still held, and the backend said nothing (a response byte means it acted on it).
 */
export function mayRetry(f: AttemptFacts): boolean {
  if (f.attempts > f.maxRetries) return false;
  if (!f.sent) return true;
  return f.idempotent && f.replayable && !f.gotResponseBytes;
}
