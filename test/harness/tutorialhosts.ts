// The tutorial's four machines in the namespace lab, each with a filesystem of its own (hostns.ts): web1 and web2
// run Debian's Apache from its own /etc/apache2 with the tutorial's LogFormat change (the client's address from
// X-Forwarded-For); lb1 and lb2 start bare (no tsbal, no /etc/ha.d) and get tsbal through install.sh from a
// release served on their own 127.0.0.1, then `tsbal setup`, then the systemd unit's ExecStart line.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createHostNs, type HostNs } from './hostns.ts';
import type { Lab, LabHost } from './netns.ts';
import { waitFor, type ProcHandle } from './proc.ts';

/** The tutorial's edit of apache2.conf: the `combined` format logs X-Forwarded-For where it logged the peer (%h). */
export const TUTORIAL_LOGFORMAT_SED = `s/^LogFormat "%h %l %u %t/LogFormat "%{X-Forwarded-For}i %l %u %t/`;

export interface WebHost extends HostNs {
  start(): Promise<void>;
  /** Stops Apache at once (SIGTERM to its parent) and waits for it to be gone. */
  stop(): Promise<void>;
  /** The lines of an access log under /var/log/apache2 (default Debian's access.log). */
  accessLog(name?: string): Promise<string[]>;
}

async function listening(h: HostNs, port: number): Promise<boolean> {
  const r = await h.exec(['ss', '-ltnH', `sport = :${port}`], 5_000);
  return r.stdout.trim() !== '';
}

export async function createWebHost(lab: Lab, host: LabHost, dir: string): Promise<WebHost> {
  const h = await createHostNs(lab, host, join(dir, host), { overlays: ['/etc', '/var/www'], privates: ['/run', '/var/log'] });
  const setupLines = [
    'set -e',
    `sed -i '${TUTORIAL_LOGFORMAT_SED}' /etc/apache2/apache2.conf`,
    `echo ${host} > /var/www/html/index.html`,
  ];
  const r = await h.exec(['bash', '-c', setupLines.join('\n')], 10_000);
  if (r.code !== 0) throw new Error(`${host}: ${r.stderr}`);
  let apache: ProcHandle | null = null;
  const web: WebHost = {
    ...h,
    async start() {
      apache = h.spawn(['bash', '-c', '. /etc/apache2/envvars && mkdir -p /run/lock && mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR" && exec /usr/sbin/apache2 -DFOREGROUND'], `apache ${host}`);
      const started = apache;
      // Generous: on a loaded machine a cold start of Apache took over 10 s.
      await waitFor(`Apache on ${host}:80`, async () => ((await listening(h, 80)) ? true : started.exit() !== null ? false : undefined), {
        timeoutMs: 30_000,
        intervalMs: 50,
        describe: async () => `${started.stdout()}${started.stderr()}\nerror.log: ${(await h.exec(['tail', '-5', '/var/log/apache2/error.log'], 5_000)).stdout}`,
      });
      if (started.exit() !== null) throw new Error(`Apache on ${host} exited: ${started.stderr()}`);
    },
    async stop() {
      const running = apache;
      if (running === null) return;
      running.kill('SIGTERM');
      await Promise.race([running.exited, new Promise((r) => setTimeout(r, 10_000))]);
      await waitFor(`Apache on ${host} to stop listening`, async () => ((await listening(h, 80)) ? undefined : true), { timeoutMs: 10_000, intervalMs: 50 });
      apache = null;
    },
    async accessLog(name = 'access.log') {
      const r = await h.exec(['cat', `/var/log/apache2/${name}`], 5_000);
      return r.stdout.split('\n').filter((l) => l !== '');
    },
  };
  return web;
}

/**
 * A bare lb host: its /etc, /var/lib and /usr/local are its own, as are /run and /var/log, and it has neither tsbal
 * nor the recipe's Perlbal and heartbeat files (this machine has both packages installed: their /etc/perlbal,
 * /etc/ha.d and /var/lib/heartbeat are removed in the host's overlays, once, on its first boot).
 */
export function createBareLbHost(lab: Lab, host: LabHost, dir: string): Promise<HostNs> {
  const firstBoot = !existsSync(join(dir, host, 'etc-up'));
  return createHostNs(lab, host, join(dir, host), {
    overlays: ['/etc', '/var/lib', '/usr/local'],
    privates: ['/run', '/var/log'],
    extra: firstBoot ? ['rm -rf /etc/perlbal /etc/ha.d /var/lib/heartbeat /usr/local/bin/tsbal'] : [],
  });
}

/** `KEY=` lines of a systemd unit, by key (the last one wins, as for ExecStart in one unit). */
export function unitLines(unit: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of unit.split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m !== null) out.set(m[1]!, m[2]!);
  }
  return out;
}
