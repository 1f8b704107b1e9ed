// The floors of bench/proxy: servers that answer by themselves, with no proxying, so a run shows how far a proxy
// is from what its runtime (or HAProxy) costs at all. `floor-node` and `floor-bun` run floor.cjs (a bare node:net
// responder: reads a request head, answers 1 KiB, closes when asked) under Node 22 and Bun from node_modules, the
// runtimes of dist/tsbal and dist/tsbal-bun; `haproxy-return` is HAProxy 2.6 (nbthread 1) answering the same 1 KiB
// itself (`http-request return`). `wrap` puts a command in front (valgrind, for instructions.ts).
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { LOOPBACK } from '../../test/harness/ports.ts';
import { type Daemon, makeTempDir, startDaemon, startWithFreshPorts } from '../../test/harness/procs.ts';

export type Launch = { command: string; args: string[] };
/** Puts a command in front of a launch (valgrind); `dir` is the daemon's private temp dir. */
export type Wrap = (launch: Launch, dir: string) => Launch;
export type Floor = Daemon & { port: number };

export type FloorName = 'floor-node' | 'floor-bun' | 'haproxy-return';
export const FLOOR_NAMES: readonly FloorName[] = ['floor-node', 'floor-bun', 'haproxy-return'];

/** The floor row of the runtime that runs a tsbal executable (by file name: tsbal-bun is Bun, the rest Node). */
export function floorOf(tsbalRow: string): FloorName {
  return /bun/.test(tsbalRow) ? 'floor-bun' : 'floor-node';
}

const BODY = `${'x'.repeat(1023)}\n`;
const RUNTIMES = { 'floor-node': 'node_modules/.bin/node', 'floor-bun': 'node_modules/.bin/bun' } as const;

function haproxyReturnConf(port: number, bodyFile: string): string {
  return `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s

frontend fe
  bind ${LOOPBACK}:${port}
  http-request return status 200 content-type text/plain file ${bodyFile}
`;
}

export function startFloor(name: FloorName, wrap: Wrap = (l) => l, readyTimeoutMs = 10_000): Promise<Floor> {
  return startWithFreshPorts(1, async ([port]) => {
    const dir = makeTempDir(`bench-${name}`);
    let launch: Launch;
    if (name === 'haproxy-return') {
      const bodyFile = path.join(dir, 'body.txt');
      fs.writeFileSync(bodyFile, BODY);
      const conf = path.join(dir, 'haproxy.cfg');
      fs.writeFileSync(conf, haproxyReturnConf(port!, bodyFile));
      launch = { command: '/usr/sbin/haproxy', args: ['-db', '-f', conf] };
    } else {
      launch = { command: `${REPO_ROOT}${RUNTIMES[name]}`, args: [`${REPO_ROOT}bench/proxy/floor.cjs`, String(port)] };
    }
    const { command, args } = wrap(launch, dir);
    const daemon = await startDaemon({ name, command, args, dir, ports: [port!], readyTimeoutMs });
    return { ...daemon, port: port! };
  });
}
