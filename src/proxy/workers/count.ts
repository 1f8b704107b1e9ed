// SERVER workers = auto|N: how many worker processes `tsbal run` starts (pure: the setting, the cores and the runtime
// in, a count and why out). 1 is the single process tsbal always was; more need SO_REUSEPORT listeners
// (net.Server.listen({ reusePort }): Node >= 22.12 or 23.1, Bun), which a Node without it cannot give.
export type WorkersSetting = { kind: 'auto' } | { kind: 'count'; n: number };

/** Where no SERVER workers line says otherwise: TSBAL_WORKERS=auto|N (e.g. a systemd drop-in), else auto. */
export const WORKERS_ENV = 'TSBAL_WORKERS';

/**
 * The model's `SERVER workers` (config/perlbal/commands.ts checked it), else the environment's default: a whole
 * number 1..256 is that many, anything else auto.
 */
export function workersSetting(value: string | number | undefined, fallback: string | undefined = undefined): WorkersSetting {
  if (typeof value === 'number') return { kind: 'count', n: value };
  if (value === undefined && fallback !== undefined && /^\d+$/.test(fallback) && Number(fallback) >= 1 && Number(fallback) <= 256) return { kind: 'count', n: Number(fallback) };
  return { kind: 'auto' };
}

/** Why TSBAL_WORKERS is ignored (null when it is unset, `auto` or 1..256): a drop-in's typo must not pass silently as auto. */
export function workersEnvProblem(value: string | undefined): string | null {
  if (value === undefined || value === 'auto' || (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 256)) return null;
  return `${WORKERS_ENV}=${value} is not auto or 1..256: ignored (workers = auto unless SERVER workers says otherwise)`;
}

/** Whether this runtime's net.Server.listen takes `reusePort` (it is silently ignored where it does not). */
export function hasReusePort(versions: Readonly<Record<string, string | undefined>>): boolean {
  if (versions.bun !== undefined) return true;
  if (versions.deno !== undefined) return false;
  const [major = 0, minor = 0] = (versions.node ?? '0.0').split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

export interface WorkersPlan {
  /** Worker processes to start; 1 means no workers: the proxy runs in this process, as always. */
  count: number;
  /** Why fewer than asked, for the log (null when it is what was asked). */
  note: string | null;
  /** A warning: workers as asked, but limits that each worker keeps on its own. */
  warning?: string;
}

export interface WorkersFacts {
  cores: number;
  versions: Readonly<Record<string, string | undefined>>;
  /** Services listening on port 0: each worker would get its own port, so they run in one process. */
  portZero: readonly string[];
  /** Limits kept per process (perProcessLimits): with N workers each would hold N times. */
  perProcess?: readonly string[];
}

export function planWorkers(setting: WorkersSetting, facts: WorkersFacts): WorkersPlan {
  const wanted = setting.kind === 'auto' ? Math.max(1, facts.cores) : setting.n;
  const what = setting.kind === 'auto' ? `workers = auto (${wanted} cores)` : `workers = ${wanted}`;
  if (wanted === 1) return { count: 1, note: null };
  if (!hasReusePort(facts.versions)) {
    const runtime = facts.versions.bun !== undefined ? `Bun ${facts.versions.bun}` : facts.versions.deno !== undefined ? `Deno ${facts.versions.deno}` : `Node ${facts.versions.node ?? '?'}`;
    return { count: 1, note: `${what}: ${runtime} has no SO_REUSEPORT listeners (Node >= 22.12 or Bun do); running in one process` };
  }
  if (facts.portZero.length > 0) {
    return { count: 1, note: `${what}: service ${facts.portZero.join(', ')} listens on port 0 (each worker would get another port); running in one process` };
  }
  const limits = facts.perProcess ?? [];
  if (limits.length > 0) {
    // Perlbal's limits are one process's: auto keeps them whole; a number asked for is honoured, with a warning.
    if (setting.kind === 'auto') return { count: 1, note: `${what}: ${limits.join(', ')} would hold per worker process; running in one process (SERVER workers = N splits them)` };
    return { count: wanted, note: null, warning: `${what}: ${limits.join(', ')} hold per worker process (up to ${wanted}× in all)` };
  }
  return { count: wanted, note: null };
}

/**
 * What in `config` is a limit or a record one process keeps (a pool's max_conns and its queue, the Throttle plugin's
 * per-client limits, Highpri's queue order, the Stats plugin's reports): spread over workers each would apply per
 * worker (and the console, in the owner, would report none of Stats' figures).
 */
export function perProcessLimits(config: {
  pools: ReadonlyArray<{ name: string; options: Readonly<Record<string, unknown>> }>;
  services: ReadonlyArray<{ name: string; enabled: boolean; plugins: readonly string[] }>;
}): string[] {
  const out: string[] = [];
  for (const p of config.pools) if (typeof p.options.max_conns === 'number' && p.options.max_conns > 0) out.push(`pool ${p.name} max_conns`);
  for (const s of config.services) {
    if (!s.enabled) continue;
    for (const plugin of ['throttle', 'highpri', 'stats']) if (s.plugins.includes(plugin)) out.push(`service ${s.name} plugin ${plugin}`);
  }
  return out;
}

/** Services of `config` that listen on port 0 (reverse proxies, web servers, selectors: what the workers bind). */
export function portZeroServices(config: { services: ReadonlyArray<{ name: string; role: string | null; enabled: boolean; listen: { port: number } | null }> }): string[] {
  return config.services.filter((s) => s.enabled && s.listen !== null && s.listen.port === 0 && s.role !== 'management' && s.role !== 'echo').map((s) => s.name);
}

/** How a setting reads in perlbal.conf (for log lines). */
function settingText(s: WorkersSetting): string {
  return s.kind === 'auto' ? 'auto' : String(s.n);
}

/**
 * A reload keeps the worker processes the process started with (the owner does not start or stop workers on a
 * reload): a changed `SERVER workers` is said in the log rather than reported as "no changes". Null when unchanged.
 */
export function workersChangeNote(started: WorkersSetting, next: WorkersSetting, running: number): string | null {
  if (settingText(started) === settingText(next)) return null;
  const runs = running > 1 ? `${running} worker processes` : 'one process';
  return `reload: SERVER workers changed (${settingText(started)} -> ${settingText(next)}); the process runs on with ${runs}: restart tsbal to apply it`;
}
