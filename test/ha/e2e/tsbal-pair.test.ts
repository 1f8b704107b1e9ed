// Two tsbal nodes (from source) in the namespace lab at 100 ms / 500 ms, with backends and a bounded client
// load on the VIP: crash failover, failback on and off, graceful handover, and partitions with a ping node.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { haTimeMs, LAB_UDP_PORT, type HaSettings, type LbHost } from '../../harness/hacluster.ts';
import { LAB_GATEWAY, type Lab, type LabHost } from '../../harness/netns.ts';
import { createPair, measureCrashFailover, waitForSoleHolder, waitJoined, waitServing, type HaPair } from '../../harness/pair.ts';
import { sleep, waitFor, wallNow } from '../../harness/proc.ts';
import { startClientLoop } from '../../harness/web.ts';

const base: HaSettings = { keepalive: '100ms', deadtime: '500ms', initdead: '1', autoFailback: 'on', preferred: 'lb1' };
const DEADTIME_MS = haTimeMs(base.deadtime);
const CLIENT_TIMEOUT_MS = 200;
/** The bound: VIP on the survivor and serving within deadtime + 300 ms of the kill. */
const FAILOVER_BOUND_MS = DEADTIME_MS + 300;

/** Brings up lb1 (preferred) first, then lb2, and waits until lb1 holds the VIP and lb2 has joined. */
async function startPreferredThenPeer(pair: HaPair): Promise<void> {
  await pair.nodes.lb1.start();
  await waitForSoleHolder(pair.lab, 'lb1', 5_000);
  await pair.nodes.lb2.start();
  await waitJoined(pair.nodes.lb2, 5_000);
}

/** Samples the VIP holders every 20 ms for durationMs; returns every sample where more than one host held it. */
async function doubleOwnership(lab: Lab, durationMs: number): Promise<Array<{ at: number; holders: LabHost[] }>> {
  const doubles: Array<{ at: number; holders: LabHost[] }> = [];
  const end = performance.now() + durationMs;
  while (performance.now() < end) {
    const holders = await lab.holders();
    if (holders.length > 1) doubles.push({ at: wallNow(), holders });
    await sleep(20);
  }
  return doubles;
}

/** Samples the VIP holders every 20 ms for durationMs; returns each change of holders, timed from the start. */
async function holderTrace(lab: Lab, durationMs: number): Promise<Array<{ atMs: number; holders: string }>> {
  const trace: Array<{ atMs: number; holders: string }> = [];
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    const holders = (await lab.holders()).join('+') || 'nobody';
    if (trace.at(-1)?.holders !== holders) trace.push({ atMs: Math.round(performance.now() - start), holders });
    await sleep(20);
  }
  return trace;
}

const showTrace = (trace: Array<{ atMs: number; holders: string }>): string => trace.map((e) => `${e.holders}@${e.atMs}ms`).join(' > ');

/**
 * Cuts lb1 (the VIP's home) off from lb2 and the ping node until it has declared lb2 dead and lb2 holds the VIP
 * alone, then heals the link. Returns once the link is back up, with when lb1 hears its ping node again (ms since the
 * heal; the first reply can wait for ARP to resolve the ping node again, which bcast heartbeats do not need).
 */
async function partitionHome(pair: HaPair): Promise<{ pingBackMs: Promise<number> }> {
  const lb1 = pair.nodes.lb1;
  const count = async (pattern: RegExp): Promise<number> => ((await lb1.log()).match(pattern) ?? []).length;
  const PING_UP = /ping node \S+ is up again/g;
  const [peerDeaths, pingUps] = [await count(/node lb2: is dead/g), await count(PING_UP)];
  await pair.lab.setLink('lb1', false);
  try {
    await waitFor('lb1 to declare lb2 dead', async () => ((await count(/node lb2: is dead/g)) > peerDeaths ? true : undefined), { timeoutMs: 4 * DEADTIME_MS, intervalMs: 10 });
    await waitForSoleHolder(pair.lab, 'lb2', 4 * DEADTIME_MS);
    expect(await waitServing(pair.lab, 1_000)).toMatch(/^web[12]$/);
  } finally {
    await pair.lab.setLink('lb1', true);
  }
  const healedAt = performance.now();
  const pingBackMs = waitFor('lb1 to hear its ping node again', async () => ((await count(PING_UP)) > pingUps ? Math.round(performance.now() - healedAt) : undefined), { timeoutMs: 3_000, intervalMs: 5 });
  return { pingBackMs };
}

/**
 * The race behind a split brain seen 1 run in 6: after the heal, lb1's ping node answered before lb2's next heartbeat
 * arrived, and lb1 took over from the "dead" lb2. Here that order is certain: lb1 drops lb2's heartbeat packets from
 * the heal until it has heard its ping node again. lb1 must never take over, the VIP must never have two holders,
 * and it ends on `finalHolder` (lb1 with auto_failback on, through the handshake; lb2 with it off).
 * (Whether lb1 holds the VIP when cut off, as when run alone, or lb2 already does after an earlier test.)
 */
async function pingBeforePeerHeal(pair: HaPair, finalHolder: LbHost): Promise<void> {
  const lb1 = pair.nodes.lb1;
  const count = async (pattern: RegExp): Promise<number> => ((await lb1.log()).match(pattern) ?? []).length;
  const PEER_DEAD = /node lb2: is dead/g;
  const PEER_BACK = /Cluster node lb2 returning after partition/g;
  const PING_DEAD = /ping node \S+ is dead/g;
  const PING_UP = /ping node \S+ is up again/g;
  const TAKEOVER = /Resources being acquired/g;
  const [peerDeaths, pingDeaths] = [await count(PEER_DEAD), await count(PING_DEAD)];
  await pair.lab.setLink('lb1', false);
  let watch: ReturnType<typeof doubleOwnership> | null = null;
  try {
    // lb1 must see itself cut off (lb2 dead, and its ping node too) before the heal, or there is nothing to race.
    await waitFor('lb1 to declare lb2 and its ping node dead', async () => ((await count(PEER_DEAD)) > peerDeaths && (await count(PING_DEAD)) > pingDeaths ? true : undefined), {
      timeoutMs: 4 * DEADTIME_MS,
      intervalMs: 10,
    });
    await waitForSoleHolder(pair.lab, 'lb2', 4 * DEADTIME_MS);
    const [pingUps, peerReturns, takeovers] = [await count(PING_UP), await count(PEER_BACK), await count(TAKEOVER)];
    await pair.lab.dropUdp('lb1', 'lb2', LAB_UDP_PORT, true);
    watch = doubleOwnership(pair.lab, 4 * DEADTIME_MS);
    await pair.lab.setLink('lb1', true);
    await waitFor('lb1 to hear its ping node again', async () => ((await count(PING_UP)) > pingUps ? true : undefined), { timeoutMs: 3_000, intervalMs: 5 });
    expect(await count(PEER_BACK), 'lb1 heard lb2 before its ping node: the race was not set up').toBe(peerReturns);
    await pair.lab.dropUdp('lb1', 'lb2', LAB_UDP_PORT, false);
    const doubles = await watch;
    expect(doubles, `never two VIP holders after the heal\n${doubles.length > 0 ? await clusterReport(pair) : ''}`).toEqual([]);
    await waitForSoleHolder(pair.lab, finalHolder, 2 * DEADTIME_MS).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await clusterReport(pair)}`);
    });
    expect(await count(TAKEOVER), `lb1 took over from lb2\n${await clusterReport(pair)}`).toBe(takeovers);
    expect(await waitServing(pair.lab, 1_000)).toMatch(/^web[12]$/);
  } finally {
    await pair.lab.dropUdp('lb1', 'lb2', LAB_UDP_PORT, false);
    await pair.lab.setLink('lb1', true);
    await watch?.catch(() => undefined);
  }
}

/** Both nodes' `ha status` and log tails, for failure messages. */
async function clusterReport(pair: HaPair): Promise<string> {
  const parts: string[] = [];
  for (const host of ['lb1', 'lb2'] as const) {
    const node = pair.nodes[host];
    const status = node.impl === 'tsbal' ? (await node.ha('status')).stdout : '';
    parts.push(`--- ${host} status\n${status}--- ${host} log\n${(await node.log()).slice(-2_500)}`);
  }
  return parts.join('\n');
}

async function restart(pair: HaPair, host: LbHost): Promise<void> {
  await pair.nodes[host].start();
  await waitJoined(pair.nodes[host], 5_000);
}

describe('tsbal pair, auto_failback on', () => {
  let pair: HaPair;
  beforeAll(async () => {
    pair = await createPair({ lb1: 'tsbal', lb2: 'tsbal' }, base);
    await startPreferredThenPeer(pair);
  }, 20_000);
  afterAll(async () => {
    await pair?.dispose();
  });

  test('kill -9 of the active node under client load: VIP on lb2 and serving within deadtime + 300 ms', async () => {
    const client = await startClientLoop(pair.lab, { intervalMs: 10, timeoutMs: CLIENT_TIMEOUT_MS, maxDurationMs: 15_000, maxRequests: 1_500 });
    try {
      expect(await client.firstSuccessSince(0, 3_000)).not.toBeNull();
      const sample = await measureCrashFailover(pair, client, 'lb1', 5_000, CLIENT_TIMEOUT_MS);
      expect(await pair.lab.holders()).toEqual(['lb2']);
      expect(sample.servingMs, `kill → serving must be < ${FAILOVER_BOUND_MS} ms; got ${JSON.stringify(sample)}`).toBeLessThan(FAILOVER_BOUND_MS);
      // Serving again means serving for good: nothing fails after the first success.
      await sleep(500);
      const lateFailures = client.records().filter((record) => !record.ok && record.s > wallNow() - 400);
      expect(lateFailures).toEqual([]);
    } finally {
      await client.stop();
    }
  });

  test('fails back to lb1 when it returns, never with both holding the VIP', async () => {
    expect(await pair.lab.holders()).toEqual(['lb2']);
    const watch = doubleOwnership(pair.lab, 3_000);
    await restart(pair, 'lb1');
    await waitForSoleHolder(pair.lab, 'lb1', 3_000);
    expect(await watch).toEqual([]);
    expect(await waitServing(pair.lab, 1_000)).toMatch(/^web[12]$/);
  });

  test('graceful stop (SIGTERM) of the holder moves the VIP at once, before deadtime', async () => {
    const stoppedAt = wallNow();
    const stopping = pair.nodes.lb1.stop();
    const seenAt = await waitForSoleHolder(pair.lab, 'lb2', 3_000);
    await stopping;
    expect(seenAt - stoppedAt).toBeLessThan(DEADTIME_MS);
    expect(await waitServing(pair.lab, 1_000)).toMatch(/^web[12]$/);
    await restart(pair, 'lb1');
    await waitForSoleHolder(pair.lab, 'lb1', 3_000);
  });
});

describe('tsbal pair, auto_failback off', () => {
  let pair: HaPair;
  beforeAll(async () => {
    pair = await createPair({ lb1: 'tsbal', lb2: 'tsbal' }, { ...base, autoFailback: 'off' });
    await startPreferredThenPeer(pair);
  }, 20_000);
  afterAll(async () => {
    await pair?.dispose();
  });

  test('the VIP stays on lb2 after lb1 returns', async () => {
    await pair.nodes.lb1.crash();
    await waitForSoleHolder(pair.lab, 'lb2', FAILOVER_BOUND_MS + 2_000);
    await restart(pair, 'lb1');
    // Three deadtimes after the rejoin is far beyond any handshake; the VIP must not have moved.
    const doubles = doubleOwnership(pair.lab, 3 * DEADTIME_MS);
    expect(await doubles).toEqual([]);
    expect(await pair.lab.holders()).toEqual(['lb2']);
  });
});

describe('tsbal pair with a ping node, partitioned, auto_failback on', () => {
  let pair: HaPair;
  beforeAll(async () => {
    pair = await createPair({ lb1: 'tsbal', lb2: 'tsbal' }, { ...base, ping: [LAB_GATEWAY] });
    await startPreferredThenPeer(pair);
  }, 20_000);
  afterAll(async () => {
    await pair?.lab.setLink('lb1', true).catch(() => undefined);
    await pair?.dispose();
  });

  test('the home node cut off: the VIP moves to lb2; after the heal it returns to lb1, never held by both', async () => {
    const takeovers = async (): Promise<number> => ((await pair.nodes.lb1.log()).match(/Resources being acquired/g) ?? []).length;
    const takeoversBefore = await takeovers();
    const { pingBackMs } = await partitionHome(pair);
    const trace = await holderTrace(pair.lab, 3_000);
    const pingBack = await pingBackMs;
    const report = async (): Promise<string> => `holders after the heal: ${showTrace(trace)}; lb1 heard its ping node ${pingBack} ms after the heal\n${await clusterReport(pair)}`;
    expect(trace.filter((e) => e.holders.includes('+')), await report()).toEqual([]);
    expect(trace.at(-1)?.holders, await report()).toBe('lb1');
    // lb1 trusts its link once its ping node has answered for lb2's dead time; the stable report and the handshake
    // then take a few keepalives at most.
    const back = trace.find((e) => e.holders === 'lb1')?.atMs ?? Infinity;
    expect(back - pingBack, await report()).toBeGreaterThanOrEqual(DEADTIME_MS - 20);
    expect(back - pingBack, await report()).toBeLessThan(DEADTIME_MS + 3 * haTimeMs(base.keepalive));
    console.log(`partition heal, auto_failback on: ${showTrace(trace)}; ping node answered lb1 ${pingBack} ms after the heal`);
    expect(await takeovers(), `lb1 must get the VIP back through the handshake, not a takeover\n${await report()}`).toBe(takeoversBefore);
    expect(await waitServing(pair.lab, 1_000)).toMatch(/^web[12]$/);
  }, 15_000);

  test('a cut-off home node whose ping node answers again before its peer does never takes over, and gets the VIP back through the handshake', () => pingBeforePeerHeal(pair, 'lb1'), 15_000);
});

describe('tsbal pair with a ping node, partitioned, auto_failback off', () => {
  let pair: HaPair;
  beforeAll(async () => {
    pair = await createPair({ lb1: 'tsbal', lb2: 'tsbal' }, { ...base, autoFailback: 'off', ping: [LAB_GATEWAY] });
    await startPreferredThenPeer(pair);
  }, 20_000);
  afterAll(async () => {
    await pair?.lab.setLink('lb1', true).catch(() => undefined);
    await pair?.lab.setLink('lb2', true).catch(() => undefined);
    await pair?.dispose();
  });

  test('a standby cut off from the network (ping node unreachable) never takes the VIP', async () => {
    await pair.lab.setLink('lb2', false);
    try {
      // lb2 sees lb1 dead after deadtime; it must see that it is the one cut off and stay passive. (Caught a race:
      // lb2 declared lb1 dead just before its ping node, took the VIP, and released it ~70 ms later as isolated.)
      const doubles = await doubleOwnership(pair.lab, 4 * DEADTIME_MS);
      expect(doubles).toEqual([]);
      expect(await pair.lab.holders()).toEqual(['lb1']);
    } finally {
      await pair.lab.setLink('lb2', true);
    }
    await sleep(2 * DEADTIME_MS);
    expect(await pair.lab.holders()).toEqual(['lb1']);
    expect(await waitServing(pair.lab, 1_000)).toMatch(/^web[12]$/);
  });

  test('an active node cut off releases the VIP, the connected peer takes it and keeps it after healing', async () => {
    await partitionHome(pair);
    // (Caught: after the heal, messages retransmitted from the partition were acted on as current state and both
    // nodes ended stable with nobody holding the VIP. Then, 1 run in 6: the ping node answered lb1 before lb2's next
    // heartbeat did, lb1 took over from the "dead" lb2, and both held the VIP for 10 s of crossed auto_failbacks.)
    const trace = await holderTrace(pair.lab, 4 * DEADTIME_MS);
    expect(showTrace(trace).replace(/@\d+ms/g, ''), `only lb2 may hold the VIP after healing: ${showTrace(trace)}\n${await clusterReport(pair)}`).toBe('lb2');
    expect(await waitServing(pair.lab, 1_000)).toMatch(/^web[12]$/);
  });

  test('a cut-off node whose ping node answers again before its peer does waits to hear the peer instead of taking over', () => pingBeforePeerHeal(pair, 'lb2'), 15_000);

  test('a holder stalled (SIGSTOP) past deadping while its peer was cut off: after the heal one node holds the VIP and serves', async () => {
    // Caught with the test above's first form: lb2, paused across lb1's heal, woke to stale ping replies and a dead
    // lb1 and released as cut off; lb1 had released too, and then nobody held the VIP for good.
    const lb1 = pair.nodes.lb1;
    const count = async (pattern: RegExp): Promise<number> => ((await lb1.log()).match(pattern) ?? []).length;
    const [peerDeaths, pingDeaths, pingUps] = [await count(/node lb2: is dead/g), await count(/ping node \S+ is dead/g), await count(/ping node \S+ is up again/g)];
    await pair.lab.setLink('lb1', false);
    let paused = false;
    try {
      await waitFor('lb1 to declare lb2 and its ping node dead', async () => ((await count(/node lb2: is dead/g)) > peerDeaths && (await count(/ping node \S+ is dead/g)) > pingDeaths ? true : undefined), {
        timeoutMs: 4 * DEADTIME_MS,
        intervalMs: 10,
      });
      await waitForSoleHolder(pair.lab, 'lb2', 4 * DEADTIME_MS);
      await pair.lab.killAll('lb2', 'SIGSTOP');
      paused = true;
      await sleep(DEADTIME_MS + 100); // past lb2's deadping, so it wakes to stale ping replies
      await pair.lab.setLink('lb1', true);
      // Wake lb2 as soon as lb1 hears its ping node: lb1 still waits to trust its link, and hears lb2 first.
      await waitFor('lb1 to hear its ping node again', async () => ((await count(/ping node \S+ is up again/g)) > pingUps ? true : undefined), { timeoutMs: 3_000, intervalMs: 5 });
      await pair.lab.killAll('lb2', 'SIGCONT');
      paused = false;
      // Never two holders; and once lb2 has acted on what it saw and lb1 trusts its link again, exactly one.
      const doubles = await doubleOwnership(pair.lab, 3 * DEADTIME_MS);
      expect(doubles, `two VIP holders after the stall\n${doubles.length > 0 ? await clusterReport(pair) : ''}`).toEqual([]);
      const holder = await waitFor('one VIP holder after the stall', async () => {
        const holders = await pair.lab.holders();
        return holders.length === 1 ? holders[0] : undefined;
      }, { timeoutMs: 2 * DEADTIME_MS, intervalMs: 20, describe: () => clusterReport(pair) });
      await sleep(DEADTIME_MS);
      expect(await pair.lab.holders()).toEqual([holder]);
      expect(await waitServing(pair.lab, 1_000)).toMatch(/^web[12]$/);
    } finally {
      if (paused) await pair.lab.killAll('lb2', 'SIGCONT');
      await pair.lab.setLink('lb1', true);
    }
  }, 20_000);
});
