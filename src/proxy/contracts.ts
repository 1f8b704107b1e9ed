// Types only: the small interfaces through which the parts of one request talk to each other, so that imports flow
// one way (client → route → exchange → upstream) and never back. A connection reports to the code above it through
// one of these tables (as undici's socket side reports through its handler interface) instead of calling that
// code by name. The tables are shared constants set once per record: no closure per request.
import type { RequestHead } from './http/request.ts';
import type { HealthState } from './upstream/health.ts';

// ---------------------------------------------------------------------------------------------------------------
// Downstream: what an exchange, an answer tsbal makes itself, or the web server may do to its client connection.
// ---------------------------------------------------------------------------------------------------------------

/** Why reading from the client is paused; reading resumes once no reason is left. */
export type PauseReason = 'stash' | 'backend' | 'queue';

export interface Downstream {
  readonly down: DownstreamOps;
}

/** Implemented once by client.ts (CLIENT_OPS); `c` is the record carrying the table. */
export interface DownstreamOps {
  /** The response is out: keep the connection for the next request, or close it. */
  exchangeDone(c: Downstream, keepAlive: boolean): void;
  /** Cut the connection (a response broke off after its head went out). */
  abort(c: Downstream): void;
  pause(c: Downstream, why: PauseReason): void;
  resume(c: Downstream, why: PauseReason): void;
  /** After a 101: bytes flow both ways from now on. Returns what the client sent early (held), to forward first. */
  becomeTunnel(c: Downstream): Buffer | null;
}

// ---------------------------------------------------------------------------------------------------------------
// UpstreamEvents: what a backend connection reports to the request it carries (upstream/conn.ts calls only these).
// ---------------------------------------------------------------------------------------------------------------

/** Where one request's exchange is (exchange.ts `enterPhase` is the only writer; `done` is terminal). */
export type ExchangePhase = 'dispatch' | 'request' | 'response' | 'tunnel' | 'done';

/** The request a backend connection works for, as the connection sees it. */
export interface UpstreamUser<Conn> {
  /** `done`: answered, failed, or its client gone; the connection no longer serves it. */
  readonly phase: ExchangePhase;
  readonly events: UpstreamEvents<Conn>;
}

/** Implemented once by relay.ts (EXCHANGE_EVENTS). */
export interface UpstreamEvents<Conn> {
  /** Connected (and verified), or taken from the idle pool: send the request. */
  attached(user: UpstreamUser<Conn>, conn: Conn): void;
  /** Bytes from the backend (valid only during the call: the engine's shared read buffer). */
  data(user: UpstreamUser<Conn>, conn: Conn, chunk: Buffer): void;
  /** The backend's socket can take more. */
  drained(user: UpstreamUser<Conn>, conn: Conn): void;
  /** Connecting or verifying failed (the connection already noted the backend's failure). */
  openFailed(user: UpstreamUser<Conn>, conn: Conn, cause: string): void;
  /** The backend half-closed. */
  ended(user: UpstreamUser<Conn>, conn: Conn): void;
  /** The connection closed while carrying the request. */
  closed(user: UpstreamUser<Conn>, conn: Conn): void;
  /** The current phase's deadline passed (response_timeout, idle_timeout). */
  timedOut(user: UpstreamUser<Conn>, conn: Conn): void;
}

// ---------------------------------------------------------------------------------------------------------------
// Selection: what a balancing policy sees (upstream/select.ts holds the registry, upstream/policies/ the policies).
// ---------------------------------------------------------------------------------------------------------------

/** Operator's say over a backend (HAProxy's ready/drain/maint): drain takes no new sessions, maint nothing. */
export type AdminState = 'ready' | 'drain' | 'maint';

/** A backend as a policy sees it (upstream/upstream.ts `Upstream` implements it). */
export interface UpstreamView {
  /** `ip:port`: also what a hash or cookie policy keys on (never send it to clients as is). */
  readonly key: string;
  /** Configured weight (default 1); 0 takes no new requests. */
  readonly weight: number;
  /**
   * The weight policies weigh by in this pick: upstream.ts `effectiveWeight` (the configured weight, scaled by slow
   * start), set for each candidate just before `select`. Always > 0 for a candidate.
   */
  readonly weightNow: number;
  /**
   * Scratch owned by the service's policy (HAProxy keeps per-server lb fields the same way): smooth weighted round
   * robin's running score. On the record rather than in a Map, so a pick costs no hashing.
   */
  lbScore: number;
  readonly admin: AdminState;
  /** Requests in flight from this service (leastconn). */
  readonly active: number;
  readonly health: { readonly state: HealthState };
}

/**
 * The request being placed, as a policy sees it (the exchange implements it: nothing is allocated per request).
 * A cookie policy reads the request's cookie from `req` and asks for one on the response through `setCookie`.
 */
export interface SelectRequest {
  readonly req: RequestHead;
  /** The client's address (for a source hash: after the trusted X-Forwarded-For rules). */
  readonly peerIp: string;
  /**
   * Session affinity (upstream/affinity.ts): the backend id the client's cookie names (tsbal's cookie, or the prefix
   * of the application's), or null. Read once when the exchange starts, only for a `sticky` service.
   */
  readonly pin: string | null;
  /** prefix mode: the application's cookie value behind the prefix (to re-pin it on another backend). */
  readonly pinnedAppValue: string | null;
  /**
   * A Set-Cookie value for the response (without `; Secure`, added for TLS clients): set by chooseUpstream when a
   * sticky request is pinned anew; relay.ts writes it into the client's response head.
   */
  setCookie: string | null;
}

/**
 * One balancing policy of one service. `select` gets only the candidates that may take a request now (see
 * upstream.ts `available`), non-empty, and returns one of them. `request` is null for a connect_ahead spare.
 * The hooks are HAProxy's `lb_ops`: a policy that keeps its own structure (a weighted round-robin tree, a hash
 * ring) updates it there instead of rebuilding per request; stateless policies leave them out.
 */
export interface Selector<U extends Pick<UpstreamView, 'active' | 'weightNow' | 'lbScore'> = UpstreamView> {
  readonly method: string;
  /**
   * The policy weighs candidates by `effectiveWeight` (upstream.ts), slow start included. Left out, the policy is
   * blind to weights and `chooseUpstream` thins a backend in slow start out of the candidates instead.
   */
  readonly weighted?: boolean;
  select(candidates: readonly U[], request: SelectRequest | null): U | undefined;
  /** A backend became available: its health came back (upstream/transitions.ts) or admin ready again (members.ts). */
  upstreamUp?(u: U): void;
  /** It became unavailable: health down (transitions.ts), drain or maint, or it left the pool (members.ts). */
  upstreamDown?(u: U): void;
  /**
   * Its effective weight changed: each sweep tick of a slow start (transitions.ts announceWeight), the `weight`
   * command, a nodefile or a reload (members.ts).
   */
  weightChanged?(u: U): void;
  /** A request was sent to it / finished with it (its `active` count changed). */
  taken?(u: U): void;
  released?(u: U): void;
}
