// Anycast mode inside `tsbal run` (cli/run.ts): what starts before the proxy (the answering copy of the VIP, so the
// proxy can bind it), what starts after it (the announcer), and the two places in the stop order: withdraw first,
// before the proxy drains; remove the addresses last, after it closed.
import type { ConsolaInstance } from 'consola';
import type { AnycastSettings } from '../config/anycast.ts';
import type { ProxyHandle } from '../proxy/index.ts';
import type { MetricFamily } from '../proxy/management/metrics.ts';
import { prepareAnycast, startAnnouncer, type Announcer, type AnycastStatus } from './announcer.ts';
import * as address from './address.ts';
import { anycastSettings } from '../config/anycast.ts';
import type { PerlbalConfig } from '../config/model.ts';
import { log as rootLog } from '../log.ts';

/** `tsbal anycast drain|resume|status` over the status socket (src/status/socket.ts passes these requests on). */
export type AnycastRequest = { cmd: 'anycast'; action: 'drain' | 'resume' | 'status'; by?: string };
export type AnycastAnswer = { ok: true; anycast: AnycastStatus } | { ok: false; msg: string };

export interface StopStep {
  name: string;
  close: (graceful: boolean) => Promise<void>;
}

export interface AnycastRun {
  /** Pushed onto run.ts's engines before the proxy's: closes after it (removes both copies of the VIP). */
  last: StopStep;
  /** Called once the proxy listens: starts announcing; returns the step that closes before the proxy (withdraw). */
  attach(proxy: ProxyHandle, log: ConsolaInstance): Promise<StopStep>;
  metrics(): MetricFamily[];
  status(): AnycastStatus | null;
  announcer(): Announcer | null;
  control(req: AnycastRequest): Promise<AnycastAnswer>;
}

/** The why of `--ha-dir` being refused, for run.ts. */
export const ANYCAST_NO_HA = 'anycast mode (SERVER anycast_vip) runs without heartbeat: remove --ha-dir (the two modes cannot be combined yet)';

export async function beginAnycast(settings: AnycastSettings): Promise<AnycastRun> {
  await prepareAnycast(settings);
  let announcer: Announcer | null = null;
  return {
    last: {
      name: 'anycast',
      close: async () => {
        if (announcer !== null) await announcer.close();
        else {
          await address.withdraw(settings).catch(() => undefined);
          await address.stopAnswering(settings).catch(() => undefined);
        }
      },
    },
    attach: async (proxy, log) => {
      announcer = await startAnnouncer({ settings, proxy, log });
      const a = announcer;
      return {
        name: 'anycast-withdraw',
        // A planned stop waits for the router; a stop "now" withdraws and goes on.
        close: async (graceful) => (graceful ? a.withdrawForStop() : void (await a.hold('a stop'))),
      };
    },
    metrics: () => announcer?.metrics() ?? [],
    status: () => announcer?.status() ?? null,
    announcer: () => announcer,
    control: async (req) => {
      if (announcer === null) return { ok: false, msg: 'anycast mode is still starting' };
      if (req.action === 'drain') return { ok: true, anycast: await announcer.hold(req.by ?? 'tsbal anycast drain') };
      if (req.action === 'resume') return { ok: true, anycast: await announcer.resume() };
      return { ok: true, anycast: announcer.status() };
    },
  };
}

/** run.ts: heartbeat's files are checked only outside anycast mode (it does not start heartbeat). */
export function checkHaUnlessAnycast<A extends { 'ha-dir'?: string }>(config: PerlbalConfig, args: A, checkHa: (args: A) => void, refuse: (message: string) => Error = (m) => new Error(m)): void {
  if (anycastSettings(config) === null) return checkHa(args);
  if (args['ha-dir'] !== undefined) throw refuse(ANYCAST_NO_HA);
}

/**
 * The supervisor's cleanup (cli/supervise.ts): whenever the engine exits, the announced copy goes, so a dead engine
 * never leaves the router sending a share of the flows into a closed port. A restarted engine announces again once
 * its services serve. Undefined outside anycast mode.
 */
export function withdrawOnEngineExit(config: PerlbalConfig): (() => Promise<void>) | undefined {
  const st = anycastSettings(config);
  if (st === null) return undefined;
  return async () => {
    try {
      if ((await address.withdraw(st)) === 'removed') rootLog.withTag('supervisor').warn(`anycast ${st.vip} withdrawn from ${st.dev} (the engine exited)`);
    } catch (e) {
      rootLog.withTag('supervisor').error(`anycast ${st.vip}: cannot withdraw after the engine exited: ${(e as Error).message}`);
    }
  };
}

/**
 * A reload keeps the anycast settings the process started with (the VIP is bound, announced and routed): a change
 * of them is said in the log, not applied. Returns the config unchanged, for run.ts's reload `load`.
 */
export function noteAnycastChange(started: AnycastSettings | null, next: PerlbalConfig, log: { warn(message: string): void }): PerlbalConfig {
  const now = anycastSettings(next);
  if (JSON.stringify(now) !== JSON.stringify(started)) {
    log.warn(`reload: the SERVER anycast_* settings changed since start; the process runs on with ${started === null ? 'anycast mode off' : `${started.vip} on ${started.dev}, require ${started.require}`}: restart tsbal to apply them`);
  }
  return next;
}
