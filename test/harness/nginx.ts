// Debian's nginx with one worker, `daemon off`, its own prefix, pid file and temp paths in a private temp dir.
// Two shapes: a fast keep-alive backend (small fixed body, echo of selected request headers), and a reverse
// proxy in front of backends with keep-alive upstream connections (HTTP/1.1), for the benchmark.
import fs from 'node:fs';
import path from 'node:path';
import { LOOPBACK } from './ports.ts';
import { describeOutcome, exchange } from './rawclient.ts';
import { type Daemon, makeTempDir, startDaemon, startWithFreshPorts } from './procs.ts';

export interface Nginx extends Daemon {
  port: number;
}

function mainConf(dir: string, http: string): string {
  return `daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  default_type text/plain;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
${http}
}
`;
}

async function startNginx(label: string, http: (port: number) => string): Promise<Nginx> {
  return startWithFreshPorts(1, async ([port]) => {
    const dir = makeTempDir(`nginx-${label}`);
    const conf = path.join(dir, 'nginx.conf');
    fs.writeFileSync(conf, mainConf(dir, http(port!)));
    const daemon = await startDaemon({
      name: `nginx-${label}`,
      command: '/usr/sbin/nginx',
      // -e: the startup error log, before the config's error_log applies (default is /var/log/nginx).
      args: ['-p', dir, '-c', conf, '-e', `${dir}/error.log`],
      dir,
      ports: [port!],
      logFiles: [`${dir}/error.log`],
    });
    return { ...daemon, port: port! };
  });
}

/**
 * A fast keep-alive backend. `/` answers `body` (default `nginx <name>\n`); `/echo` answers the request line
 * and the forwarding headers a proxy adds or rewrites, one per line (empty when absent); `/__nginx_status` is
 * nginx's stub_status (see nginxAccepts).
 */
export function startNginxBackend(options: { name?: string; body?: string } = {}): Promise<Nginx> {
  const name = options.name ?? 'b';
  const body = (options.body ?? `nginx ${name}\n`).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  return startNginx(`backend-${name}`, (port) => `  server {
    listen ${LOOPBACK}:${port};
    location / { return 200 "${body}"; }
    location = /__nginx_status { stub_status; }
    location = /echo {
      return 200 "$request\\nhost: $http_host\\nx-forwarded-for: $http_x_forwarded_for\\nx-forwarded-host: $http_x_forwarded_host\\nx-forwarded-proto: $http_x_forwarded_proto\\nx-real-ip: $http_x_real_ip\\nconnection: $http_connection\\n";
    }
  }`);
}

/** nginx as a reverse proxy (1 worker) with keep-alive HTTP/1.1 upstream connections. */
export function startNginxProxy(backendPorts: readonly number[]): Promise<Nginx> {
  const servers = backendPorts.map((p) => `    server ${LOOPBACK}:${p};`).join('\n');
  return startNginx('proxy', (port) => `  upstream backends {
${servers}
    keepalive 512;
    keepalive_requests 1000000;
  }
  server {
    listen ${LOOPBACK}:${port};
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering on;
    }
  }`);
}

/** Connections an nginx has accepted since it started (stub_status), e.g. to see how well a proxy reuses them. */
export async function nginxAccepts(nginx: Nginx): Promise<number> {
  return (await nginxCounters(nginx)).accepts;
}

/** stub_status's accepted connections and requests (a check on a kept connection is a request, not an accept). */
export async function nginxCounters(nginx: Nginx): Promise<{ accepts: number; requests: number }> {
  // A fresh connection per read (fetch would reuse one), so each read adds exactly one accept and one request.
  const { outcome } = await exchange(nginx.port, 'GET /__nginx_status HTTP/1.1\r\nHost: status\r\nConnection: close\r\n\r\n');
  const text = outcome.kind === 'response' ? outcome.response.body.toString() : describeOutcome(outcome);
  const counters = /\n\s*(\d+)\s+(\d+)\s+(\d+)\s*\n/.exec(text);
  if (!counters) throw new Error(`unexpected stub_status output: ${text}`);
  return { accepts: Number(counters[1]), requests: Number(counters[3]) };
}

/**
 * An HTTPS backend (`listen ssl`) with `cert`/`key`. `/` answers `nginx <name>\n`; `/tls` answers what the TLS side
 * saw, one per line: the SNI name, nginx's connection serial and its request count on that connection (so reuse
 * shows), the protocol, whether the session was resumed (`r` or `.`), and X-Forwarded-Proto.
 */
export function startNginxTlsBackend(options: { name?: string; cert: string; key: string }): Promise<Nginx> {
  const name = options.name ?? 'b';
  return startNginx(`tls-${name}`, (port) => `  server {
    listen ${LOOPBACK}:${port} ssl;
    ssl_certificate ${options.cert};
    ssl_certificate_key ${options.key};
    ssl_session_cache shared:tls:1m;
    location / { return 200 "nginx ${name}\\n"; }
    location = /tls {
      return 200 "sni: $ssl_server_name\\nconnection: $connection\\nrequests: $connection_requests\\nprotocol: $ssl_protocol\\nreused: $ssl_session_reused\\nx-forwarded-proto: $http_x_forwarded_proto\\n";
    }
  }`);
}

/**
 * Cheap check-only backends for health-check benchmarks: one nginx (1 worker) listening on each of `addresses`
 * (127.0.0.0/8 addresses other than 127.0.0.1, e.g. 127.0.1.1 ... 127.0.1.98) at one port, answering 200 to
 * anything, plus stub_status on 127.0.0.1 at the same port (its accepts count the checks received).
 */
export function startNginxCheckTargets(label: string, addresses: readonly string[]): Promise<Nginx> {
  return startNginx(`checks-${label}`, (port) => `  server {
    listen ${LOOPBACK}:${port};
${addresses.map((a) => `    listen ${a}:${port};`).join('\n')}
    location / { return 200 "ok\\n"; }
    location = /__nginx_status { stub_status; }
  }`);
}
