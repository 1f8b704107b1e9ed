// Real heartbeat 3.0.6 in a lab namespace, run exactly as the reference lab's start.sh does: a private mount
// and UTS namespace with the node's hostname, per-node copies bind-mounted over /etc/ha.d,
// /var/lib/heartbeat and /run, a ResourceManager whose pkill/reboot lines are disabled (a failing stop would
// otherwise `pkill -9 heartbeat` and `reboot -nf` the host), and /bin/true over systemctl.
// Never start heartbeat any other way.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crashHost, renderPerlbalConf, writeHaDir, type HaNode, type HaSettings, type LbHost } from './hacluster.ts';
import type { Lab } from './netns.ts';
import { execOk, sleep, waitFor, type ProcHandle } from './proc.ts';

const HEARTBEAT = '/usr/libexec/heartbeat/heartbeat';
const RESOURCE_MANAGER = '/usr/share/heartbeat/ResourceManager';

export interface HeartbeatLab {
  /** A fresh temp dir for this run (the reference used a fixed /tmp/hblab; concurrent runs must not share). */
  readonly dir: string;
  /** The ResourceManager copy that can never pkill heartbeat or reboot the host. */
  readonly safeResourceManager: string;
  remove(): Promise<void>;
}

/** Like prepare.sh: a temp dir and the defused ResourceManager, verified before anything can use it. */
export async function prepareHeartbeatLab(): Promise<HeartbeatLab> {
  const dir = await mkdtemp(join(tmpdir(), 'hblab-'));
  const original = await readFile(RESOURCE_MANAGER, 'utf8');
  const safe = original
    .replace(/^( *)pkill -9 \$name/gm, '$1: pkill disabled in the lab')
    .replace(/^( *)\[ -x \/sbin\/reboot \] && \/sbin\/reboot -nf/gm, '$1false # reboot disabled in the lab')
    .replace(/^( *)\[ -x \/sbin\/init \] && \/sbin\/init 6/gm, '$1false # init 6 disabled in the lab');
  if (/^[^#:\n]*(pkill -9|\/sbin\/reboot -nf|\/sbin\/init 6)/m.test(safe) || safe === original) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${RESOURCE_MANAGER} changed: could not disable its pkill/reboot lines; refusing to run heartbeat`);
  }
  const safeResourceManager = join(dir, 'ResourceManager.safe');
  await writeFile(safeResourceManager, safe, { mode: 0o755 });
  return { dir, safeResourceManager, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Like mknode.sh plus writecfg.sh: private copies of heartbeat's fixed paths, with our config files (also for recipehost.ts). */
export async function makeNodeDir(hbLab: HeartbeatLab, host: LbHost, settings: HaSettings): Promise<string> {
  const dir = join(hbLab.dir, host);
  await execOk(['mkdir', '-p', dir]);
  await execOk(['cp', '-a', '/etc/ha.d', join(dir, 'etc-ha.d')]);
  await execOk(['cp', '-a', '/var/lib/heartbeat', join(dir, 'varlib')]);
  // Identity and generation must be per node: never inherit the host's (if it ever ran heartbeat).
  await execOk(['rm', '-f', ...['hb_uuid', 'hb_generation', 'hostcache', 'delhostcache'].map((f) => join(dir, 'varlib', f))]);
  const run = join(dir, 'run');
  await execOk(['mkdir', '-p', ...['heartbeat/ccm', 'heartbeat/crm', 'heartbeat/dopd', 'resource-agents', 'crm'].map((d) => join(run, d))]);
  await execOk(['chown', '-R', 'hacluster:haclient', join(run, 'heartbeat'), join(run, 'crm')]);
  await execOk(['chmod', '750', join(run, 'heartbeat')]);
  await writeFile(join(dir, 'ha-log'), '');
  await writeFile(join(dir, 'ha-debug'), '');
  await writeHaDir(join(dir, 'etc-ha.d'), settings, dir);
  await writeFile(join(dir, 'perlbal.conf'), renderPerlbalConf());
  return dir;
}

/**
 * For its first 5 s a real node advertises deadtime + 2000 ms as its `dt`, and peers (heartbeat and tsbal alike)
 * wait that long before declaring it dead (reference section 5.3). Crash timings are only comparable after it.
 */
export const HEARTBEAT_LONG_DT_PERIOD_MS = 5_000;

export interface HeartbeatNode extends HaNode {
  readonly impl: 'heartbeat';
  readonly dir: string;
  /** Wall-clock ms of the last start(), or null before the first. */
  startedAt(): number | null;
}

export interface HeartbeatNodeOptions {
  /** Also run Debian's perlbal with the tutorial perlbal.conf on VIP:80, as the classic recipe does. */
  perlbal?: boolean;
}

export async function createHeartbeatNode(
  lab: Lab,
  hbLab: HeartbeatLab,
  host: LbHost,
  settings: HaSettings,
  options: HeartbeatNodeOptions = {},
): Promise<HeartbeatNode> {
  const dir = await makeNodeDir(hbLab, host, settings);
  let heartbeat: ProcHandle | null = null;
  let perlbal: ProcHandle | null = null;
  let startedAt: number | null = null;
  const script = [
    'set -e',
    `hostname ${host}`,
    `mount --bind ${dir}/etc-ha.d /etc/ha.d`,
    `mount --bind ${dir}/varlib /var/lib/heartbeat`,
    `mount --bind ${dir}/run /run`,
    `mount --bind ${hbLab.safeResourceManager} ${RESOURCE_MANAGER}`,
    'mount --bind /bin/true /usr/bin/systemctl',
    'mount --bind /bin/true /lib/systemd/systemd',
    `exec ${HEARTBEAT} -f`,
  ].join('\n');

  const masterPid = async (): Promise<number | null> => {
    try {
      const pid = Number.parseInt(await readFile(join(dir, 'run', 'heartbeat.pid'), 'utf8'), 10);
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  };

  const node: HeartbeatNode = {
    impl: 'heartbeat',
    host,
    dir,
    async start() {
      if (node.running()) throw new Error(`heartbeat on ${host} is already running`);
      await execOk(['rm', '-f', join(dir, 'run', 'heartbeat.pid')]);
      startedAt = performance.timeOrigin + performance.now();
      heartbeat = lab.spawn(host, ['unshare', '--mount', '--uts', '--propagation', 'private', 'bash', '-c', script], {
        label: `heartbeat ${host}`,
      });
      if (options.perlbal) {
        perlbal = lab.spawn(host, ['perlbal', `--config=${join(dir, 'perlbal.conf')}`], { label: `perlbal ${host}` });
      }
      const started = heartbeat;
      await waitFor(`heartbeat on ${host} to write its pid file`, async () => ((await masterPid()) !== null ? true : undefined), {
        timeoutMs: 10_000,
        describe: async () => `exit ${JSON.stringify(started.exit())}; output ${started.stdout()}${started.stderr()}; log ${await node.log()}`,
      });
    },
    async stop() {
      const pid = await masterPid();
      if (pid !== null) process.kill(pid, 'SIGTERM');
      // heartbeat keeps heartbeating ~2 s after shutdone; give its scripts time, then make sure.
      const deadline = performance.now() + 20_000;
      while (performance.now() < deadline && heartbeat?.exit() === null) await sleep(50);
      await waitForHeartbeatGone(lab, host, deadline);
      perlbal?.kill('SIGTERM');
      await Promise.race([perlbal?.exited, sleep(2_000)]);
      await lab.killAll(host, 'SIGKILL');
    },
    crash: () => crashHost(lab, host),
    startedAt: () => startedAt,
    running: () => heartbeat !== null && heartbeat.exit() === null,
    log: () => readFile(join(dir, 'ha-log'), 'utf8').catch(() => ''),
  };
  return node;
}

/** Waits until no heartbeat process is left in the namespace (its children outlive the master briefly). */
async function waitForHeartbeatGone(lab: Lab, host: LbHost, deadline: number): Promise<void> {
  while (performance.now() < deadline) {
    const comms = await Promise.all(
      (await lab.pids(host)).map((pid) => readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')),
    );
    if (!comms.some((comm) => comm.trim() === 'heartbeat')) return;
    await sleep(50);
  }
}
