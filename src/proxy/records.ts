// Types only: the records of the proxy that point at each other (a client connection and its exchange, an exchange
// and its backend connection, a service with its backends and its engine, the engine's connection sets). They live
// here, apart from the code that works on them, so that modules naming each other's records import nothing cyclic
// and imports keep flowing one way (client → route → exchange → upstream). Import nothing here but types from
// modules outside that chain (test/import-cycles.test.ts fails on any cycle, type-only ones included).
import type { ReadStream } from 'node:fs';
import type { Server, Socket } from 'node:net';
import type { ConsolaInstance } from 'consola';
import type { TransitionRing } from '../status/transitions.ts';
import type { AccessLog } from './access-log.ts';
import type { AssignHooks } from './assign-hooks.ts';
import type { AdminState, Downstream, ExchangePhase, SelectRequest, Selector, UpstreamEvents, UpstreamUser, UpstreamView } from './contracts.ts';
import type { ProxyFailure } from './errors.ts';
import type { RequestHook } from './hooks.ts';
import type { BodyReader } from './http/body.ts';
import type { DataSink } from './http/chunked.ts';
import type { Fields } from './http/fields.ts';
import type { ForwardContext } from './http/forward.ts';
import type { HeadReader } from './http/head-reader.ts';
import type { HeadLimits } from './http/parser.ts';
import type { RequestHead } from './http/request.ts';
import type { ResponseSuffixes } from './http/response-head.ts';
import type { ResponseHead } from './http/response.ts';
import type { HeadWriter } from './http/writer.ts';
import type { H2Listener, H2Session } from './h2/session.ts';
import type { NodeStats, ServiceStats } from './management/stats.ts';
import type { ReverseProxyOptions } from './options.ts';
import type { HighpriPatterns } from './plugin-options.ts';
import type { PluginStats } from './plugin-stats.ts';
import type { SelectorRules } from './selector.ts';
import type { WriteBatch } from '../runtime/socket-writes.ts';
import type { Spool } from './spool.ts';
import type { ReproxyCache, ReproxyInstruction } from './reproxy/plan.ts';
import type { ThrottleState } from './throttle.ts';
import type { TlsListener } from './tls/context.ts';
import type { BackendTls } from './tls/upstream.ts';
import type { Sticky } from './upstream/affinity.ts';
import type { PoolHealthOptions } from './upstream/check-spec.ts';
import type { BackoffPolicy, UpstreamHealth } from './upstream/health.ts';
import type { WaitQueue } from './upstream/queue.ts';
import type { WebServerOptions } from './webserver/options.ts';

export type ClientPhase =
  /** Waiting for / reading a request head (a kept-alive connection between requests, too). */
  | 'head'
  /** Reading the request body; the exchange runs. */
  | 'body'
  /** Request fully read; the exchange runs. Further bytes (pipelined requests) wait in `stash`. */
  | 'wait'
  /** A web_server PUT body going to disk: `upload` takes the bytes (webserver/put.ts). */
  | 'upload'
  | 'tunnel'
  /** Our last response is out and we sent FIN; input is discarded until the client closes or lingering ends. */
  | 'closing'
  | 'closed';

export interface ClientConn extends Downstream {
  kind: 'client';
  /** The service that accepted the connection: it reads request heads and decides keep-alive (persist_client). */
  listener: ServiceRuntime;
  /** The service handling the current request: the listener, or the target a selector handed it to. */
  svc: ServiceRuntime;
  socket: Socket;
  peerIp: string;
  /** The forwarding context of the current request. */
  forward: ForwardContext;
  /** The listener's forwarding context. */
  baseForward: ForwardContext;
  /** The engine's configGeneration `baseForward` and `targetForward` were made under (route.ts remakes them). */
  forwardGeneration: number;
  /** Contexts for selector targets, made on first use. */
  targetForward: Map<ServiceRuntime, ForwardContext> | null;
  phase: ClientPhase;
  reader: HeadReader;
  /**
   * The fields of the connection's current request head, reused from request to request (its arrays keep their
   * room): the next head is parsed only once the exchange of the previous one is over (clientExchangeDone).
   */
  requestFields: Fields;
  /** The first byte of the current head arrived (header_timeout runs from then). */
  headStarted: boolean;
  x: Exchange | null;
  /** The Throttle state counting the current request as in progress, and the address it counts under. */
  throttled: { state: ThrottleState; ip: string } | null;
  /** Bytes that arrived after the current request (pipelining), held until its response is done. */
  stash: Buffer | null;
  /** Why reading is paused (PAUSE_* bits); reading resumes when none is left. */
  paused: number;
  /** The client half-closed: answer what it sent, then close. */
  ended: boolean;
  /** TCP_NODELAY is on (or not ours to ask, runtime/net.ts noDelayPending); off until a request may need it. */
  noDelay: boolean;
  /** Inside `feed`: a finished exchange lets the loop continue rather than re-entering. */
  feeding: boolean;
  deadline: number;
  requests: number;
  /** A web_server response streaming from a file: closes the file when the client goes away first. */
  abortStatic: (() => void) | null;
  /** In 'upload': takes body bytes from buf[start..] and returns where the body ended. */
  upload: ((buf: Buffer, start: number) => number) | null;
}

/** One request's exchange with the backends; as its backend connection and the balancing policy see it, too. */
export interface Exchange extends UpstreamUser<BackendConn>, SelectRequest {
  phase: ExchangePhase;
  /** relay.ts's EXCHANGE_EVENTS: how the backend connection reports. */
  events: UpstreamEvents<BackendConn>;
  client: ClientConn;
  /** The client's address (as the policy sees the request). */
  peerIp: string;
  pin: string | null;
  pinnedAppValue: string | null;
  setCookie: string | null;
  svc: ServiceRuntime;
  req: RequestHead;
  /** The request head as the backend gets it (kept for retries). */
  backendHead: Buffer;
  body: BodyReader;
  /** Body bytes not yet written to the current backend. */
  queue: Buffer[];
  queued: number;
  /** Body bytes written to the current backend, kept while a retry might need them; null once given up. */
  replay: Buffer[] | null;
  replayBytes: number;
  idempotent: boolean;
  be: BackendConn | null;
  /** A connection being opened for this exchange (not attached yet). */
  opening: BackendConn | null;
  node: Upstream | null;
  attempts: number;
  /** Backends that failed this request, avoided by its retries. */
  failed: Upstream[] | null;
  lastFailure: ProxyFailure | null;
  /** After a stale keep-alive connection failed: the next attempt opens a new connection. */
  forceFresh: boolean;
  staleRetries: number;
  sent: boolean;
  gotResponseBytes: boolean;
  /** The final response head (already sent to the client). */
  res: ResponseHead | null;
  resBody: BodyReader | null;
  /** Bytes after the end of the response: the backend connection cannot be reused. */
  backendOutOfStep: boolean;
  clientKeepAlive: boolean;
  dechunk: boolean;
  /** Writes de-chunked payload to the client (HTTP/1.0 client, chunked response); made once per such exchange. */
  dechunkSink: DataSink | null;
  /** The body is de-chunked and framed again for the client (a backend's lenient chunk framing, see lenient.ts). */
  rechunk: boolean;
  clientBlocked: boolean;
  /** A backend was asked for (the first dispatch happens once the read that carried the head is parsed). */
  dispatched: boolean;
  /** While waiting for a backend slot (max_conns) in `svc.queue`: since when; else -1. */
  queuedAt: number;
  /** Highpri said so (decided at the first dispatch): waits in the high-priority lane, served before normal ones. */
  highPriority: boolean;
  /** Throttle: ms to wait before asking for a backend (0: at once). */
  holdMs: number;
  /** Stats: when a backend took the request (performance.now()), for the `recent` report. */
  assignedMs: number;
  startMs: number;
  bodyBytesOut: number;
  /** buffer_uploads: the body on disk (complete once the client's body is done), sent from there; else null. */
  spool: Spool | null;
  /** The spool file being sent to the current backend. */
  spoolStream: ReadStream | null;
  /** When body buffering started (performance.now()), for the upload rate; 100 Continue sent by tsbal. */
  bufferStartMs: number;
  continueSent: boolean;
}

export interface Engine {
  /**
   * Milliseconds on a monotonic clock, refreshed by the sweep tick and by `tick()`. Deadlines are coarse (one
   * sweep period) on purpose: no timer per request, no clock read per event.
   */
  now: number;
  health: Map<string, UpstreamHealth>;
  /**
   * The running services (startProxy's list, replaced in place by a reload): who to tell when a backend's health
   * changes (upstream/transitions.ts).
   */
  services: readonly ServiceRuntime[];
  /** Per ip:port counters for the management port (Perlbal's NodeStats), shared across services like `health`. */
  nodeStats: Map<string, NodeStats>;
  /** ip:port → until when new connections skip the verify probe (Perlbal's 60 s NoVerify list). */
  noVerify: Map<string, number>;
  clients: Set<ClientConn>;
  backends: Set<BackendConn>;
  log: ConsolaInstance;
  /** Set by a graceful close: finish what is in flight, keep nothing alive. */
  draining: boolean;
  /** Recent backend (and, in tsbal run, HA) transitions for `tsbal status`. */
  transitions: TransitionRing;
  /** SERVER workers: the owner's worker processes, for `tsbal status` and /metrics; null: one process serves. */
  workers: (() => WorkersInfo) | null;
  sweep: ReturnType<typeof setInterval> | null;
  /** Called when the last client of a draining engine is gone. */
  onDrained: (() => void) | null;
  /**
   * Bumped by every reload commit (SIGHUP or a console command): a kept-alive client whose forwarding context (trust,
   * HEADER rules, blind_proxy) was made under an older one remakes it before its next request.
   */
  configGeneration: number;
  /** The management port's HTTP pages, for a management service that is a selector's target (set by startProxy). */
  managementPages: ((method: string, path: string) => Promise<{ head: string; body: string }>) | null;
  /** Scratch space heads are assembled in (used synchronously, one head at a time). */
  writer: HeadWriter;
  /** Where every backend socket reads into (onread): valid only during the callback that received it. */
  readBuffer: Buffer;
  /** The fields of the response head being handled (as short-lived as readBuffer, so reused: no arrays per response). */
  responseFields: Fields;
  /** Writes held until the end of this event-loop turn (`sendHeld`), one batch for every socket. */
  writes: WriteBatch;
  /** The key of `sticky` services without their own sticky_secret (StartProxyOptions.affinityKey). */
  affinityKey: Buffer;
  /**
   * How listeners are opened (SERVER workers, src/proxy/workers/): `serve` binds and accepts (one process), `worker`
   * binds with SO_REUSEPORT beside its sibling workers, `owner` binds nothing itself and gets a stand-in from
   * `ownerBind` (the workers accept).
   */
  listenMode: 'serve' | 'worker' | 'owner';
  ownerBind: ((addr: { host: string; port: number }) => Promise<Server>) | null;
  /** In the owner of workers: open client connections per listening service name, summed from the workers. */
  remoteClients: Map<string, number> | null;
  /** In a worker: its traffic's health transitions, for the owner to log (upstream/transitions.ts). */
  onTransition: ((h: UpstreamHealth, to: 'down' | 'up', text: string) => void) | null;
}

/**
 * What a service's config compiles to (compile.ts): replaced whole by a reload. Everything a reload must not
 * reset belongs in ServiceState instead; nothing is listed by hand.
 */
export interface ServiceConfig {
  opts: ReverseProxyOptions;
  limits: HeadLimits;
  backoff: BackoffPolicy;
  /** The pool's active checks, slow start, 5xx streak and all_down (upstream/check-spec.ts). */
  health: PoolHealthOptions;
  /** Keep-Alive `timeout=` value sent to clients, in whole seconds. */
  keepAliveTimeoutSec: number;
  /** The last lines of client response heads, pre-encoded. */
  suffixes: ResponseSuffixes;
  /** Opened (shared by path) by whoever runs the service: startProxy, or a reload at its commit. */
  accessLog: AccessLog | null;
  /** start_http_request hooks of the plugins registered on the service (AccessControl, Redirect), in order. */
  hooks: readonly RequestHook[];
  /** backend_client_assigned hooks (XFFExtras, Queues): fields set on the backend's request; null without them. */
  assign: AssignHooks | null;
  /** The Throttle plugin on a reverse_proxy (its counters start afresh on a reload); null without it. */
  throttle: ThrottleState | null;
  /** The Stats plugin's counters (reset by a reload); null without it. */
  pstats: PluginStats | null;
  /** Highpri's patterns; null without it. A matching request waits in the queue's high-priority lane (and counts in Stats). */
  highpri: HighpriPatterns | null;
  /**
   * For a selector: its rules and every service it may hand a request to (by name, filled in once every service
   * of the config exists); null for a reverse_proxy.
   */
  selector: { rules: SelectorRules; services: ReadonlyMap<string, ServiceRuntime> } | null;
  /** For a web_server: what it serves; null for other roles. */
  web: WebServerOptions | null;
  /** A management service reached through a selector: it answers with the management port's pages. */
  management: boolean;
  /** ENABLE in the config; DISABLE on the management port clears it (the listener closes, retryBind skips it). */
  enabled: boolean;
  /** Session affinity with its key and per-backend ids (upstream/affinity.ts); null when `sticky` is off. */
  sticky: Sticky | null;
  /**
   * enable_ssl: accepted connections do their TLS handshake here first. Built by the caller from the certificate
   * files (tls/attach.ts: I/O), at start and at every reload, so renewed certificates come with the new config.
   */
  tls: TlsListener | null;
  /** backend_ssl on the pool: backend connections speak TLS with these settings (tls/upstream.ts, by the caller). */
  backendTls: BackendTls | null;
  /** ssl_http2 on a TLS listener: HTTP/2 limits (h2/session.ts); null when only HTTP/1.1 is offered. */
  h2: H2Listener | null;
  /** The reproxy-URL cache (reproxy_cache_maxsize with enable_reproxy; emptied by a reload); null when off. */
  reproxyCache: ReproxyCache | null;
  /**
   * enable_reproxy's entry points (reproxy/serve.ts REPROXY_HANDLERS), set by compile.ts; null when off. Handed in
   * rather than imported, so relay.ts does not depend on reproxy/ (no import cycle through it).
   */
  reproxy: ReproxyHandlers | null;
}

/** What a running service holds across reloads: its identity, backends, connections' bookkeeping, listener, counters. */
export interface ServiceState {
  /** Exchanges and client connections point at the record: a reload updates it in place. */
  readonly name: string;
  readonly engine: Engine;
  /** The pool's backends; a reload keeps those that stay (idle connections, in-flight counts) and drains the rest. */
  nodes: Upstream[];
  /** The pool's balance_method, with its own state (round-robin position); kept unless the method changes. */
  balancer: Selector<Upstream>;
  /** Idle connections across nodes (backend_persist_cache and connect_ahead count these). */
  idleCount: number;
  /** connect_ahead spares being opened. */
  sparesOpening: number;
  server: Server | null;
  /** Set while the listen address is not (yet) bindable, e.g. a VIP not added yet. */
  bindError: NodeJS.ErrnoException | null;
  /** Counters for /metrics. */
  stats: ServiceStats;
  /** Reused for candidate selection, so picking a backend allocates nothing. */
  scratch: Upstream[];
  /** Requests waiting for a backend slot (max_conns), oldest first (exchange.ts queues and serves them). */
  queue: WaitQueue;
  /** A serveQueue is due on the next tick. */
  queueScheduled: boolean;
  /** queue_timeout 503s since the last warning about them, and when that was. */
  queueTimeoutsUnlogged: number;
  queueTimeoutLoggedAt: number;
  /** Its clients' HTTP/2 connections (h2/session.ts), told GOAWAY when a reload removes the service or at a stop. */
  h2Sessions: Set<H2Session>;
}

/** One service at run time: its compiled config (replaced on reload) and its state (kept). */
export interface ServiceRuntime extends ServiceConfig, ServiceState {}

export interface ReproxyHandlers {
  /** A backend answered with reproxy instructions: free it and serve what they name. */
  takeOver(x: Exchange, be: BackendConn, res: ResponseHead, rest: Buffer, bodyStart: number, ins: ReproxyInstruction): void;
  /** Answers from the reproxy-URL cache without a backend; false when nothing live is cached for the request. */
  fromCache(x: Exchange): boolean;
}

export type BackendPhase = 'connecting' | 'verifying' | 'idle' | 'busy' | 'tunnel' | 'closed';

export interface BackendConn {
  kind: 'backend';
  svc: ServiceRuntime;
  node: Upstream;
  socket: Socket;
  phase: BackendPhase;
  /** Requests this connection has carried (the verify probe does not count, as in Perlbal). */
  uses: number;
  /** The exchange this connection serves (busy) or is being opened for (connecting/verifying). */
  exchange: UpstreamUser<BackendConn> | null;
  /** The socket's error code, if it failed (ECONNREFUSED, ECONNRESET, ...). */
  errorCode: string | null;
  /** Deadline of the current phase (0: none), checked by the sweep. */
  deadline: number;
  /** While idle: close at this time (backend_idle_timeout, or earlier if the backend's Keep-Alive says so). */
  idleUntil: number;
  idleSince: number;
  /** The backend's `Keep-Alive: timeout=` hint from its last response, ms (-1: none). */
  hintTimeoutMs: number;
  /** Requests the backend said it still allows (Keep-Alive max), or -1. */
  hintMaxLeft: number;
  /** Passed the verify probe: from the backend's side it has been an idle keep-alive connection already. */
  verified: boolean;
  skipVerify: boolean;
  /** Opened as a connect_ahead spare (counted in `svc.sparesOpening` while opening). */
  spare: boolean;
  /** Response head collection while verifying or busy. */
  reader: HeadReader;
  verifyBody: BodyReader | null;
}

export interface Upstream extends UpstreamView {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  /** Configured weight (`weight=` of POOL ADD or the nodefile, or the `pool … weight` command); 0 drains it. */
  weight: number;
  /** The weight of the current pick (effectiveWeight), set by chooseUpstream for the policy. */
  weightNow: number;
  /** The policy's scratch (smooth weighted round robin's score). */
  lbScore: number;
  /** The pool's max_conns: requests in flight from this service beyond which it takes no more (0: no limit). */
  maxConns: number;
  /**
   * ready: takes requests. drain: takes no new ones (today: removed by a reload or `POOL … REMOVE`, its
   * connections finish what they carry, then close instead of idling). maint: nothing (not used yet).
   */
  admin: AdminState;
  /** Shared per ip:port across services, so a backend found dead by one is avoided by all. */
  health: UpstreamHealth;
  stats: NodeStats;
  /** Requests this service sent to this backend (Perlbal's node_used, shown by `show pool`). */
  used: number;
  /** Idle keep-alive connections of this service to this backend; the most recently used on top. */
  idle: BackendConn[];
  /** Connections being opened (connecting or verifying). */
  opening: number;
  /** Requests in flight from this service (leastconn, max_conns). */
  active: number;
}

/** One worker process as the owner sees it (`tsbal status`, /metrics). */
export interface WorkerInfo {
  index: number;
  /** null: between a death and its restart. */
  pid: number | null;
  state: 'ready' | 'starting';
  /** When this process started, ms since the epoch. */
  startedAt: number;
  /** How many times this slot's worker died and was started again. */
  restarts: number;
}

export interface WorkersInfo {
  configured: number;
  workers: WorkerInfo[];
}
