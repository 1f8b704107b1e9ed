// The proxies bench/tls compares, started the same way for wall-clock rounds (run.ts) and under callgrind
// (instructions.ts): HAProxy (nbthread 1, `bind ... ssl crt`, TLS 1.2 minimum) and tsbal (enable_ssl,
// persist_client/persist_backend on), each in front of one plain HTTP backend with the same certificate; and the
// runtime's floor (floor.cjs: a bare node:tls responder, no proxying) with the same certificate.
import fs from 'node:fs';
import path from 'node:path';
import { type Daemon, makeTempDir, startDaemon, startWithFreshPorts } from '../../test/harness/procs.ts';
import { LOOPBACK } from '../../test/harness/ports.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';

/** `port`: the TLS listener; `plainPort`: the same proxying without TLS (to tell TLS's cost from HTTP's). */
export type Proxy = Daemon & { port: number; plainPort: number };

/** How tsbal is started: the program and its argv before `run -c conf`. */
export interface TsbalForm { name: string; command: string; args: string[]; describe: string }

/** `wrap`: a command line the proxy runs under (valgrind ...), empty for none. */
/** `alpn`: the protocols the TLS bind offers (bench/h2 passes `h2,http/1.1`); none by default. */
export function startHaproxyTls(backend: number, pem: string, wrap: readonly string[] = [], readyTimeoutMs?: number, alpn?: string): Promise<Proxy> {
  return startWithFreshPorts(2, async ([port, plainPort]) => {
    const dir = makeTempDir('bench-haproxy-tls');
    const conf = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(conf, `global
  nbthread 1
  maxconn 4096
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  option http-keep-alive
  option forwardfor
  http-reuse always
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind ${LOOPBACK}:${port} ssl crt ${pem}${alpn === undefined ? '' : ` alpn ${alpn}`}
  http-request set-header X-Forwarded-Proto https
  default_backend be
frontend plain
  bind ${LOOPBACK}:${plainPort}
  default_backend be
backend be
  server b1 ${LOOPBACK}:${backend}
`);
    const argv = [...wrap, '/usr/sbin/haproxy', '-db', '-f', conf];
    const d = await startDaemon({ name: 'haproxy-tls', command: argv[0]!, args: argv.slice(1), dir, ports: [port!, plainPort!], ...(readyTimeoutMs === undefined ? {} : { readyTimeoutMs }) });
    return { ...d, port: port!, plainPort: plainPort! };
  });
}

export function startTsbalTls(form: TsbalForm, backend: number, crt: string, key: string, wrap: readonly string[] = [], readyTimeoutMs?: number): Promise<Proxy> {
  return startWithFreshPorts(2, async ([port, plainPort]) => {
    const dir = makeTempDir('bench-tsbal-tls');
    const conf = path.join(dir, 'perlbal.conf');
    // One process, as HAProxy runs one thread here (workers default to one per core).
    fs.writeFileSync(conf, `SERVER workers = 1
CREATE POOL p
  POOL p ADD ${LOOPBACK}:${backend}
CREATE SERVICE site
  SET listen = ${LOOPBACK}:${port}
  SET role = reverse_proxy
  SET pool = p
  SET persist_client = on
  SET persist_backend = on
  SET enable_ssl = on
  SET ssl_cert_file = ${crt}
  SET ssl_key_file = ${key}
ENABLE site
CREATE SERVICE plain
  SET listen = ${LOOPBACK}:${plainPort}
  SET role = reverse_proxy
  SET pool = p
  SET persist_client = on
  SET persist_backend = on
ENABLE plain
`);
    const argv = [...wrap, form.command, ...form.args, 'run', '-c', conf];
    const d = await startDaemon({ name: form.name, command: argv[0]!, args: argv.slice(1), dir, ports: [port!, plainPort!], ...(readyTimeoutMs === undefined ? {} : { readyTimeoutMs }) });
    return { ...d, port: port!, plainPort: plainPort! };
  });
}

export type FloorRuntime = 'floor-node' | 'floor-bun';

/**
 * floor.cjs under Node 22 (`node`, with `nodeArgs`: tsbal's V8 flags) or Bun from node_modules, on one port (its
 * `plainPort` is the same port: the floor has no plain listener).
 */
export function startTlsFloor(runtime: FloorRuntime, crt: string, key: string, node: string, nodeArgs: readonly string[], wrap: readonly string[] = [], readyTimeoutMs?: number): Promise<Proxy> {
  return startWithFreshPorts(1, async ([port]) => {
    const dir = makeTempDir(`bench-${runtime}-tls`);
    const floor = path.join(REPO_ROOT, 'bench/tls/floor.cjs');
    const argv = [...wrap, ...(runtime === 'floor-bun' ? [path.join(REPO_ROOT, 'node_modules/.bin/bun')] : [node, ...nodeArgs]), floor, String(port), crt, key];
    const d = await startDaemon({ name: runtime, command: argv[0]!, args: argv.slice(1), dir, ports: [port!], ...(readyTimeoutMs === undefined ? {} : { readyTimeoutMs }) });
    return { ...d, port: port!, plainPort: port! };
  });
}
