// The config commands on the management port (CREATE, USE, SET, DEFAULT, ENABLE, DISABLE, HEADER, LOAD, UNLOAD,
// SERVER, VHOST, VPATH, INCLUDE, ACCESS, REDIRECT, ...): each line runs through the config file's own executor on a
// copy of the running config, and the result is applied the way a SIGHUP reload applies a file (compile.ts for
// every service, new addresses bound before old ones close, all or nothing). One mechanism for both, so a service
// changed on the console runs exactly as if the file had said so; a failed change leaves everything as it was.
import type { ConsolaInstance } from 'consola';
import type { PerlbalConfig } from '../../config/model.ts';
import { executeCommand, perlbalSnapshot, stateFromConfig, type CommandContext, type CommandEnv, type PerlbalState } from '../../config/perlbal.ts';
import { formatDiagnostic } from '../../config/errors.ts';
import { servedServices } from '../roles.ts';
import { formatHostPort, isLoopbackHost } from '../../config/perlbal/values.ts';

/** The running proxy as the console changes it. */
export interface Reconfigurable {
  current(): PerlbalConfig;
  /** Runs a task when no reload or other command runs (the proxy's one queue), so a command sees the latest config. */
  exclusive<T>(task: () => Promise<T>): Promise<T>;
  /** Applies a whole config as a reload does; `errors` leave the old config running. */
  apply(next: PerlbalConfig): Promise<{ ok: true; summary: string } | { ok: false; errors: string[] }>;
  env: CommandEnv;
  log: ConsolaInstance;
}

export type ConfigureResult = { kind: 'ok' } | { kind: 'error'; messages: string[] };

export interface Configurer {
  run(line: string, ctx: CommandContext): Promise<ConfigureResult>;
}

const ERRNO_TEXT: Record<string, string> = {
  EADDRINUSE: 'Address already in use',
  EACCES: 'Permission denied',
  EADDRNOTAVAIL: 'Cannot assign requested address',
};

/** Configs compared without source locations: a command that changed nothing needs no reload. */
function sameConfig(a: PerlbalConfig, b: PerlbalConfig): boolean {
  const strip = (c: PerlbalConfig): string =>
    JSON.stringify({ ...c, warnings: [], files: [] }, (key, v: unknown) => (key === 'loc' || key === 'pluginsLoc' || key === 'optionLocs' ? undefined : v));
  return strip(a) === strip(b);
}

/**
 * A reload's error as the console says it: Perlbal's `Can't start service ...` for a listener that cannot be bound
 * (saying which address still serves when the service was already listening), else the message without its
 * `file:line:` (the line is the console's own).
 */
export function consoleError(message: string, before: PerlbalConfig): string {
  const bind = /service (\w+): cannot listen on (\S+): (\w+) \((.*)\)$/.exec(message);
  if (bind) {
    const [, name, address, code, text] = bind as unknown as [string, string, string, string, string];
    const old = before.services.find((s) => s.name === name);
    const still = old?.enabled && old.listen !== null ? `; still listening on ${formatHostPort(old.listen)}` : '';
    return `Can't start service '${name}' on ${address}: Error creating listening socket: ${ERRNO_TEXT[code] ?? text}${still}`;
  }
  return message.replace(/^\S+:\d+: /, '');
}

/**
 * What the console must not change, because whoever can connect could then run code as tsbal's user: a program to
 * spawn (server_process), or a file to write request text into (an access_log path: think /etc/cron.d). The file
 * may set them; the console may only turn an access log off or to stdout.
 */
export function unsafeChange(before: PerlbalConfig, next: PerlbalConfig): string | null {
  for (const s of next.services) {
    const old = before.services.find((o) => o.name === s.name)?.options;
    const changed = (key: string): boolean => JSON.stringify(s.options[key] ?? null) !== JSON.stringify(old?.[key] ?? null);
    if (changed('server_process') && s.options.server_process != null) return 'server_process cannot be set on the management port (it names a program to run); set it in perlbal.conf';
    const log = s.options.access_log;
    if (changed('access_log') && typeof log === 'string' && log.startsWith('/')) {
      return 'access_log cannot be set to a file on the management port (anyone who can connect could write to any file); set it in perlbal.conf, or use off or stdout';
    }
  }
  return null;
}

/** A management service that now listens beyond loopback: the port has no authentication. */
function exposedConsoles(before: PerlbalConfig, next: PerlbalConfig): string[] {
  const out: string[] = [];
  for (const s of next.services) {
    if (s.role !== 'management' || !s.enabled || s.listen === null || isLoopbackHost(s.listen.host)) continue;
    const old = before.services.find((o) => o.name === s.name);
    if (old?.enabled && old.listen?.host === s.listen.host && old.role === 'management') continue;
    out.push(`management: service ${s.name} now listens on ${formatHostPort(s.listen)}, beyond loopback; the management port has no authentication`);
  }
  return out;
}

export function newConfigurer(p: Reconfigurable): Configurer {
  /** DEFAULT lines given on the console: they apply to services whose role is set later, as in Perlbal. */
  let defaults: PerlbalState['defaults'] = new Map();
  let lineNo = 0;
  const runOne = async (line: string, ctx: CommandContext): Promise<ConfigureResult> => {
    const before = p.current();
    const state = stateFromConfig(before, defaults);
    const r = executeCommand(state, line, ctx, { env: p.env, loc: { file: 'management', line: ++lineNo } });
    for (const w of state.warnings) p.log.warn(`management: ${w.message}${w.hint ? ` (${w.hint})` : ''}`);
    const messages: string[] = [];
    if (r.kind === 'error') {
      // INCLUDE: the errors of the included files are printed and what loaded is kept, as in Perlbal.
      if (r.diagnostics === undefined) return { kind: 'error', messages: [r.message] };
      messages.push(...r.diagnostics.map(formatDiagnostic));
    }
    defaults = state.defaults;
    const next = perlbalSnapshot(state, p.env, before.file, before.warnings);
    // A web_server must know what to serve before it takes a request (`tsbal check` refuses the same in a file).
    for (const m of servedServices(next.services)) {
      if (m.role === 'web_server' && typeof m.options.docroot !== 'string') return { kind: 'error', messages: [...messages, `service ${m.name} (web_server) has no docroot; SET docroot first`] };
    }
    // Perlbal.pm MANAGE_server: the pidfile is written once, at start.
    if (JSON.stringify(next.server.pidfile ?? null) !== JSON.stringify(before.server.pidfile ?? null)) {
      return { kind: 'error', messages: [...messages, 'pidfile must be configured at startup, before Perlbal::run is called'] };
    }
    const unsafe = unsafeChange(before, next);
    if (unsafe !== null) return { kind: 'error', messages: [...messages, unsafe] };
    for (const w of exposedConsoles(before, next)) p.log.warn(w);
    if (!sameConfig(before, next)) {
      const outcome = await p.apply(next);
      if (!outcome.ok) return { kind: 'error', messages: [...messages, ...outcome.errors.map((e) => consoleError(e, before))] };
      p.log.info(`management: ${line.trim()}: ${outcome.summary}`);
    }
    return messages.length === 0 ? { kind: 'ok' } : { kind: 'error', messages };
  };
  return {
    // Commands of all console connections and SIGHUP reloads take turns, each on the config the previous one left.
    run: (line, ctx) => p.exclusive(() => runOne(line, ctx)),
  };
}
