// One management-port line in, Perlbal 1.80's answer out (Perlbal.pm run_manage_command and MANAGE_*): the same
// line preparation, regexes, error texts and output layout. What the running proxy knows and may change is behind
// `ManagementTarget`, so this file is pure and tested without sockets.
import {
  HELP_COMMANDS,
  nodeLines,
  pendingLines,
  procLines,
  poolList,
  poolNodes,
  queueLines,
  serviceDetail,
  serviceList,
  stateLines,
  uptimeLines,
  type NodeReport,
  type PoolNodeUse,
  type PoolSummary,
  type ProcReport,
  type QueueReport,
  type ServiceDetail,
  type ServiceListEntry,
} from './format.ts';
import { parseWeight } from '../../config/perlbal/nodefile.ts';
import { formatHostPort, parseNode } from '../../config/perlbal/values.ts';
import { createCommandContext, type CommandContext } from '../../config/perlbal.ts';
import type { ConfigureResult } from './configure.ts';
import type { StatusReport } from './status.ts';

/** What the console reads from and changes in the running proxy. Mutations return an error text or null. */
export interface ManagementTarget {
  services(): ServiceListEntry[];
  service(name: string): ServiceDetail | null;
  pools(): PoolSummary[];
  pool(name: string): PoolNodeUse[] | null;
  /** Every backend address with counters; `key` given: that one only (null if it has none). */
  nodes(): NodeReport[];
  node(key: string): NodeReport | null;
  /** Connection states by class; null when `service` is given and does not exist. */
  states(service: string | null): Map<string, Map<string, number>> | null;
  queues(): QueueReport[];
  /** `ip:port` → open backend connections. */
  backends(): Array<[string, number]>;
  /** `ip:port` → seconds left on the no-verify list. */
  noVerify(): Array<[string, number]>;
  /** Connections being opened, one per service and backend (the oldest). */
  pending(): Array<{ service: string; key: string; ageSec: number }>;
  /** Services with plugins registered: name and plugin names as Perlbal spells them. */
  plugins(): Array<[string, string[]]>;
  proc(): ProcReport;
  /** The open-files hard limit and the descriptors open now, or null where the OS does not tell. */
  fds(): { max: number; cur: number } | null;
  startEpochSec(): number;
  nowEpochSec(): number;
  hasService(name: string): boolean;
  hasPool(name: string): boolean;
  /** POOL ADD (with its weight, tsbal) / REMOVE; REMOVE drains the backend. */
  changePool(pool: string, op: 'add' | 'remove', host: string, port: number, weight?: number): string | null;
  /** tsbal: `pool <p> ready|drain|maint <ip:port>` and `pool <p> weight <ip:port> <N>`. */
  setMember(pool: string, key: string, change: { admin: 'ready' | 'drain' | 'maint' } | { weight: number }): string | null;
  /** A config command (CREATE, SET, ENABLE, VHOST, ...), run as the config file would and applied live. */
  configure(line: string, ctx: CommandContext): Promise<ConfigureResult>;
  /** The running config as config lines (`dumpconfig`). */
  dumpconfig(): string[];
  /** Services, pools and backends with their figures, for the status page and /status.json. */
  status(): StatusReport;
  /**
   * A command a loaded plugin adds (Stats: `stats`, `recent`; Highpri: `patterns`): its lines, or null when no loaded
   * plugin has it (then it is an unknown command, as in Perlbal).
   */
  pluginReport?(word: string): string[] | null;
  /** Stops the whole program (SHUTDOWN), after this line's answer is out; an error text if it cannot. */
  shutdown(graceful: boolean, timeoutSec: number | null): string | null;
}

/** Per connection, as Perlbal's CommandContext. */
export interface ConsoleSession {
  verbose: boolean;
  /** The object of the last CREATE or USE, which SET, VHOST, ACCESS, ... without a name apply to. */
  ctx: CommandContext;
}

export function newSession(): ConsoleSession {
  return { verbose: true, ctx: createCommandContext('management') };
}

export interface LineResult {
  lines: string[];
  /** Close the connection once the lines are written (SHUTDOWN). */
  close?: boolean;
}

const NOTHING: LineResult = { lines: [] };

/** The config file's commands: run by the config executor on the running config and applied live (configure.ts). */
const CONFIG_COMMANDS = new Set([
  'create', 'use', 'set', 'default', 'enable', 'disable', 'header', 'load', 'unload', 'reload', 'server',
  'vhost', 'vpath', 'include', 'access', 'redirect', 'perlrequire', 'perlhandler', 'throttle',
]);
/** Perlbal's commands that tsbal does not offer (the web_server MIME table and Perlbal's XS modules). */
const NOT_LIVE = new Set(['mime', 'xs']);
/** Perlbal's debugging reports, which have no tsbal counterpart. */
const NO_COUNTERPART = new Set(['aio', 'gladiator', 'leaks', 'obj', 'prof', 'reproxy_state', 'socks', 'state', 'track', 'varsize']);

/** Perlbal's line preparation: strip `#...`, trim, squeeze blanks, lowercase up to the first `=` (no $ENV expansion). */
export function prepare(raw: string): string {
  const hash = raw.indexOf('#');
  const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim().replace(/\s+/g, ' ');
  const eq = line.indexOf('=');
  return eq < 0 ? line.toLowerCase() : line.slice(0, eq).toLowerCase() + line.slice(eq);
}

/** Perlbal's ClientManage closes the connection on a line that starts with `quit` or ends with `exit` (unanchored regex). */
export function isQuit(rawLine: string): boolean {
  return /^quit|exit$/.test(rawLine);
}

export async function runLine(target: ManagementTarget, session: ConsoleSession, raw: string): Promise<LineResult> {
  const cmd = prepare(raw);
  if (cmd === '') return NOTHING;
  const word = /^(\w+)/.exec(cmd)?.[1];
  if (word === undefined) return error('invalid command');
  const ok = (): LineResult => (session.verbose ? { lines: ['OK'] } : NOTHING);
  const fail = (message: string | null): LineResult => (message === null ? ok() : error(message));
  const noOpts = (): LineResult | null => (cmd === word ? null : error(`The '${word}' command takes no arguments`));
  const syntax = (usage?: string): LineResult => error(usage ?? `Invalid syntax to '${word}' command`);

  switch (word) {
    case 'show':
      return show(target, cmd);
    case 'node':
    case 'nodes': {
      const m = /^nodes?(?:\s+(\d+.\d+.\d+.\d+)(?::(\d+))?)?$/.exec(cmd);
      if (!m) return syntax();
      if (m[1] === undefined) return report(target.nodes().flatMap(nodeLines));
      // Perlbal's `$port || 80`: no port, or port 0, means 80.
      const port = m[2] === undefined || Number(m[2]) === 0 ? 80 : Number(m[2]);
      const n = target.node(`${m[1]}:${port}`);
      return report(n === null ? [] : nodeLines(n));
    }
    case 'states': {
      const m = /^states(?:\s+(.+))?$/.exec(cmd)!;
      const counts = target.states(m[1] ?? null);
      return counts === null ? error('Service not found.') : report(stateLines(counts));
    }
    case 'queues':
      return noOpts() ?? report(queueLines(target.queues()));
    case 'uptime':
    case 'version':
      return noOpts() ?? report(uptimeLines(target.startEpochSec(), target.nowEpochSec()));
    case 'help':
      return noOpts() ?? report([...HELP_COMMANDS]);
    case 'backends':
      return noOpts() ?? report(target.backends().sort((a, b) => cmp(a[0], b[0])).map(([k, n]) => `${k} ${n}`));
    case 'noverify':
      return noOpts() ?? report(target.noVerify().map(([k, s]) => `${k} ${s}`));
    case 'pending':
      return noOpts() ?? report(pendingLines(target.pending()));
    case 'plugins':
      return noOpts() ?? report(target.plugins().map(([service, plugins]) => [service, ...plugins].join(' ')));
    case 'proc':
      return noOpts() ?? report(procLines(target.proc()));
    case 'fd': {
      const bad = noOpts();
      if (bad !== null) return bad;
      const fds = target.fds();
      return fds === null ? error('This command is not available unless BSD::Resource is installed') : report([`max ${fds.max}`, `cur ${fds.cur}`]);
    }
    case 'verbose': {
      const m = /^verbose (on|off)$/.exec(cmd);
      if (!m) return syntax('usage: VERBOSE {on|off}');
      session.verbose = m[1] === 'on';
      return ok();
    }
    case 'pool': {
      const member = poolMemberCommand(cmd);
      if (member !== null) {
        if ('error' in member) return error(member.error);
        if (!target.hasPool(member.pool)) return error(`Pool '${member.pool}' not found`);
        return fail(target.setMember(member.pool, member.key, member.change));
      }
      // tsbal: a bracketed IPv6 backend ([::1]:8080) besides Perlbal's IPv4 one.
      const m = /^pool (\w+) (\w+) (\d+.\d+.\d+.\d+|\[[0-9a-f:.]*\])(?::(\d+))?(?: weight=(\S*))?$/.exec(cmd);
      if (!m) return syntax();
      let [op, name] = [m[1]!, m[2]!];
      if (/^(?:add|remove)$/.test(name)) [op, name] = [name, op];
      if (!/^(?:add|remove)$/.test(op)) return error("Invalid command:  must be 'add' or 'remove'");
      if (!target.hasPool(name)) return error(`Pool '${name}' not found`);
      // Perlbal's regex takes any character for the dots and any octet; a backend tsbal cannot connect to is refused.
      const node = consoleNode(m[3]!, m[4]);
      if (node === null) return syntax();
      const { host: ip, port } = node;
      if (m[5] !== undefined) {
        const weight = parseWeight(m[5]);
        if (typeof weight === 'string') return error(weight);
        if (op !== 'add') return error('weight= goes with POOL ADD only');
        return fail(target.changePool(name, 'add', ip, port, weight));
      }
      return fail(target.changePool(name, op as 'add' | 'remove', ip, port));
    }
    case 'dumpconfig':
      return noOpts() ?? { lines: [...target.dumpconfig(), 'OK'] };
    case 'shutdown': {
      const m = /^shutdown(\s?graceful)?\s?(\d+)?$/.exec(cmd);
      if (!m) return syntax();
      const graceful = m[1] !== undefined;
      const refused = target.shutdown(graceful, m[2] === undefined ? null : Number(m[2]));
      if (refused !== null) return error(refused);
      // Perlbal exits at once without a word, or says OK and drains.
      return { lines: graceful && session.verbose ? ['OK'] : [], close: true };
    }
    default: {
      const plugin = cmd === word ? (target.pluginReport?.(word) ?? null) : null;
      if (plugin !== null) return report(plugin);
      if (CONFIG_COMMANDS.has(word)) {
        const r = await target.configure(raw, session.ctx);
        if (r.kind === 'error') return { lines: r.messages.map((m) => `ERROR: ${m}`) };
        // Perlbal's Redirect plugin answers nothing, not even OK.
        return word === 'redirect' ? NOTHING : ok();
      }
      if (NOT_LIVE.has(word)) return error(`tsbal does not take '${word}' on the management port`);
      if (NO_COUNTERPART.has(word)) return error(`'${word}' reports Perlbal internals that tsbal does not have`);
      return error(`unknown command: ${word}`);
    }
  }
}

function show(target: ManagementTarget, cmd: string): LineResult {
  let m = /^show service (\w+)$/.exec(cmd);
  if (m) {
    const detail = target.service(m[1]!);
    return detail === null ? error('Unknown service') : report(serviceDetail(detail));
  }
  m = /^show pool(?:\s+(\w+))?$/.exec(cmd);
  if (m) {
    if (m[1] === undefined) return report(poolList(target.pools()));
    const nodes = target.pool(m[1]);
    return nodes === null ? error(`pool '${m[1]}' does not exist`) : report(poolNodes(nodes));
  }
  if (cmd === 'show service') return report(serviceList(target.services()));
  return error("Invalid syntax to 'show' command");
}

type MemberCommand =
  | { pool: string; key: string; change: { admin: 'ready' | 'drain' | 'maint' } | { weight: number } }
  | { error: string };

/** tsbal's `pool <p> ready|drain|maint <ip:port>` and `pool <p> weight <ip:port> <N>`; null: not one of these. */
function poolMemberCommand(cmd: string): MemberCommand | null {
  const m = /^pool (\w+) (ready|drain|maint|weight)(?: (\S+))?(?: (\S+))?$/.exec(cmd);
  // Perlbal's reversed `pool add <p> ip` with a pool named like a verb stays POOL ADD.
  if (!m || /^(?:add|remove)$/.test(m[1]!)) return null;
  const [pool, verb, addr, value] = [m[1]!, m[2]!, m[3], m[4]];
  const usage = verb === 'weight' ? 'usage: POOL <pool> WEIGHT <ip>[:<port>] <0..256>' : `usage: POOL <pool> ${verb.toUpperCase()} <ip>[:<port>]`;
  if (addr === undefined || (verb === 'weight') !== (value !== undefined)) return { error: usage };
  const a = /^(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:.]*\])(?::(\d+))?$/.exec(addr);
  const node = a === null ? null : consoleNode(a[1]!, a[2]);
  if (node === null) return { error: usage };
  const key = formatHostPort(node);
  if (verb !== 'weight') return { pool, key, change: { admin: verb as 'ready' | 'drain' | 'maint' } };
  const weight = parseWeight(value!);
  return typeof weight === 'string' ? { error: weight } : { pool, key, change: { weight } };
}

function report(lines: string[]): LineResult {
  return { lines: [...lines, '.'] };
}

function error(message: string): LineResult {
  return { lines: [`ERROR: ${message}`] };
}

/**
 * A console backend: Perlbal's `$port ||= 80`; an IPv4 address checked as before (the console has always taken
 * leading zeros), a bracketed IPv6 one (tsbal) parsed and made canonical as in the config.
 */
function consoleNode(ip: string, rawPort: string | undefined): { host: string; port: number } | null {
  const port = rawPort === undefined || Number(rawPort) === 0 ? undefined : rawPort;
  if (ip.startsWith('[')) return parseNode(ip, port);
  const p = port === undefined ? 80 : Number(port);
  return isIPv4(ip) && p <= 65535 ? { host: ip, port: p } : null;
}

function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
