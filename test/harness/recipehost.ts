// A lab lb host that runs the classic recipe the way a real one does, so `tsbal setup --adopt` can act on it as on a
// live system (no --root): its own /etc and /var/lib (overlays over the host's, so nothing of the host changes), its
// own /run and /var/log, heartbeat's fixed paths as heartbeat.ts sets them up (the defused ResourceManager, /bin/true
// over systemctl), and an /etc/rc.local that starts heartbeat and Perlbal as daemons. The init scripts are hidden in
// its /etc, so adopt stops the daemons through their pid files and never runs update-rc.d on the host.
// Its filesystem comes from hostns.ts.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_ENTRY } from './cli.ts';
import { renderPerlbalConf, type HaSettings, type LbHost } from './hacluster.ts';
import { makeNodeDir, type HeartbeatLab } from './heartbeat.ts';
import type { Lab } from './netns.ts';
import { createHostNs } from './hostns.ts';
import type { ExecResult } from './proc.ts';

const HEARTBEAT = '/usr/libexec/heartbeat/heartbeat';
const RESOURCE_MANAGER = '/usr/share/heartbeat/ResourceManager';

/** The recipe's rc.local: both daemons started at boot, as the tutorial's hosts without init scripts do. */
export const RECIPE_RC_LOCAL = `#!/bin/sh -e\n# the classic recipe\n${HEARTBEAT}\nperlbal --daemon --config=/etc/perlbal/perlbal.conf\nexit 0\n`;

export interface RecipeHost {
  readonly host: LbHost;
  /** The node's private files (its /etc overlay's upper dir is `${dir}/etc-up`). */
  readonly dir: string;
  /** The tsbal the host's unit or rc.local block starts: this checkout, from source. */
  readonly tsbal: string;
  /** Runs argv inside the host (its mounts, its hostname, the lab network namespace). */
  exec(argv: readonly string[], timeoutMs?: number): Promise<ExecResult>;
  /** Boots the recipe: runs /etc/rc.local. */
  boot(): Promise<void>;
  /** heartbeat's log and tsbal's, for failure messages. */
  logs(): Promise<string>;
}

export async function createRecipeHost(lab: Lab, hbLab: HeartbeatLab, host: LbHost, settings: HaSettings): Promise<RecipeHost> {
  const dir = await makeNodeDir(hbLab, host, settings);
  await mkdir(join(dir, 'etc-up/perlbal'), { recursive: true });
  await writeFile(join(dir, 'etc-up/perlbal/perlbal.conf'), `SERVER pidfile = /run/perlbal.pid\n${renderPerlbalConf()}`);
  await writeFile(join(dir, 'etc-up/rc.local'), RECIPE_RC_LOCAL);
  await chmod(join(dir, 'etc-up/rc.local'), 0o755);
  const tsbal = join(dir, 'tsbal');
  await writeFile(tsbal, `#!/bin/sh\nexec ${process.execPath} ${CLI_ENTRY} "$@"\n`);
  await chmod(tsbal, 0o755);
  const { exec } = await createHostNs(lab, host, dir, {
    overlays: ['/etc', '/var/lib'],
    privates: ['/run', '/var/log'],
    extra: [
      'rm -f /etc/init.d/heartbeat /etc/init.d/perlbal',
      `mount --bind ${dir}/etc-ha.d /etc/ha.d`,
      `mount --bind ${dir}/varlib /var/lib/heartbeat`,
      `mount --bind ${hbLab.safeResourceManager} ${RESOURCE_MANAGER}`,
      'mount --bind /bin/true /usr/bin/systemctl',
      'mount --bind /bin/true /lib/systemd/systemd',
    ],
  });
  return {
    host,
    dir,
    tsbal,
    exec,
    async boot() {
      const r = await exec(['sh', '/etc/rc.local'], 20_000);
      if (r.code !== 0) throw new Error(`rc.local on ${host}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    },
    async logs() {
      const read = async (path: string): Promise<string> => (await exec(['cat', path], 5_000)).stdout;
      return `--- ${host} ha-log (tail)\n${(await read(join(dir, 'ha-log'))).slice(-2_500)}\n--- ${host} /var/log/tsbal.log (tail)\n${(await read('/var/log/tsbal.log')).slice(-2_500)}`;
    },
  };
}
