// A two-node HA cluster in a fresh lab: backends in web1/web2, one node per load balancer (tsbal or real
// heartbeat, in any mix), and the measurements the e2e tests and bench/failover share.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HaStatus } from '../../src/ha/cluster.ts';
import type { HaImpl, HaNode, HaSettings, LbHost } from './hacluster.ts';
import { createHeartbeatNode, HEARTBEAT_LONG_DT_PERIOD_MS, prepareHeartbeatLab, type HeartbeatLab, type HeartbeatNode } from './heartbeat.ts';
import { watchAddresses } from './addrwatch.ts';
import { createLab, LAB_VIP, type Lab } from './netns.ts';
import { sleep, waitFor, wallNow } from './proc.ts';
import { createTsbalNode, type TsbalNode } from './tsbalnode.ts';
import { failuresBetween, startBackends, type Backends, type ClientLoop } from './web.ts';

export type AnyNode = TsbalNode | HeartbeatNode;

export interface HaPair {
  readonly lab: Lab;
  readonly settings: HaSettings;
  readonly nodes: Readonly<Record<LbHost, AnyNode>>;
  readonly backends: Backends;
  /** Kills every process, deletes the lab and the temp dirs. Safe to call twice and after failures. */
  dispose(): Promise<void>;
}

export const otherHost = (host: LbHost): LbHost => (host === 'lb1' ? 'lb2' : 'lb1');

export async function createPair(impls: Readonly<Record<LbHost, HaImpl>>, settings: HaSettings, options: { tsbalRunArgs?: readonly string[]; perlbalConf?: string } = {}): Promise<HaPair> {
  const lab = await createLab();
  let baseDir: string | null = null;
  let hbLab: HeartbeatLab | null = null;
  const dispose = async (): Promise<void> => {
    await lab.teardown();
    if (hbLab) await hbLab.remove();
    if (baseDir) await rm(baseDir, { recursive: true, force: true });
  };
  try {
    baseDir = await mkdtemp(join(tmpdir(), 'tsbal-ha-'));
    const backends = await startBackends(lab);
    const make = async (host: LbHost): Promise<AnyNode> => {
      if (impls[host] === 'tsbal') return createTsbalNode(lab, baseDir ?? '', host, settings, options.tsbalRunArgs, options.perlbalConf);
      hbLab ??= await prepareHeartbeatLab();
      return createHeartbeatNode(lab, hbLab, host, settings, { perlbal: true });
    };
    const lb1 = await make('lb1');
    const lb2 = await make('lb2');
    return { lab, settings, nodes: { lb1, lb2 }, backends, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** Polls (every 10 ms) until exactly `host` holds the VIP; returns the wall time it was first seen. */
export async function waitForSoleHolder(lab: Lab, host: LbHost, timeoutMs: number): Promise<number> {
  let last: string[] = [];
  return waitFor(
    `the VIP on ${host} alone`,
    async () => {
      last = await lab.holders();
      return last.length === 1 && last[0] === host ? wallNow() : undefined;
    },
    { timeoutMs, intervalMs: 10, describe: () => `holders [${last.join(', ')}]` },
  );
}

/** One GET to the VIP from the client namespace; the body names the backend, or null when it failed. */
export async function fetchViaVip(lab: Lab, timeoutMs = 1_000): Promise<string | null> {
  const result = await lab.exec('client', ['curl', '-s', '-f', '-m', String(timeoutMs / 1000), `http://${LAB_VIP}/`], {
    timeoutMs: timeoutMs + 2_000,
  });
  return result.code === 0 ? result.stdout.trim() : null;
}

/** Polls the VIP with short GETs until one succeeds; returns the backend's name. */
export async function waitServing(lab: Lab, timeoutMs: number): Promise<string> {
  return waitFor('an HTTP answer on the VIP', async () => (await fetchViaVip(lab, 300)) ?? undefined, {
    timeoutMs,
    intervalMs: 20,
    describe: async () => `VIP holders [${(await lab.holders()).join(', ')}]`,
  });
}

/** Whether the node has joined the cluster (heartbeat: logged comm up; tsbal: `ha status --json` says comm up, peer active). */
export async function hasJoined(node: AnyNode): Promise<boolean> {
  if (node.impl === 'heartbeat') {
    return /Comm_now_up\(\)/.test(await node.log());
  }
  const answer = await node.ha('status', ['--json']);
  if (answer.code !== 0) return false;
  const status = JSON.parse(answer.stdout) as Pick<HaStatus, 'commUp' | 'peer'>;
  return status.commUp && status.peer.status === 'active';
}

export async function waitJoined(node: AnyNode, timeoutMs: number): Promise<void> {
  await waitFor(`${node.impl} on ${node.host} to join the cluster`, async () => ((await hasJoined(node)) ? true : undefined), {
    timeoutMs,
    intervalMs: 100,
    describe: async () => (await node.log()).slice(-3_000),
  });
}

export interface FailoverSample {
  victim: LbHost;
  /** Wall-clock ms just before the SIGKILL. */
  killedAt: number;
  /** Kill → the VIP added to the survivor's eth0 (ms, the kernel's address event). */
  vipMs: number;
  /** How often the survivor added the VIP until it served (more than 1 means it flapped). */
  vipAdds: number;
  /** Kill → the first client request started after the kill that succeeded (its completion, ms). */
  servingMs: number;
  /** Client requests that failed between the kill (less one request timeout) and service coming back. */
  failedRequests: number;
  failureReasons: Record<string, number>;
}

/**
 * Crashes `victim` (a real heartbeat victim only once it advertises its configured deadtime) while `client` runs and measures until the survivor holds the VIP and serves.
 * Throws (with the survivor's log) when that takes longer than timeoutMs.
 */
export async function measureCrashFailover(pair: HaPair, client: ClientLoop, victim: LbHost, timeoutMs: number, clientTimeoutMs: number): Promise<FailoverSample> {
  const survivor = otherHost(victim);
  const node = pair.nodes[victim];
  const startedAt = node.impl === 'heartbeat' ? node.startedAt() : null;
  if (startedAt !== null) {
    // Until then its peer waits deadtime + 2 s: a different (and not the configured) failover time.
    await sleep(Math.max(0, startedAt + HEARTBEAT_LONG_DT_PERIOD_MS + 500 - wallNow()));
  }
  const watch = await watchAddresses(pair.lab, survivor);
  try {
    const killedAt = await node.crash();
    const vipSeen = waitForSoleHolder(pair.lab, survivor, timeoutMs).catch(async (error: Error) => {
      throw new Error(`${error.message}\n--- ${survivor} log:\n${(await pair.nodes[survivor].log()).slice(-4_000)}`);
    });
    const served = client.firstSuccessSince(killedAt, timeoutMs);
    const polledAt = await vipSeen;
    const first = await served;
    if (first === null) {
      const recent = client.records().slice(-5).map((record) => JSON.stringify(record)).join('\n');
      throw new Error(`VIP on ${survivor} but no request served within ${timeoutMs} ms of the kill; last records:\n${recent}`);
    }
    await sleep(Math.min(clientTimeoutMs + 50, 1_000)); // let requests in flight at the switch finish and be counted
    const vipAt = watch.first('added', LAB_VIP, killedAt)?.at ?? polledAt;
    const vipAdds = watch.events.filter((e) => e.kind === 'added' && e.address === LAB_VIP && e.at >= killedAt).length;
    const failed = failuresBetween(client.records(), killedAt - clientTimeoutMs, first.s);
    const failureReasons: Record<string, number> = {};
    for (const record of failed) if (!record.ok) failureReasons[record.err] = (failureReasons[record.err] ?? 0) + 1;
    return { victim, killedAt, vipMs: vipAt - killedAt, vipAdds, servingMs: first.e - killedAt, failedRequests: failed.length, failureReasons };
  } finally {
    watch.stop();
  }
}
