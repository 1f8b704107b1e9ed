// Jitter on the active node's heartbeats, as issue 14 measured it: two tsbal nodes (ucast, sha1, keepalive 100 ms,
// deadtime 500 ms, auto_failback on), lb1's heartbeats to lb2 delayed by normal(400 ms, 300 ms) each (more than the
// deadtime, and reordered), a client requesting the VIP every 50 ms. lb2 then declares lb1 dead now and then and takes
// the VIP for a moment (the issue: 0.4-0.6 s in 2 of 6 runs). That is defensible; costing a client a request is not:
// whoever keeps the VIP afterwards re-announces it, and the taker stops announcing once it hears the home node
// again, so no client is left on a stale ARP entry. Each run also stalls lb1's heartbeats once for 650 ms, so that
// every run has at least one such takeover to prove it on.
//
// What a takeover still costs: each time the client's ARP entry for the VIP moves to the other node's MAC (to lb2 at
// its takeover, back to lb1 when lb1 re-announces), a TCP connection in flight at that moment reaches a node that
// does not know it and is reset. So the test pins that every failed request was in flight across such a flip (a
// tshark capture on the client), none failed anywhere else, and prints how many there were.
//
// The kernel has no sch_netem: the delay is a UDP relay (test/harness/udp-delay-relay.ts) in lb1's namespace behind
// an nft DNAT rule on lb1's output to lb2:694. TSBAL_JITTER_RUNS (default 3) and TSBAL_JITTER_MS (default 12000).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { LAB_UDP_PORT } from '../../harness/hacluster.ts';
import { LAB_ADDRESSES, LAB_VIP, type Lab } from '../../harness/netns.ts';
import { createPair, waitForSoleHolder, waitJoined, type HaPair } from '../../harness/pair.ts';
import { sleep, waitFor, wallNow, type ProcHandle } from '../../harness/proc.ts';
import { failuresBetween, startClientLoop, type ClientRecord } from '../../harness/web.ts';

const RUNS = Number(process.env.TSBAL_JITTER_RUNS ?? 3);
const JITTER_MS = Number(process.env.TSBAL_JITTER_MS ?? 12_000);
const STALL_AT_MS = 4_000;
const STALL_MS = 650;
/** After the jitter stops: lb1 alone again, and the client keeps going long enough to meet a stale ARP entry. */
const SETTLE_MS = 3_000;
const RELAY_PORT = 7694;
const RELAY_SOURCE_PORT = 40694;
const CONTROL_PORT = 7695;

const RELAY = join(import.meta.dir, '../../harness/udp-delay-relay.ts');

let pair: HaPair | null = null;
let relay: ProcHandle | null = null;

/** One command to the relay (from inside lb1's namespace); returns its JSON answer. */
async function tellRelay(lab: Lab, command: string): Promise<Record<string, unknown>> {
  const before = relay!.stdout().split('\n').length;
  await lab.exec('lb1', ['bash', '-c', `printf '%s' "$1" > /dev/udp/127.0.0.1/${CONTROL_PORT}`, 'tell', command]);
  return waitFor(`the relay's answer to '${command}'`, () => {
    const lines = relay!.stdout().split('\n').slice(before - 1).filter((l) => l.startsWith('{'));
    const hit = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((j) => j.cmd === command);
    return hit;
  }, { timeoutMs: 5_000, intervalMs: 20 });
}

beforeAll(async () => {
  pair = await createPair(
    { lb1: 'tsbal', lb2: 'tsbal' },
    {
      keepalive: '100ms',
      deadtime: '500ms',
      initdead: '1',
      autoFailback: 'on',
      preferred: 'lb1',
      media: [`ucast eth0 ${LAB_ADDRESSES.lb1}`, `ucast eth0 ${LAB_ADDRESSES.lb2}`],
    },
  );
  const { lab } = pair;
  // The relay and the rule come first: a UDP flow that existed before a DNAT rule keeps its conntrack entry un-NATed.
  relay = lab.spawn('lb1', [process.execPath, RELAY, '--listen-port', String(RELAY_PORT), '--to', `${LAB_ADDRESSES.lb2}:${LAB_UDP_PORT}`, '--source-port', String(RELAY_SOURCE_PORT), '--control-port', String(CONTROL_PORT), '--max-seconds', String(Math.ceil((RUNS * (JITTER_MS + SETTLE_MS + 15_000)) / 1000) + 120), '--max-packets', '200000'], { label: 'udp delay relay' });
  await waitFor('the relay', () => (relay!.stdout().includes('relay ready') ? true : undefined), { timeoutMs: 15_000, intervalMs: 20 });
  const rules =
    'table ip lab_jitter {\n  chain out {\n    type nat hook output priority -100;\n' +
    `    ip daddr ${LAB_ADDRESSES.lb2} udp dport ${LAB_UDP_PORT} udp sport != ${RELAY_SOURCE_PORT} dnat to ${LAB_ADDRESSES.lb1}:${RELAY_PORT}\n  }\n}\n`;
  const nft = await lab.exec('lb1', ['nft', '-f', '-'], { input: rules });
  if (nft.code !== 0) throw new Error(`nft: ${nft.stderr}`);
  await pair.nodes.lb1.start();
  await waitForSoleHolder(lab, 'lb1', 15_000);
  await pair.nodes.lb2.start();
  await waitJoined(pair.nodes.lb2, 15_000);
  // lb1's heartbeats really go through the relay.
  const stats = await tellRelay(lab, 'stats');
  if (!((stats.forwarded as number) > 0)) throw new Error(`the relay forwarded nothing: ${JSON.stringify(stats)}`);
}, 60_000);

afterAll(async () => {
  relay?.kill('SIGKILL');
  await pair?.dispose();
}, 30_000);

/** Samples the VIP holders every 20 ms until `stop()`; each change with its time (ms from `origin`). */
function traceHolders(lab: Lab, origin: number): { stop(): Promise<string[]> } {
  const trace: string[] = [];
  let running = true;
  const done = (async () => {
    let last = '';
    for (let i = 0; running && i < 10_000; i++) {
      const holders = (await lab.holders()).join('+') || 'nobody';
      if (holders !== last) trace.push(`${holders}@${Math.round(wallNow() - origin)}`);
      last = holders;
      await sleep(20);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return trace;
    },
  };
}

interface ArpFrame {
  at: number;
  mac: string;
}

/** Every ARP frame sent as the VIP (gratuitous ARPs and replies) that the client's eth0 sees, until stopped. */
function captureVipArp(lab: Lab, maxSeconds: number): { proc: ProcHandle; frames(): ArpFrame[] } {
  const proc = lab.spawn('client', ['timeout', String(maxSeconds), 'tshark', '-l', '-n', '-i', 'eth0', '-f', 'arp', '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'arp.src.hw_mac', '-e', 'arp.src.proto_ipv4'], { label: 'tshark arp' });
  return {
    proc,
    frames: () =>
      proc
        .stdout()
        .split('\n')
        .map((l) => l.split('\t'))
        .filter((f) => f.length === 3 && f[2] === LAB_VIP)
        .map(([t, mac]) => ({ at: Number(t) * 1000, mac: mac! })),
  };
}

/** The moments the VIP's MAC as the client hears it changes. */
function flipsOf(frames: readonly ArpFrame[]): ArpFrame[] {
  const flips: ArpFrame[] = [];
  for (let i = 1; i < frames.length; i++) if (frames[i]!.mac !== frames[i - 1]!.mac) flips.push(frames[i]!);
  return flips;
}

/** The requests from 300 ms before to 300 ms after each given one, with how long each took: load, or a black hole? */
function fmtAround(records: readonly ClientRecord[], around: readonly ClientRecord[], origin: number): string {
  const near = records.filter((r) => around.some((a) => r.s >= a.s - 300 && r.s <= a.s + 300));
  return near.map((r) => `${Math.round(r.s - origin)}ms:${r.ok ? 'ok' : r.err}/${Math.round(r.e - r.s)}ms`).join(' ');
}

const fmt = (records: readonly ClientRecord[], origin: number): string => records.map((r) => `${Math.round(r.s - origin)}ms:${r.ok ? 'ok' : r.err}`).join(' ');

describe('jitter of normal(400, 300) ms on the active node\'s heartbeats (ucast, 100 ms / 500 ms, auto_failback on)', () => {
  for (let run = 1; run <= RUNS; run++) {
    test(`run ${run}: lb2's spurious takeovers fail no request but one in flight across an ARP flip (none left on a stale entry); lb1 alone afterwards`, async () => {
      const { lab } = pair!;
      await waitForSoleHolder(lab, 'lb1', 5_000);
      const arp = captureVipArp(lab, Math.ceil((JITTER_MS + SETTLE_MS) / 1000) + 60);
      await waitFor('tshark to capture', () => (arp.proc.stderr().includes('Capturing on') ? true : undefined), { timeoutMs: 30_000, intervalMs: 50 });
      const client = await startClientLoop(lab, { intervalMs: 50, timeoutMs: 300, maxDurationMs: JITTER_MS + SETTLE_MS + 15_000, maxRequests: 2_000 });
      try {
        expect(await client.firstSuccessSince(0, 3_000)).not.toBeNull();
        const mac1 = (await lab.exec('lb1', ['cat', '/sys/class/net/eth0/address'])).stdout.trim();
        const lb2LogBefore = (await pair!.nodes.lb2.log()).length;
        const start = wallNow();
        const trace = traceHolders(lab, start);
        await tellRelay(lab, 'jitter 400 300');
        await sleep(STALL_AT_MS);
        await tellRelay(lab, `stall ${STALL_MS}`);
        await sleep(Math.max(0, JITTER_MS - (wallNow() - start)));
        const stats = await tellRelay(lab, 'calm');
        const calmAt = wallNow();
        const soleAt = await waitForSoleHolder(lab, 'lb1', 5_000).catch(() => null);
        await sleep(SETTLE_MS);
        const holders = await trace.stop();
        const end = wallNow();
        await client.stop();
        await sleep(300);
        arp.proc.kill('SIGTERM');
        await Promise.race([arp.proc.exited, sleep(3_000)]);
        const records = client.records().filter((r) => r.s >= start && r.s <= end);
        const failed = failuresBetween(records, start, end);
        const frames = arp.frames().filter((f) => f.at >= start - 2_000);
        const flips = flipsOf(frames).filter((f) => f.at >= start);
        // A flip reaches the client within a few ms of the frame; allow the capture's and the loop's clock skew.
        const acrossFlip = (r: ClientRecord): boolean => flips.some((f) => f.at >= r.s - 20 && f.at <= r.e + 20);
        const elsewhere = failed.filter((r) => !acrossFlip(r));
        const lb2Log = (await pair!.nodes.lb2.log()).slice(lb2LogBefore);
        const takeovers = holders.filter((h) => h.startsWith('lb1+lb2@')).length;
        const lb2Acquired = (lb2Log.match(/acquired IPaddr/g) ?? []).length;
        const figures =
          `run ${run}: ${takeovers} double holdings seen (lb2 acquired ${lb2Acquired} times); holders ${holders.join(' > ')}; ` +
          `${failed.length} of ${records.length} requests failed${failed.length ? ` (${fmt(failed, start)})` : ''}, ${elsewhere.length} of them not across an ARP flip; ` +
          `${flips.length} ARP flips at ${flips.map((f) => `+${Math.round(f.at - start)}${f.mac === mac1 ? '>lb1' : '>lb2'}`).join(',')} ms (${frames.length} ARP frames as the VIP); ` +
          (elsewhere.length ? `requests around those not across a flip: ${fmtAround(records, elsewhere, start)}; ` : '') +
          `relay ${JSON.stringify({ delayed: stats.delayed, overtaken: stats.overtaken, maxDelayMs: stats.maxDelayMs })}; ` +
          `lb1 alone ${soleAt === null ? 'NOT within 5 s' : `${Math.round(soleAt - calmAt)} ms`} after calm; load ${loadavg()[0]!.toFixed(1)}`;
        console.log(`jitter ${figures}`);
        if (process.env.TSBAL_TEST_LOG) console.log(`--- lb2 log\n${lb2Log}\n--- lb1 log\n${(await pair!.nodes.lb1.log()).slice(-8_000)}`);
        // Not vacuous: lb2 did take the VIP over (at the stall at least).
        expect(lb2Acquired, figures).toBeGreaterThan(0);
        // The capture works: lb1's re-announcements during the double holdings are in it. (lb2's need not be: a
        // takeover whose first arping had not gone out when lb1 was heard again moves no client at all.)
        expect(frames.some((f) => f.mac === mac1), figures).toBe(true);
        // No request failed but one in flight when the client's ARP entry moved: none black-holed by a stale entry.
        expect(elsewhere, figures).toEqual([]);
        // At most one per flip (the connection in flight), plus one for a request that straddles two close flips.
        expect(failed.length, figures).toBeLessThanOrEqual(flips.length);
        expect(soleAt, figures).not.toBeNull();
        expect(await lab.holders()).toEqual(['lb1']);
      } finally {
        await tellRelay(lab, 'calm').catch(() => undefined);
        await client.stop();
        arp.proc.kill('SIGKILL');
      }
    }, JITTER_MS + SETTLE_MS + 60_000);
  }
});
