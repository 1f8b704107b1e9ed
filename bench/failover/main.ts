// bench/failover: kill -9 of the VIP holder → the VIP answering HTTP on the survivor, for a tsbal pair and a
// real heartbeat 3.0.6 pair (with perlbal) in the same run, in the namespace lab of test/harness.
//
//   npx bun bench/failover/main.ts [--runs 20] [--configs fast,tutorial] [--impls tsbal,heartbeat]
//
// fast = keepalive 100ms / deadtime 500ms; tutorial = keepalive 2 / deadtime 10 (about 25 s per run).
// auto_failback is off so each run kills whichever node holds the VIP and the killed node simply rejoins.
// A bounded open-loop client (one request every 5 ms, 200 ms timeout, fresh connection each) runs during
// every switch; a bystander in the client namespace records each heartbeat broadcast, which gives
// "last heartbeat of the dead node → VIP on the survivor". Prints a markdown table; JSON to bench/results/.
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { haTimeMs, type HaImpl, type HaSettings, type LbHost } from '../../test/harness/hacluster.ts';
import { LAB_ADDRESSES } from '../../test/harness/netns.ts';
import { createPair, measureCrashFailover, otherHost, waitForSoleHolder, waitJoined, type FailoverSample, type HaPair } from '../../test/harness/pair.ts';
import { execProc, sleep, type ProcHandle } from '../../test/harness/proc.ts';
import { startClientLoop } from '../../test/harness/web.ts';

const CONFIGS = {
  fast: { keepalive: '100ms', deadtime: '500ms', initdead: '1' },
  tutorial: { keepalive: '2', deadtime: '10', initdead: '10' },
} as const;
type ConfigName = keyof typeof CONFIGS;
const CLIENT_INTERVAL_MS = 5;
const CLIENT_TIMEOUT_MS = 200;
const SNIFFER = fileURLToPath(new URL('./sniffer.ts', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

interface Sample extends FailoverSample {
  /** The dead node's last heartbeat seen on the wire → the VIP on the survivor (ms); null if not captured. */
  lastBeatToVipMs: number | null;
  /** How long after the kill the sniffer stamped the victim's last beat (0 when before): the sniffer's own lag. */
  stampedLateMs: number;
  /** tsbal only, from the survivor's log: how late its dead timer fired (silent for − dt) and the takeover's hand-off. */
  breakdown: TakeoverBreakdown | null;
}

interface TakeoverBreakdown {
  timerLateMs: number;
  /** The heartbeat thread's decision → the main thread starting the acquire. */
  handoffMs: number;
  /** The whole acquire (ip addr add, arping spawn, the proxy's listen check). */
  acquireMs: number;
}

/** The survivor's last dead-peer timer and acquire lines (tsbal's log; the VIP's home node takes it as req_our); null if absent. */
function takeoverBreakdown(log: string, deadtimeMs: number): TakeoverBreakdown | null {
  const silent = [...log.matchAll(/is dead \(silent for (\d+) ms/g)].at(-1);
  const acquired = [...log.matchAll(/acquired \S+ in (\d+) ms, started (\d+) ms after the decision \((?:mach_down|req_our)\)/g)].at(-1);
  if (!silent || !acquired) return null;
  return { timerLateMs: Number(silent[1]) - deadtimeMs, handoffMs: Number(acquired[2]), acquireMs: Number(acquired[1]) };
}

interface Series {
  impl: HaImpl;
  config: ConfigName;
  keepalive: string;
  deadtime: string;
  samples: Sample[];
  error: string | null;
}

interface Beat {
  t: number;
  src: string;
}

function startSniffer(pair: HaPair, beats: Beat[], maxDurationMs: number): ProcHandle {
  const proc = pair.lab.spawn('client', [process.execPath, SNIFFER, `--max-duration-ms=${maxDurationMs}`], { label: 'sniffer' });
  proc.onLine((line) => {
    const beat = JSON.parse(line) as Partial<Beat>;
    if (typeof beat.t === 'number' && typeof beat.src === 'string') {
      beats.push({ t: beat.t, src: beat.src });
      if (beats.length > 20_000) beats.splice(0, 10_000);
    }
  });
  return proc;
}

const log = (message: string): void => void process.stderr.write(`[failover] ${message}\n`);

async function runSeries(impl: HaImpl, config: ConfigName, runs: number): Promise<Series> {
  const timing = CONFIGS[config];
  const settings: HaSettings = { ...timing, autoFailback: 'off', preferred: 'lb1' };
  const deadtimeMs = haTimeMs(timing.deadtime);
  const keepaliveMs = haTimeMs(timing.keepalive);
  const takeoverBoundMs = deadtimeMs + 10_000;
  const settleMs = 2_000 + 2 * keepaliveMs;
  const series: Series = { impl, config, keepalive: timing.keepalive, deadtime: timing.deadtime, samples: [], error: null };
  const pair = await createPair({ lb1: impl, lb2: impl }, settings);
  const beats: Beat[] = [];
  try {
    startSniffer(pair, beats, runs * (takeoverBoundMs + 60_000));
    await pair.nodes.lb1.start();
    await waitForSoleHolder(pair.lab, 'lb1', haTimeMs(timing.initdead) + 15_000);
    await pair.nodes.lb2.start();
    await waitJoined(pair.nodes.lb2, 30_000);
    await sleep(settleMs);
    let holder: LbHost = 'lb1';
    for (let run = 1; run <= runs; run++) {
      await waitForSoleHolder(pair.lab, holder, 5_000);
      const clientWindowMs = takeoverBoundMs + 5_000;
      const client = await startClientLoop(pair.lab, {
        intervalMs: CLIENT_INTERVAL_MS,
        timeoutMs: CLIENT_TIMEOUT_MS,
        maxDurationMs: clientWindowMs,
        maxRequests: Math.ceil(clientWindowMs / CLIENT_INTERVAL_MS),
      });
      let sample: FailoverSample;
      try {
        if ((await client.firstSuccessSince(0, 3_000)) === null) throw new Error(`run ${run}: the VIP on ${holder} does not serve before the kill`);
        await sleep(100 + Math.random() * keepaliveMs); // kill at a random phase of the heartbeat cycle
        sample = await measureCrashFailover(pair, client, holder, takeoverBoundMs, CLIENT_TIMEOUT_MS);
      } finally {
        await client.stop();
      }
      const victimAddress = LAB_ADDRESSES[holder];
      const vipAt = sample.killedAt + sample.vipMs;
      // Everything the victim sent was sent before the kill, but the sniffer (a process on a busy machine) may stamp
      // its last packets after it: so the last beat is the last one stamped before the VIP moved, not before the kill.
      const lastBeat = beats.filter((beat) => beat.src === victimAddress && beat.t <= vipAt).at(-1);
      const lastBeatToVipMs = lastBeat ? vipAt - lastBeat.t : null;
      const stampedLateMs = lastBeat && lastBeat.t > sample.killedAt ? lastBeat.t - sample.killedAt : 0;
      const breakdown = impl === 'tsbal' ? takeoverBreakdown(await pair.nodes[otherHost(holder)].log(), deadtimeMs) : null;
      series.samples.push({ ...sample, lastBeatToVipMs, stampedLateMs, breakdown });
      log(
        `${impl} ${config} run ${run}/${runs}: kill→VIP ${sample.vipMs.toFixed(0)} ms, kill→serving ${sample.servingMs.toFixed(0)} ms, ` +
          `last beat→VIP ${lastBeatToVipMs?.toFixed(0) ?? '?'} ms${stampedLateMs > 0 ? ` (beat stamped ${stampedLateMs.toFixed(1)} ms after the kill)` : ''}, ${breakdown ? `timer late ${breakdown.timerLateMs} ms, hand-off ${breakdown.handoffMs} ms, acquire ${breakdown.acquireMs} ms, ` : ''}VIP added ${sample.vipAdds}x, failed ${sample.failedRequests} ${JSON.stringify(sample.failureReasons)}`,
      );
      await pair.nodes[holder].start();
      await waitJoined(pair.nodes[holder], 30_000);
      await sleep(settleMs);
      holder = otherHost(holder);
    }
  } catch (error) {
    series.error = error instanceof Error ? error.message : String(error);
    log(`${impl} ${config}: ${series.error}`);
  } finally {
    await pair.dispose();
  }
  return series;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

function summary(values: readonly number[]): { median: number; max: number } | null {
  return values.length ? { median: median(values), max: Math.max(...values) } : null;
}

const fmt = (s: { median: number; max: number } | null, unit = ' ms'): string =>
  s ? `${s.median.toFixed(0)}${unit} / ${s.max.toFixed(0)}${unit}` : 'n/a';

function table(all: readonly Series[]): string {
  const rows = all.map((series) => {
    const deadtimeMs = haTimeMs(series.deadtime);
    const beats = series.samples.flatMap((sample) => (sample.lastBeatToVipMs === null ? [] : [sample.lastBeatToVipMs - deadtimeMs]));
    return [
      series.impl,
      `${series.keepalive} / ${series.deadtime}`,
      `${series.samples.length}${series.error ? ` (error: ${series.error.split('\n')[0]?.slice(0, 80)})` : ''}`,
      fmt(summary(series.samples.map((sample) => sample.vipMs))),
      fmt(summary(series.samples.map((sample) => sample.servingMs))),
      fmt(summary(beats)),
      fmt(summary(series.samples.map((sample) => sample.failedRequests)), ''),
      String(series.samples.filter((sample) => sample.vipAdds !== 1).length),
    ];
  });
  const head = ['implementation', 'keepalive / deadtime', 'runs', 'kill → VIP (median / max)', 'kill → serving (median / max)', 'last beat → VIP − deadtime', 'failed requests (median / max)', 'runs with VIP added ≠ 1 time'];
  return [head, head.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '20' },
      configs: { type: 'string', default: 'fast,tutorial' },
      impls: { type: 'string', default: 'tsbal,heartbeat' },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 200) throw new Error(`--runs must be 1..200, got ${values.runs}`);
  const configs = values.configs.split(',').map((name) => {
    if (!(name in CONFIGS)) throw new Error(`unknown config ${name} (fast, tutorial)`);
    return name as ConfigName;
  });
  const impls = values.impls.split(',').map((name) => {
    if (name !== 'tsbal' && name !== 'heartbeat') throw new Error(`unknown implementation ${name} (tsbal, heartbeat)`);
    return name as HaImpl;
  });
  const all: Series[] = [];
  for (const config of configs) for (const impl of impls) all.push(await runSeries(impl, config, runs));

  const heartbeatVersion = (await execProc(['dpkg-query', '-W', '-f=${Version}', 'heartbeat'])).stdout;
  const report = {
    date: new Date().toISOString(),
    command: `bun bench/failover/main.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', kernel: release() },
    versions: { bun: process.versions.bun ?? null, heartbeat: heartbeatVersion },
    client: { intervalMs: CLIENT_INTERVAL_MS, timeoutMs: CLIENT_TIMEOUT_MS },
    series: all,
  };
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}failover-${report.date.replace(/[:.]/g, '-')}.json`;
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(table(all));
  console.log(`\nclient: one request every ${CLIENT_INTERVAL_MS} ms (fresh TCP connection), ${CLIENT_TIMEOUT_MS} ms timeout; JSON: ${file}`);
}

await main();
