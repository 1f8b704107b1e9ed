// bench/ha-lag: does load in the same process starve the heartbeat? lb1 runs the HA engine next to a saturated
// node:net HTTP responder (wrk from the client namespace), back-to-back CPU blocks, or is a real `tsbal run`
// (proxy + HA) with wrk on the VIP through it to two backends (--load proxy); lb2 runs `tsbal ha run`.
// Both at keepalive 100ms / deadtime 500ms. Reports lb1's event-loop delay and heartbeat timer lag, and what lb2 saw:
// late heartbeats and false deaths.
//
//   npx bun bench/ha-lag/main.ts [--load http|cpu|proxy] [--seconds 30] [--runtime bun|node] [--thread worker|main]
//                                [--block-ms 5] [--spike-ms 0] [--connections 200]
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLab, LAB_ADDRESSES } from '../../test/harness/netns.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../test/harness/cli.ts';
import { sleep, waitFor } from '../../test/harness/proc.ts';
import { startBackends } from '../../test/harness/web.ts';
import { renderPerlbalConf } from '../../test/harness/hacluster.ts';

const { values } = parseArgs({
  options: {
    load: { type: 'string', default: 'http' },
    seconds: { type: 'string', default: '30' },
    runtime: { type: 'string', default: 'bun' },
    'block-ms': { type: 'string', default: '5' },
    'spike-ms': { type: 'string', default: '0' },
    connections: { type: 'string', default: '200' },
    thread: { type: 'string', default: 'worker' },
  },
});
const LOADED = fileURLToPath(new URL('./loaded-node.ts', import.meta.url));
const seconds = Number(values.seconds);

const lab = await createLab();
const base = await mkdtemp(join(tmpdir(), 'tsbal-halag-'));
try {
  const dirs = { lb1: join(base, 'lb1'), lb2: join(base, 'lb2') };
  for (const d of Object.values(dirs)) {
    await mkdir(join(d, 'ha.d'), { recursive: true });
    await writeFile(join(d, 'ha.d/ha.cf'), 'logfacility none\nkeepalive 100ms\ndeadtime 500ms\nwarntime 250ms\ninitdead 1\nbcast eth0\nauto_failback on\nnode lb1 lb2\n');
    await writeFile(join(d, 'ha.d/authkeys'), 'auth 1\n1 sha1 BenchSecret\n', { mode: 0o600 });
    await chmod(join(d, 'ha.d/authkeys'), 0o600);
    await writeFile(join(d, 'ha.d/haresources'), 'lb1 IPaddr::198.18.0.99/24/eth0\n');
  }
  const args = (h: 'lb1' | 'lb2'): string[] => ['--ha-dir', join(dirs[h], 'ha.d'), '--node', h, '--state-dir', join(dirs[h], 'state')];
  const lb2 = lab.spawn('lb2', [process.execPath, CLI_ENTRY, 'ha', 'run', ...args('lb2')], { label: 'lb2' });
  const runtime = values.runtime === 'node' ? [join(REPO_ROOT, 'node_modules/.bin/node'), '--experimental-strip-types', '--no-warnings'] : [process.execPath];
  const proxyMode = values.load === 'proxy';
  if (proxyMode) {
    await startBackends(lab);
    await writeFile(join(dirs.lb1, 'perlbal.conf'), renderPerlbalConf());
  }
  const lb1 = proxyMode
    ? lab.spawn('lb1', [process.execPath, CLI_ENTRY, 'run', '-c', join(dirs.lb1, 'perlbal.conf'), ...args('lb1'), '--ha-thread', values.thread!], { label: 'lb1' })
    : lab.spawn('lb1', [...runtime, LOADED, ...args('lb1'), '--load', values.load!, '--seconds', String(seconds + 4), '--block-ms', values['block-ms']!, '--spike-ms', values['spike-ms']!, '--thread', values.thread!], { label: 'lb1' });
  await waitFor('lb2 to see lb1 active', async () => {
    const r = await lab.exec('lb2', [process.execPath, CLI_ENTRY, 'ha', 'status', '--state-dir', join(dirs.lb2, 'state')]);
    return /peer lb1: active/.test(r.stdout) ? true : undefined;
  }, { timeoutMs: 15_000, intervalMs: 200, describe: async () => lb1.stdout() + lb1.stderr() + lb2.stderr() });
  await sleep(1000);
  let wrk = '';
  if (values.load === 'http' || proxyMode) {
    const url = proxyMode ? 'http://198.18.0.99/' : `http://${LAB_ADDRESSES.lb1}:8080/`;
    const r = await lab.exec('client', ['wrk', '-t2', `-c${values.connections}`, `-d${seconds}s`, url], { timeoutMs: (seconds + 30) * 1000 });
    wrk = r.stdout + r.stderr;
  } else {
    await sleep(seconds * 1000);
  }
  let final: { heartbeatLag?: unknown; counters?: unknown } = {};
  let samples: Array<{ loopP99Ms: number; loopMaxMs: number }> = [];
  if (proxyMode) {
    const st1 = await lab.exec('lb1', [process.execPath, CLI_ENTRY, 'ha', 'status', '--json', '--state-dir', join(dirs.lb1, 'state')]);
    final = JSON.parse(st1.stdout || '{}') as typeof final;
    lb1.kill('SIGTERM');
  }
  await Promise.race([lb1.exited, sleep(15_000)]);
  if (!proxyMode) {
    const lines = lb1.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    samples = lines.filter((l) => 't' in l) as typeof samples;
    final = (lines.find((l) => 'final' in l)?.final ?? {}) as typeof final;
  }
  const st2 = await lab.exec('lb2', [process.execPath, CLI_ENTRY, 'ha', 'status', '--json', '--state-dir', join(dirs.lb2, 'state')]);
  const lb2Status = JSON.parse(st2.stdout || '{}') as { counters?: { deaths: number; lost: number } };
  const lb2Log = lb2.stdout() + lb2.stderr();
  console.log(JSON.stringify({
    load: values.load,
    runtime: values.runtime,
    thread: values.thread,
    seconds,
    wrkRequestsPerSec: /Requests\/sec:\s+([\d.]+)/.exec(wrk)?.[1] ?? null,
    lb1EventLoopDelayP99MaxMs: samples.length ? Math.max(...samples.map((s) => s.loopP99Ms)) : null,
    lb1EventLoopDelayMaxMs: samples.length ? Math.max(...samples.map((s) => s.loopMaxMs)) : null,
    wrkErrors: /Socket errors:.*|Non-2xx.*/.exec(wrk)?.[0] ?? null,
    lb1HeartbeatLag: final.heartbeatLag,
    lb2LateHeartbeats: (lb2Log.match(/Late heartbeat/g) ?? []).length,
    lb2FalseDeaths: lb2Status.counters?.deaths ?? null,
    lb2LostPackets: lb2Status.counters?.lost ?? null,
  }, null, 2));
  lb2.kill('SIGTERM');
  await Promise.race([lb2.exited, sleep(5000)]);
} finally {
  await lab.teardown();
  await rm(base, { recursive: true, force: true });
}
