// Active health checks: every backend address of every pool with checks on is checked on a schedule, idle ones
// included, from this one place. One check runs per ip:port and check spec, however many services use the pool (and,
// with a later multi-worker mode, once for all workers: the checker belongs to whoever owns the engine's health
// records). The answers go to health.ts (checkPassed / checkFailed), which decides; transitions.ts announces.
//
// Schedule: the next check starts `interval` after the previous one started, minus up to 10 % of jitter (so 100
// backends checked at 1 s do not all fire together and the worst case stays within fall × interval + timeout), and
// the first one at a random point within the first interval. A check still running when the next is due (a timeout
// longer than the interval) delays it until it ends.
import { connect, type Socket } from 'node:net';
import { clockNow, type Engine } from '../engine.ts';
import type { ServiceRuntime } from '../service.ts';
import { describeCheck, expectedStatus, type CheckSpec } from './check-spec.ts';
import { checkFailed, checkPassed, settleSlowStart, type BackoffPolicy, type UpstreamHealth } from './health.ts';
import { announceTransition, announceWeight } from './transitions.ts';
import { connectBackendTls, type BackendTls } from '../tls/upstream.ts';

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
  startedAt: number;
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
}

export function newHealthChecks(engine: Engine, random: () => number = Math.random): HealthChecks {
  return { engine, targets: new Map(), random, generation: 0, starting: new Set(), stopped: false };
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
        t = { key, host: u.host, port: u.port, spec, tls, health: u.health, backoff: svc.backoff, timer: null, socket: null, startedAt: 0, mark: 0 };
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
}

function schedule(hc: HealthChecks, t: CheckTarget, delayMs: number): void {
  t.timer = setTimeout(() => {
    t.timer = null;
    runCheck(hc, t);
  }, Math.max(0, delayMs));
  t.timer.unref?.();
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** The request of an HTTP check: one request, then close. */
export function checkRequest(spec: CheckSpec, host: string, port: number): string {
  return `${spec.method} ${spec.path} HTTP/1.1\r\nHost: ${spec.host ?? `${host}:${port}`}\r\nUser-Agent: tsbal-health-check\r\nConnection: close\r\n\r\n`;
}

/** One check of one target: connect (TCP: that is all), send the request, read the status line, close. */
function runCheck(hc: HealthChecks, t: CheckTarget): void {
  const spec = t.spec;
  const startedAt = clockNow();
  t.startedAt = startedAt;
  const socket: Socket = t.tls === null ? connect({ host: t.host, port: t.port, noDelay: true }) : connectBackendTls(t.host, t.port, t.tls);
  t.socket = socket;
  let connected = false;
  let head = '';
  let done = false;
  const finish = (passed: boolean, answer: string): void => {
    if (done) return;
    done = true;
    clearTimeout(timeout);
    socket.destroy();
    if (t.socket === socket) t.socket = null;
    if (hc.stopped || !hc.targets.has(t.key)) return;
    const now = clockNow();
    report(hc, t, passed, answer, now, now - startedAt);
    const interval = spec.intervalMs * (1 - 0.1 * hc.random());
    schedule(hc, t, startedAt + interval - now);
  };
  const timeout = setTimeout(() => finish(false, `${connected ? 'no answer' : 'no connect'} within ${seconds(spec.timeoutMs)}`), spec.timeoutMs);
  timeout.unref?.();
  socket.on(t.tls === null ? 'connect' : 'secureConnect', () => {
    connected = true;
    if (spec.kind === 'tcp') finish(true, 'connected');
    else socket.write(checkRequest(spec, t.host, t.port), 'latin1');
  });
  socket.on('data', (chunk: Buffer) => {
    head += chunk.toString('latin1', 0, Math.min(chunk.length, 64));
    const m = /^HTTP\/1\.[01] (\d{3})[ \r]/.exec(head);
    if (m !== null) {
      const status = Number(m[1]);
      finish(expectedStatus(spec, status), String(status));
    } else if (head.length >= 32 || head.includes('\n')) {
      finish(false, 'not an HTTP answer');
    }
  });
  socket.on('error', (err: NodeJS.ErrnoException) => finish(false, `${connected ? '' : 'connect '}${err.code ?? err.message}`));
  socket.on('close', () => finish(false, connected ? 'closed without an answer' : 'connect closed'));
}

function report(hc: HealthChecks, t: CheckTarget, passed: boolean, answer: string, now: number, durationMs: number): void {
  const h = t.health;
  h.lastCheckMs = durationMs;
  h.checks++;
  const spec = t.spec;
  if (passed) {
    const tr = checkPassed(h, now, spec.rise, answer);
    const ramp = h.state === 'starting' ? `; slow start over ${seconds(h.slowStartMs)}` : '';
    announceTransition(hc.engine, h, tr, `check passed ${spec.rise} in a row${ramp}`);
    if (h.state === 'starting') hc.starting.add(h);
  } else {
    const tr = checkFailed(h, now, spec.fall, answer, t.backoff);
    announceTransition(hc.engine, h, tr, `check ${describeCheck(spec)}: ${answer}, ${spec.fall} in a row`);
  }
}
