// The I/O of `tsbal setup --adopt` and `--undo`: what the recipe's daemons are doing now, and running each step with
// systemctl, Debian's init scripts and update-rc.d, or a pid file. Every failure is a SetupError naming the command.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { RC_LOCAL_PIDFILE } from './render.ts';
import { SetupError, systemdIsRunning } from './apply.ts';
import type { AdoptStep, RecipeService, ServiceManager, ServiceState } from './adopt.ts';

export function detectManager(): ServiceManager {
  return systemdIsRunning() ? 'systemd' : 'sysv';
}

function run(argv: readonly string[], timeoutMs = 60_000): { ok: boolean; status: number | null; output: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() || (r.error?.message ?? `exit ${r.status}`);
  return { ok: r.status === 0, status: r.status, output };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function pidFrom(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

const pidfileOf = (service: RecipeService | 'tsbal'): string => (service === 'tsbal' ? RC_LOCAL_PIDFILE : `/run/${service}.pid`);

export function serviceState(manager: ServiceManager, service: RecipeService): ServiceState {
  if (manager === 'systemd') {
    const enabled = run(['systemctl', 'is-enabled', `${service}.service`]);
    const active = run(['systemctl', 'is-active', `${service}.service`]);
    return {
      enabled: enabled.ok ? true : /^(disabled|masked)/.test(enabled.output) ? false : null,
      active: active.ok,
    };
  }
  // sysvinit: enabled when a start link is in a multi-user runlevel; running when its pid file names a live process.
  const links = ['/etc/rc2.d', '/etc/rc3.d', '/etc/rc5.d'].flatMap((dir) => (existsSync(dir) ? readdirSync(dir) : []));
  const installed = existsSync(`/etc/init.d/${service}`);
  const pid = pidFrom(pidfileOf(service));
  return {
    enabled: installed ? links.some((l) => new RegExp(`^S\\d\\d${service}$`).test(l)) : null,
    active: pid !== null && pidAlive(pid),
  };
}

/** SIGTERM to the pid in `file`, then wait (bounded) for it to exit: heartbeat hands its resources over first. */
function stopByPidfile(file: string, what: string, timeoutMs = 30_000): void {
  const pid = pidFrom(file);
  if (pid === null || !pidAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) throw new SetupError(`${what} (pid ${pid} from ${file}) did not exit within ${timeoutMs / 1000} s of SIGTERM`);
    spawnSync('sleep', ['0.1']);
  }
  rmSync(file, { force: true });
}

function must(argv: readonly string[]): void {
  const r = run(argv);
  if (!r.ok) throw new SetupError(`${argv.join(' ')}: ${r.output}`);
}

/** Carries out one step on this host. `tsbalStart` is the rc.local block's command that starts tsbal. */
export function runStep(step: AdoptStep, tsbalStart: readonly string[]): void {
  switch (step.kind) {
    case 'daemon-reload':
      must(['systemctl', 'daemon-reload']);
      return;
    case 'run-line': {
      const r = run(['sh', '-c', step.line]);
      if (!r.ok) throw new SetupError(`rc.local line '${step.line.trim()}': ${r.output}`);
      return;
    }
    default:
      break;
  }
  const { kind, service, via } = step;
  if (via === 'systemd') {
    must(['systemctl', kind, `${service}.service`]);
    return;
  }
  if (via === 'rc.local') {
    // Only tsbal itself is started from rc.local's block.
    if (kind === 'start') must(tsbalStart);
    else if (kind === 'stop') stopByPidfile(RC_LOCAL_PIDFILE, 'tsbal');
    return;
  }
  const script = `/etc/init.d/${service}`;
  if (kind === 'enable' || kind === 'disable') {
    if (existsSync(script)) must(['update-rc.d', service, kind]);
    return;
  }
  if (kind === 'stop') {
    if (existsSync(script)) must([script, 'stop']);
    // Started by an rc.local line rather than its script, or a script that missed it: its pid file still says.
    stopByPidfile(pidfileOf(service), service === 'heartbeat' ? 'heartbeat' : 'perlbal');
    return;
  }
  if (existsSync(script)) must([script, 'start']);
}
