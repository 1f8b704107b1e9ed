// Anycast mode's I/O shell: every TICK_MS it asks decide.ts whether this node should announce the VIP, and when the
// answer changes it adds or deletes the announced copy (address.ts), logs the transition with its reason and notes
// it for `tsbal status`. A planned stop withdraws first and keeps serving for `anycast_withdraw_wait`.
import type { ConsolaInstance } from 'consola';
import type { AnycastSettings } from '../config/anycast.ts';
import type { ProxyHandle } from '../proxy/index.ts';
import type { MetricFamily } from '../proxy/management/metrics.ts';
import { noteTransition } from '../status/transitions.ts';
import * as address from './address.ts';
import { decideAnnounce, reasonWords, type AnnounceDecision, type AnnounceReason } from './decide.ts';
import { servicesOnVip } from './inputs.ts';

/**
 * The decision is taken at once when a backend goes down or up (the transition ring's `onNote`), and every TICK_MS
 * for what changes without a transition (the first check passing at start, an admin drain, a reload, a listener
 * bound). Not faster: on a loaded host each timer wake-up of an idle Node process costs about 0.15 ms of CPU, so a
 * 25 ms tick cost 13 ms of CPU per second, a 250 ms one about 1.5.
 */
export const TICK_MS = 250;
/** How often an announced address is checked to still be there (someone may delete it by hand). */
export const VERIFY_MS = 5000;

export interface AnycastStatus {
  vip: string;
  dev: string;
  require: 'all' | 'any';
  announced: boolean;
  /** The last decision's reason in words, and as a stable word. */
  reason: string;
  reasonCode: AnnounceReason['kind'];
  /** Wall clock of the last change of `announced`. */
  sinceMs: number;
  draining: boolean;
  heldBy: string | null;
  announcements: number;
  withdrawals: number;
  /** The last failed `ip` command, while the wanted state is not reached. */
  error: string | null;
}

export interface Announcer {
  status(): AnycastStatus;
  metrics(): MetricFamily[];
  /** `tsbal anycast drain`: withdraw and stay withdrawn (serving what still comes) until resume. */
  hold(by: string): Promise<AnycastStatus>;
  resume(): Promise<AnycastStatus>;
  /** Planned stop: withdraw now, then keep serving `withdrawWaitMs` while the router converges. */
  withdrawForStop(): Promise<void>;
  /** After the proxy closed: stop the loop, remove both copies. */
  close(): Promise<void>;
}

export interface AnnouncerOptions {
  settings: AnycastSettings;
  proxy: ProxyHandle;
  log: ConsolaInstance;
}

/** Starts anycast mode: the answering copy first (before the proxy binds the VIP), then the loop once `attach`ed. */
export async function prepareAnycast(settings: AnycastSettings): Promise<void> {
  if (!(await address.deviceExists(settings.dev))) {
    throw new Error(`anycast_dev ${settings.dev} does not exist (tsbal setup --anycast creates it; by hand: ip link add ${settings.dev} type dummy && ip link set ${settings.dev} up)`);
  }
  if (!(await address.canBindUnannounced(settings))) {
    throw new Error(`anycast_vip ${settings.vip}: net.ipv6.ip_nonlocal_bind is 0, so the service cannot listen on the VIP before it is announced, and it is announced only once the service listens (sysctl -w net.ipv6.ip_nonlocal_bind=1; tsbal setup --anycast writes it to /etc/sysctl.d/60-tsbal.conf)`);
  }
  await address.keepAnswering(settings);
}

export async function startAnnouncer(o: AnnouncerOptions): Promise<Announcer> {
  const { settings: st, proxy, log } = o;
  const what = `anycast ${st.vip}`;
  let announced = await address.isAnnounced(st);
  let last: AnnounceDecision | null = null;
  let sinceMs = Date.now();
  let draining = false;
  let heldBy: string | null = null;
  let announcements = 0;
  let withdrawals = 0;
  let error: string | null = null;
  let applying: Promise<void> | null = null;
  let closed = false;
  let lastVerify = Date.now();

  const decide = (): AnnounceDecision => decideAnnounce({ services: servicesOnVip(proxy, st.host), require: st.require, draining, heldBy });

  const apply = async (d: AnnounceDecision): Promise<void> => {
    const words = reasonWords(d.reason);
    try {
      if (d.announce) {
        await address.announce(st);
        announcements++;
        log.info(`${what} announced on ${st.dev} (${words})`);
      } else {
        const r = await address.withdraw(st);
        withdrawals++;
        log.warn(`${what} withdrawn from ${st.dev} (${words})${r === 'absent' ? '; it was not there' : ''}`);
      }
      announced = d.announce;
      sinceMs = Date.now();
      error = null;
      noteTransition(proxy.engine.transitions, 'anycast', `${what} ${d.announce ? 'announced' : 'withdrawn'} (${words})`);
    } catch (e) {
      const msg = (e as Error).message;
      if (error !== msg) log.error(`${what}: cannot ${d.announce ? 'announce' : 'withdraw'}: ${msg}`);
      error = msg;
    }
  };

  /** Takes the decision; applies it when it differs from what is on the interface. One `ip` at a time. */
  const tick = (): Promise<void> => {
    if (applying !== null) return applying;
    const d = decide();
    // A new reason without a transition (withdrawn: `not listening`, then `no healthy backend`) is logged once too;
    // a transition is logged by apply.
    if (last !== null && last.reason.kind !== d.reason.kind && d.announce === announced) {
      log.info(`${what} stays ${announced ? 'announced' : 'withdrawn'}: ${reasonWords(d.reason)}`);
    }
    last = d;
    const now = Date.now();
    const verify = announced && d.announce && now - lastVerify >= VERIFY_MS;
    if (d.announce === announced && error === null && !verify) return Promise.resolve();
    applying = (async () => {
      if (verify) {
        lastVerify = now;
        if (await address.isAnnounced(st)) return;
        log.warn(`${what} is no longer on ${st.dev} (removed by hand?): adding it again`);
      }
      await apply(d);
    })().finally(() => (applying = null));
    return applying;
  };

  if (!announced) log.info(`${what} on ${st.dev}: starting withdrawn (require ${st.require}); announced once the services on it can serve`);
  else log.info(`${what} is already on ${st.dev} (a restart): kept while the services on it can serve`);
  const timer = setInterval(() => void tick(), TICK_MS);
  timer.unref();
  const ring = proxy.engine.transitions;
  const previousOnNote = ring.onNote;
  // After the transition's own bookkeeping (the other services' hooks run after the note).
  ring.onNote = (t) => {
    previousOnNote?.(t);
    if (t.source === 'backend' && !closed) setImmediate(() => void tick());
  };
  await tick();

  const status = (): AnycastStatus => {
    const d = last ?? decide();
    return {
      vip: st.vip, dev: st.dev, require: st.require, announced, reason: reasonWords(d.reason), reasonCode: d.reason.kind, sinceMs,
      draining, heldBy, announcements, withdrawals, error,
    };
  };
  const settle = async (): Promise<void> => {
    // Bounded: a tick in flight, then the one that applies the new state.
    await tick();
    await tick();
  };

  return {
    status,
    metrics: () => metricFamilies(status()),
    hold: async (by) => {
      heldBy = by;
      await settle();
      return status();
    },
    resume: async () => {
      heldBy = null;
      await settle();
      return status();
    },
    withdrawForStop: async () => {
      draining = true;
      await settle();
      log.info(`${what}: planned stop, withdrawn; still serving for ${st.withdrawWaitMs} ms while the router converges`);
      await new Promise((r) => setTimeout(r, st.withdrawWaitMs));
    },
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      ring.onNote = previousOnNote;
      if (applying !== null) await applying;
      if (announced || error !== null) await address.withdraw(st).catch((e: Error) => log.error(`${what}: cannot withdraw: ${e.message}`));
      await address.stopAnswering(st).catch((e: Error) => log.error(`${what}: cannot remove the local route: ${e.message}`));
    },
  };
}

function metricFamilies(s: AnycastStatus): MetricFamily[] {
  const labels = { vip: s.vip, dev: s.dev };
  return [
    { name: 'tsbal_anycast_announced', help: 'The anycast VIP is on anycast_dev (FRR announces it)', type: 'gauge', samples: [{ labels, value: s.announced ? 1 : 0 }] },
    { name: 'tsbal_anycast_reason', help: 'Why the VIP is (not) announced: 1 for the current reason', type: 'gauge', samples: [{ labels: { ...labels, reason: s.reasonCode }, value: 1 }] },
    { name: 'tsbal_anycast_announcements_total', help: 'Times the VIP was added to anycast_dev', type: 'counter', samples: [{ labels, value: s.announcements }] },
    { name: 'tsbal_anycast_withdrawals_total', help: 'Times the VIP was removed from anycast_dev', type: 'counter', samples: [{ labels, value: s.withdrawals }] },
  ];
}
