// Active health checks: every backend address of every pool with checks on is checked on a schedule, idle ones
// included, from this one place. One check runs per ip:port and check spec, however many services use the pool (and,
// with a later multi-worker mode, once for all workers: the checker belongs to whoever owns the engine's health
// records). The answers go to health.ts (checkPassed / checkFailed), which decides; transitions.ts announces.
//
// Schedule: the next check starts `interval` after the previous one started, minus up to 10 % of jitter (so 100
// backends checked at 1 s do not all fire together and the worst case stays within fall × interval + timeout), and
// the first one at a random point within the first interval. A check still running when the next is due (a timeout
// longer than the interval) delays it until it ends.
//
// Plain HTTP checks go on one kept connection per target (health_check_reuse = on, check-kept.ts); TCP checks, TLS
// checks and health_check_reuse = off connect per check (runCheck below).
import { connect, type Socket } from 'node:net';
import { clockNow, type Engine } from '../engine.ts';
import type { ServiceRuntime } from '../service.ts';
import { describeCheck, expectedStatus, type CheckSpec } from './check-spec.ts';
import { checkFailed, checkPassed, settleSlowStart, type BackoffPolicy, type HealthTransition, type UpstreamHealth } from './health.ts';
import { announceTransition, announceWeight } from './transitions.ts';
import { connectBackendTls, type BackendTls } from '../tls/upstream.ts';
import { newKept, runKeptCheck, stopKept, type KeptConnection } from './check-kept.ts';
import { formatHostPort } from '../../config/perlbal/values.ts';

interface CheckTarget {
  /** `ip:port spec-id`. */
  key: string;
  host: string;
  port: number;
  spec: CheckSpec;
  /** backend_ssl on the pool: checks speak TLS too (verified like the traffic, so a bad certificate fails them). */
  tls: BackendTls | null;
  health: UpstreamHealth;
  backoff: BackoffPolicy;
  timer: ReturnType<typeof setTimeout> | null;
  socket: Socket | null;
  /** The HTTP request, built once (it depends only on the spec and the address). */
  request: Buffer;
  /** The answer's first bytes, for the status line (reused by every check of this target). */
  head: Buffer;
  startedAt: number;
  /** health_check_reuse (plain HTTP checks): the connection kept for the next check; null otherwise. */
  kept: KeptConnection | null;
  /** Seen by the latest sync (targets no service uses any more stop). */
  mark: number;
}

export interface HealthChecks {
  engine: Engine;
  targets: Map<string, CheckTarget>;
  random: () => number;
  generation: number;
  /** Addresses in slow start, for the sweep. */
  starting: Set<UpstreamHealth>;
  stopped: boolean;
  /**
   * SERVER workers: a worker checks nothing itself (`remote`), it applies the owner's results (applyRemoteCheck), so
   * each backend is checked once and every worker's health records follow the same answers.
   */
  remote: boolean;
  /** The owner: each check's result, to send to the workers. */
  onResult: ((key: string, passed: boolean, answer: string, durationMs: number) => void) | null;
}

export function newHealthChecks(engine: Engine, random: () => number = Math.random): HealthChecks {
  return { engine, targets: new Map(), random, generation: 0, starting: new Set(), stopped: false, remote: false, onResult: null };
}

/** In a worker: the owner's check of target `key` gave this answer (logged by the owner, so quiet here). */
export function applyRemoteCheck(hc: HealthChecks, key: string, passed: boolean, answer: string, durationMs: number): void {
  const t = hc.targets.get(key);
  if (t === undefined || hc.stopped) return;
  report(hc, t, passed, answer, clockNow(), durationMs);
}

/**
 * Makes the running checks match the services' pools: starts a check for each new (address, spec), stops those no
 * service uses any more, and tells each address's health record how many checks watch it and its slow start.
 * Cheap (a walk over the nodes); run at start, after a reload, and every second by the sweep so nodes added on the
 * management port or by a nodefile are picked up without hooks in that code.
 */
export function syncChecks(hc: HealthChecks, services: readonly ServiceRuntime[]): void {
  if (hc.stopped) return;
  const mark = ++hc.generation;
  const watched = new Map<UpstreamHealth, number>();
  for (const svc of services) {
    const spec = svc.health.check;
    for (const u of svc.nodes) {
      u.health.slowStartMs = svc.health.slowStartMs;
      if (spec === null) continue;
      const tls = svc.backendTls;
      const key = `${u.key} ${spec.id}${tls === null ? '' : ` tls ${tls.servername ?? ''} ${tls.verify ? 'verify' : 'noverify'}`}`;
      let t = hc.targets.get(key);
      if (t === undefined) {
        t = {
          key,
          host: u.host,
          port: u.port,
          spec,
          tls,
          health: u.health,
          backoff: svc.backoff,
          timer: null,
          socket: null,
          request: Buffer.from(spec.kind === 'http' ? checkRequest(spec, u.host, u.port, spec.reuse && tls === null) : '', 'latin1'),
          head: Buffer.alloc(HEAD_BYTES),
          startedAt: 0,
          kept: null,
          mark: 0,
        };
        hc.targets.set(key, t);
        schedule(hc, t, hc.random() * spec.intervalMs);
      }
      t.tls = tls;
      if (t.mark !== mark) watched.set(u.health, (watched.get(u.health) ?? 0) + 1);
      t.mark = mark;
    }
  }
  for (const [key, t] of hc.targets) {
    if (t.mark === mark) continue;
    stopTarget(t);
    hc.targets.delete(key);
  }
  for (const h of hc.engine.health.values()) h.checkers = watched.get(h) ?? 0;
}

export function stopChecks(hc: HealthChecks): void {
  hc.stopped = true;
  for (const t of hc.targets.values()) stopTarget(t);
  hc.targets.clear();
}

/** Sweep: slow starts move on (policies re-read the weight) and end. */
export function tickChecks(hc: HealthChecks, now: number): void {
  for (const h of hc.engine.health.values()) if (h.state === 'starting') hc.starting.add(h);
  for (const h of hc.starting) {
    if (h.state !== 'starting') {
      hc.starting.delete(h);
      continue;
    }
    if (settleSlowStart(h, now)) {
      hc.starting.delete(h);
      hc.engine.log.debug(`backend ${h.key}: slow start over, full weight`);
    }
    announceWeight(hc.engine, h);
  }
}

function stopTarget(t: CheckTarget): void {
  if (t.timer !== null) clearTimeout(t.timer);
  t.timer = null;
  t.socket?.destroy();
  t.socket = null;
  if (t.kept !== null) stopKept(t.kept);
}

function schedule(hc: HealthChecks, t: CheckTarget, delayMs: number): void {
  if (hc.remote) return;
  t.timer = setTimeout(() => {
    t.timer = null;
    runCheck(hc, t);
  }, Math.max(0, delayMs));
  t.timer.unref?.();
}

/** A worker's transition from the owner's check: the lb_ops hooks and idle connections as usual, the log line left to the owner. */
function quietly(engine: Engine, h: UpstreamHealth, t: HealthTransition, reason: string): void {
  announceTransition({ ...engine, log: engine.log.create({ level: -999 }), onTransition: null }, h, t, reason);
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** The request of an HTTP check: one request, then close, or (`keep`: health_check_reuse, plain) keep the connection. */
export function checkRequest(spec: CheckSpec, host: string, port: number, keep: boolean): string {
  const connection = keep ? '' : 'Connection: close\r\n';
  return `${spec.method} ${spec.path} HTTP/1.1\r\nHost: ${spec.host ?? formatHostPort({ host, port })}\r\nUser-Agent: tsbal-health-check\r\n${connection}\r\n`;
}

/** Bytes of an answer kept to find its status line (more than the 32 after which it is not HTTP). */
const HEAD_BYTES = 64;
/** Where every plain check reads into (onread): only the head matters, and it is copied out in the callback. */
const CHECK_READ_BUFFER = Buffer.alloc(HEAD_BYTES);

/**
 * The status of an answer's head so far (`HTTP/1.x ddd` then a space or CR), -1 while it may still come, -2 when it
 * is not an HTTP answer (32 bytes or a line without one). Bytes, not a string: latin1 would map them 1:1 anyway.
 */
export function headStatus(head: Buffer, length: number): number {
  if (
    length >= 13 &&
    head[0] === 0x48 && head[1] === 0x54 && head[2] === 0x54 && head[3] === 0x50 && head[4] === 0x2f && // HTTP/
    head[5] === 0x31 && head[6] === 0x2e && (head[7] === 0x30 || head[7] === 0x31) && head[8] === 0x20 && // 1.x
    isDigit(head[9]!) && isDigit(head[10]!) && isDigit(head[11]!) &&
    (head[12] === 0x20 || head[12] === 0x0d)
  ) {
    return (head[9]! - 0x30) * 100 + (head[10]! - 0x30) * 10 + (head[11]! - 0x30);
  }
  if (length >= 32 || head.subarray(0, length).includes(0x0a)) return -2;
  return -1;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * One check of one target: connect (TCP: that is all), send the request, read the status line, close. Plain
 * checks read through onread into one shared buffer (no stream chunk per read). The close stays a plain one (FIN),
 * as before: a reset (HAProxy's way) was not measurably cheaper here and backends would see it.
 */
function runCheck(hc: HealthChecks, t: CheckTarget): void {
  const spec = t.spec;
  if (spec.kind === 'http' && spec.reuse && t.tls === null) {
    t.kept ??= newKept(t.host, t.port, spec, t.request, (passed, answer, startedAt) => checkDone(hc, t, passed, answer, startedAt));
    runKeptCheck(t.kept);
    return;
  }
  if (t.kept !== null) {
    stopKept(t.kept); // backend_ssl set by a reload: TLS checks connect per check
    t.kept = null;
  }
  const startedAt = clockNow();
  t.startedAt = startedAt;
  const plain = t.tls === null;
  let connected = false;
  let headLength = 0;
  let done = false;
  const onHead = (chunk: Buffer, n: number): void => {
    if (done) return;
    const head = t.head;
    // As much of each read as the head keeps (HEAD_BYTES), as before: the first 64 bytes of every chunk.
    const take = Math.min(n, HEAD_BYTES, head.length - headLength);
    chunk.copy(head, headLength, 0, take);
    headLength += take;
    const status = headStatus(head, headLength);
    if (status >= 0) finish(expectedStatus(spec, status), String(status));
    else if (status === -2 || headLength === head.length) finish(false, 'not an HTTP answer');
  };
  const socket: Socket = plain
    ? connect({
        host: t.host,
        port: t.port,
        onread: {
          buffer: CHECK_READ_BUFFER,
          callback: (n: number, buf: Buffer): boolean => {
            onHead(buf, n);
            return !done;
          },
        },
      })
    : connectBackendTls(t.host, t.port, t.tls!);
  t.socket = socket;
  const finish = (passed: boolean, answer: string): void => {
    if (done) return;
    done = true;
    clearTimeout(timeout);
    socket.destroy();
    if (t.socket === socket) t.socket = null;
    checkDone(hc, t, passed, answer, startedAt);
  };
  const timeout = setTimeout(() => finish(false, `${connected ? 'no answer' : 'no connect'} within ${seconds(spec.timeoutMs)}`), spec.timeoutMs);
  timeout.unref?.();
  socket.on(plain ? 'connect' : 'secureConnect', () => {
    connected = true;
    if (spec.kind === 'tcp') finish(true, 'connected');
    else socket.write(t.request);
  });
  if (!plain) socket.on('data', (chunk: Buffer) => onHead(chunk, chunk.length));
  socket.on('error', (err: NodeJS.ErrnoException) => finish(false, `${connected ? '' : 'connect '}${err.code ?? err.message}`));
  socket.on('close', () => finish(false, connected ? 'closed without an answer' : 'connect closed'));
}

/** A check's verdict: to the health record, and the next check scheduled. */
function checkDone(hc: HealthChecks, t: CheckTarget, passed: boolean, answer: string, startedAt: number): void {
  if (hc.stopped || !hc.targets.has(t.key)) return;
  const now = clockNow();
  report(hc, t, passed, answer, now, now - startedAt);
  const interval = t.spec.intervalMs * (1 - 0.1 * hc.random());
  schedule(hc, t, startedAt + interval - now);
}

function report(hc: HealthChecks, t: CheckTarget, passed: boolean, answer: string, now: number, durationMs: number): void {
  hc.onResult?.(t.key, passed, answer, durationMs);
  const h = t.health;
  const announce = hc.remote ? quietly : announceTransition;
  h.lastCheckMs = durationMs;
  h.checks++;
  const spec = t.spec;
  if (passed) {
    const tr = checkPassed(h, now, spec.rise, answer);
    const ramp = h.state === 'starting' ? `; slow start over ${seconds(h.slowStartMs)}` : '';
    announce(hc.engine, h, tr, `check passed ${spec.rise} in a row${ramp}`);
    if (h.state === 'starting') hc.starting.add(h);
  } else {
    const tr = checkFailed(h, now, spec.fall, answer, t.backoff);
    announce(hc.engine, h, tr, `check ${describeCheck(spec)}: ${answer}, ${spec.fall} in a row`);
  }
}
