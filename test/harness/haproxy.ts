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
}

function haproxyConf(port: number, backendPorts: readonly number[], o: HaproxyOptions): string {
  const servers = backendPorts.map((p, i) => `  server b${i + 1} ${LOOPBACK}:${p}${o.cookie ? ` cookie b${i + 1}` : ''}`).join('\n');
  const cookie = o.cookie ? '  cookie SERVERID insert indirect nocache\n' : '';
  return `global
  nbthread 1
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
${cookie}${servers}
`;
}

export function startHaproxy(backendPorts: readonly number[], options: HaproxyOptions = {}): Promise<Haproxy> {
  return startWithFreshPorts(1, async ([port]) => {
    const dir = makeTempDir('haproxy');
    const conf = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(conf, haproxyConf(port!, backendPorts, options));
    const daemon = await startDaemon({
      name: 'haproxy',
      command: '/usr/sbin/haproxy',
      args: ['-db', '-f', conf],
      dir,
      ports: [port!],
    });
    return { ...daemon, port: port! };
  });
}
