// Debian's Perlbal 1.80 in the foreground (`perlbal --config=FILE`), config in a private temp dir.
// Perlbal prints `Running.` and `beginning run` on stdout at startup and nothing per request (reference 8);
// stdout is made unbuffered so those lines are in output() even when it is killed.
import fs from 'node:fs';
import path from 'node:path';
import { type ProxyPorts, type ReverseProxySpec, reverseProxyConf } from './perlbalconf.ts';
import { type Daemon, makeTempDir, startDaemon, startWithFreshPorts } from './procs.ts';

/** A proxy under comparison (Perlbal or tsbal) reading a perlbal.conf. */
export interface PerlbalConfProxy extends Daemon {
  kind: 'perlbal' | 'tsbal';
  port: number;
  mgmtPort: number | null;
  confText: string;
}

const AUTOFLUSH_PM = 'package AutoFlush; use IO::Handle; STDOUT->autoflush(1); STDERR->autoflush(1); 1;\n';

/**
 * Starts a perlbal.conf-reading proxy with a config built from free ports. `conf` gets `portCount` ports;
 * `ready` names the ones that must accept connections (listening services).
 */
export async function startWithConf(
  kind: PerlbalConfProxy['kind'],
  portCount: number,
  conf: (ports: number[]) => { text: string; ready: number[] },
  launch: (confPath: string, dir: string) => { command: string; args: string[]; env: NodeJS.ProcessEnv },
  readyTimeoutMs = 15_000,
): Promise<PerlbalConfProxy> {
  return startWithFreshPorts(portCount, async (ports) => {
    const dir = makeTempDir(kind);
    const { text, ready } = conf(ports);
    const confPath = path.join(dir, 'perlbal.conf');
    fs.writeFileSync(confPath, text);
    const { command, args, env } = launch(confPath, dir);
    const daemon = await startDaemon({ name: kind, command, args, env, dir, ports: ready, readyTimeoutMs });
    return { ...daemon, kind, port: ready[0]!, mgmtPort: ready[1] ?? null, confText: text };
  });
}

export function launchPerlbal(confPath: string, dir: string): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  fs.writeFileSync(path.join(dir, 'AutoFlush.pm'), AUTOFLUSH_PM);
  return {
    command: '/usr/bin/perlbal',
    args: [`--config=${confPath}`],
    env: { ...process.env, PERL5LIB: dir, PERL5OPT: '-MAutoFlush' },
  };
}

/** Ports for a reverse-proxy spec: the listen port, plus a management port when asked for. */
export function reverseProxyPorts(spec: ReverseProxySpec, ports: number[]): ProxyPorts {
  return { listen: ports[0]!, mgmt: spec.management ? ports[1]! : null };
}

function reverseProxyConfFor(spec: ReverseProxySpec): (ports: number[]) => { text: string; ready: number[] } {
  return (ports) => {
    const p = reverseProxyPorts(spec, ports);
    return { text: reverseProxyConf(spec, p), ready: p.mgmt === null ? [p.listen] : [p.listen, p.mgmt] };
  };
}

export function startPerlbal(spec: ReverseProxySpec): Promise<PerlbalConfProxy> {
  return startWithConf('perlbal', 2, reverseProxyConfFor(spec), launchPerlbal);
}

export { reverseProxyConfFor };
