// Debian's HAProxy 2.6 in the foreground (-db) with `nbthread 1`, as a keep-alive reverse proxy with
// `http-reuse always` towards the backends. Config in a private temp dir.
import fs from 'node:fs';
import path from 'node:path';
import { LOOPBACK } from './ports.ts';
import { type Daemon, makeTempDir, startDaemon, startWithFreshPorts } from './procs.ts';

export interface Haproxy extends Daemon {
  port: number;
}

export interface HaproxyOptions {
  /** Session affinity as HAProxy users write it: `cookie SERVERID insert indirect nocache`, `cookie bN` per server. */
  cookie?: boolean;
  /**
   * Active HTTP checks as HAProxy users write them (`option httpchk`, `check inter <interval>`) on the serving
   * servers, plus a second backend of check-only servers behind an idle frontend on a second port (never loaded).
   */
  checks?: { path: string; interval: string; idleServers: readonly string[] };
  /** Threads (default 1): bench/proxy/workers.ts compares `nbthread 2` with tsbal's `SERVER workers = 2`. */
  nbthread?: number;
}

export function haproxyConf(ports: readonly number[], backendPorts: readonly number[], o: HaproxyOptions): string {
  const [port, idlePort] = ports;
  const check = o.checks ? ` check inter ${o.checks.interval}` : '';
  const servers = backendPorts
    .map((p, i) => `  server b${i + 1} ${LOOPBACK}:${p}${o.cookie ? ` cookie b${i + 1}` : ''}${check}`)
    .join('\n');
  const cookie = o.cookie ? '  cookie SERVERID insert indirect nocache\n' : '';
  // HTTP/1.1 with a Host, as tsbal's check sends it.
  const httpchk = o.checks
    ? `  option httpchk\n  http-check send meth GET uri ${o.checks.path} ver HTTP/1.1 hdr Host check\n`
    : '';
  const idle = o.checks
    ? `
frontend fe_idle
  bind ${LOOPBACK}:${idlePort}
  default_backend be_idle

backend be_idle
  balance roundrobin
${httpchk}${o.checks.idleServers.map((a, i) => `  server i${i + 1} ${a}${check}`).join('\n')}
`
    : '';
  return `global
  nbthread ${o.nbthread ?? 1}
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  option forwardfor
  http-reuse always
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s

frontend fe
  bind ${LOOPBACK}:${port}
  default_backend be

backend be
  balance roundrobin
${cookie}${httpchk}${servers}
${idle}`;
}

export function startHaproxy(backendPorts: readonly number[], options: HaproxyOptions = {}): Promise<Haproxy> {
  return startWithFreshPorts(options.checks ? 2 : 1, async (ports) => {
    const port = ports[0]!;
    const dir = makeTempDir('haproxy');
    const conf = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(conf, haproxyConf(ports, backendPorts, options));
    const daemon = await startDaemon({
      name: 'haproxy',
      command: '/usr/sbin/haproxy',
      args: ['-db', '-f', conf],
      dir,
      ports,
    });
    return { ...daemon, port };
  });
}
