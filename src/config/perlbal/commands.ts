// Perlbal's built-in commands (Perlbal.pm MANAGE_*) that build or change the configuration.
import type { ServiceModel } from '../model.ts';
import { didYouMean } from '../suggest.ts';
import { canonicalPlugin, IMPLEMENTED_PLUGINS, unknownPlugin } from './plugins.ts';
import { consequence, err, OK, parseArgs, type CommandHandler, type CommandResult, type Exec } from './result.ts';
import { lookupName, setDefault, setPoolKey, setServiceKey } from './set.ts';
import { metaFor, newPool, newService, newServiceMeta } from './state.ts';
import { parseWeight } from './nodefile.ts';
import { formatHostPort, parseNode } from './values.ts';
import { ANYCAST_SERVER_KEYS, setAnycastServerKey } from './anycast.ts';

/** The object SET/VHOST/... apply to when no name is given. */
export function contextName(x: Exec): { name: string } | CommandResult {
  if (x.ctx.contextLost) return consequence('omitted service/pool name not implied from context');
  if (x.ctx.lastCreated === null) {
    return err('omitted service/pool name not implied from context', 'CREATE SERVICE/POOL or USE a name first, or name it on this line');
  }
  return { name: x.ctx.lastCreated };
}

/** The service a context-relative plugin command (VHOST, ACCESS, ...) applies to. */
export function contextService(x: Exec, named: string | undefined, noContext: string): ServiceModel | CommandResult {
  let name = named;
  if (name === undefined) {
    if (x.ctx.contextLost) return consequence(noContext);
    if (x.ctx.lastCreated === null) return err(noContext, 'CREATE SERVICE or USE a service first');
    name = x.ctx.lastCreated;
  }
  return x.state.services.get(name) ?? err(`Non-existent service '${name}'`, x.state.pools.has(name) ? `${name} is a pool` : undefined);
}

const NAME_HINT = 'names may contain letters, digits and _ only';

const create: CommandHandler = (x) => {
  const a = parseArgs(x, /^create (service|pool) (\w+)$/);
  if (!a) {
    x.ctx.contextLost = true;
    const bad = /^create (service|pool) (\S+)$/.test(x.c.cmd);
    return err('usage: CREATE {service|pool} <name>', bad ? NAME_HINT : undefined);
  }
  const [what, name] = a as [string, string];
  const clash = x.state.services.has(name) ? 'service' : x.state.pools.has(name) ? 'pool' : null;
  if (clash) {
    x.ctx.contextLost = true;
    const first = (clash === 'service' ? x.state.services.get(name)! : x.state.pools.get(name)!).loc;
    return err(`${clash} '${name}' already exists`, `created on line ${first.line}${first.file === x.c.loc.file ? '' : ` of ${first.file}`}; services and pools share one namespace`);
  }
  if (what === 'service') {
    x.state.services.set(name, newService(name, x.c.loc));
    x.state.meta.set(name, newServiceMeta());
  } else {
    x.state.pools.set(name, newPool(name, x.c.loc));
    x.state.vivifyPools = false;
  }
  x.ctx.lastCreated = name;
  x.ctx.contextLost = false;
  return OK;
};

const use: CommandHandler = (x) => {
  const a = parseArgs(x, /^use (\w+)$/);
  if (!a) {
    x.ctx.contextLost = true;
    return err('usage: USE <service_or_pool_name>');
  }
  const name = a[0]!;
  if (!x.state.services.has(name) && !x.state.pools.has(name)) {
    x.ctx.contextLost = true;
    return err(`Non-existent pool or service '${name}'`, didYouMean(name, [...x.state.services.keys(), ...x.state.pools.keys()]));
  }
  x.ctx.lastCreated = name;
  x.ctx.contextLost = false;
  return OK;
};

const set: CommandHandler = (x) => {
  const a = parseArgs(x, /^set (?:(\w+)[. ])?([\w.]+) ?= ?(.+)$/);
  if (!a) return err('usage: SET [<service>] <param> = <value>', /=/.test(x.c.cmd) ? undefined : "missing '='");
  const [named, key, value] = a as [string | undefined, string, string];
  let name = named;
  if (name === undefined) {
    const c = contextName(x);
    if (!('name' in c)) return c;
    name = c.name;
  }
  const service = x.state.services.get(name);
  if (service) return setServiceKey(x, service, key, value);
  const pool = x.state.pools.get(name);
  if (pool) return setPoolKey(x, pool, key, value);
  const plugin = canonicalPlugin(name) ?? (name === 'extra' ? 'extra' : undefined);
  const hint = plugin
    ? `${name === 'extra' ? 'extra' : 'plugin'} settings need the service name: SET <service>.${name}.${key} = ...`
    : didYouMean(name, [...x.state.services.keys(), ...x.state.pools.keys()]);
  return err(`service/pool '${name}' does not exist`, hint);
};

const defaultCmd: CommandHandler = (x) => {
  const a = parseArgs(x, /^default (\w+) ?= ?(.+)$/);
  if (!a) return err('usage: DEFAULT <param> = <value>');
  return setDefault(x, a[0]!, a[1]!);
};

const enable: CommandHandler = (x) => {
  const a = parseArgs(x, /^(disable|enable) (\w+)$/);
  if (!a) return err('Usage: {ENABLE|DISABLE} <service>');
  const [verb, name] = a as [string, string];
  const service = x.state.services.get(name);
  if (!service) return err(`service '${name}' does not exist`, x.state.pools.has(name) ? `${name} is a pool` : didYouMean(name, x.state.services.keys()));
  if (verb === 'enable') {
    if (service.enabled) return err(`service ${name} is already enabled`);
    service.enabled = true;
    return OK;
  }
  if (service.role === 'management') return err("can't disable management service");
  if (!service.enabled) return err(`service ${name} is already disabled`);
  service.enabled = false;
  return OK;
};

const pool: CommandHandler = (x) => {
  // tsbal: `POOL p ADD ip:port weight=N` (the line is lowercased up to its first `=`, so `WEIGHT=` works too).
  let weight: number | undefined;
  const w = / weight=(\S*)$/.exec(x.c.cmd);
  if (w !== null) {
    const parsed = parseWeight(w[1]!);
    if (typeof parsed === 'string') return err(parsed, 'POOL <pool> ADD <ip>[:<port>] weight=<0..256>; weight 0 takes no new requests');
    weight = parsed;
    x = { ...x, c: { ...x.c, cmd: x.c.cmd.slice(0, w.index) } };
  }
  let a = parseArgs(x, /^pool (\w+) (\w+) (\S+)$/);
  if (!a) {
    // The manuals' `POOL ADD ip` (pool from context), which Perlbal 1.80 rejects.
    const short = parseArgs(x, /^pool (add|remove) (\S+)$/);
    if (!short) return err("Invalid syntax to 'pool' command", 'POOL <pool> ADD|REMOVE <ip>[:<port>]');
    const c = contextName(x);
    if (!('name' in c)) return c;
    x.warn(`POOL ${short[0]!.toUpperCase()} without a pool name uses the current pool ${c.name}; Perlbal 1.80 rejects this form`,
      `write POOL ${c.name} ${short[0]!.toUpperCase()} ${short[1]}`);
    a = [short[0], c.name, short[1]];
  }
  let [cmd, name, addr] = a as [string, string, string];
  if (/^(?:add|remove)$/.test(name)) [cmd, name] = [name, cmd];
  if (!/^(?:add|remove)$/.test(cmd)) return err("Invalid command:  must be 'add' or 'remove'");
  const m = /^(\[[^\]]*\]|[^:[\]]+)(?::(\d+))?$/.exec(addr);
  // Perlbal's `$port ||= 80` turns port 0 into 80.
  if (m?.[2] !== undefined && Number(m[2]) === 0) x.warn(`port 0 in POOL ${cmd.toUpperCase()} means port 80, as in Perlbal`, `write ${m[1]}:80`);
  const node = m ? parseNode(m[1]!, m[2] !== undefined && Number(m[2]) === 0 ? undefined : m[2]) : null;
  if (!node) {
    const hint = addr.startsWith('[') || addr.split(':').length > 2 ? `'${addr}' is not [ipv6]:port with a valid IPv6 address and port, e.g. [2001:db8::1]:80`
      : /[a-z]/.test(addr) ? 'backends are IPv4 addresses; host names are not accepted' : `'${addr}' is not ip[:port] with a valid IPv4 address and port`;
    return err("Invalid syntax to 'pool' command", hint);
  }
  const p = x.state.pools.get(name);
  if (!p) return err(`Pool '${name}' not found`, x.state.services.has(name) ? `${name} is a service` : didYouMean(name, x.state.pools.keys()));
  const same = (n: { host: string; port: number }) => n.host === node.host && n.port === node.port;
  if (cmd === 'add' && p.nodes.some(same)) x.warn(`${formatHostPort(node)} is already in pool ${name}`);
  p.nodes = p.nodes.filter((n) => !same(n));
  if (weight !== undefined && cmd !== 'add') return err('weight= goes with POOL ADD only', `write POOL ${name} ADD ${addr} weight=${weight}`);
  if (cmd === 'add') p.nodes.push(weight === undefined ? node : { ...node, weight });
  return OK;
};

const header: CommandHandler = (x) => {
  const a = /^header\s+(\w+)\s+(insert|remove)\s+(.+?)(?:\s*:\s*(.+))?$/i.exec(x.c.cmd)?.slice(1);
  if (!a) return err('Usage: HEADER <service> {INSERT|REMOVE} <header>[: <value>]');
  const [svcName, action, name, value] = a as [string, string, string, string | undefined];
  const service = x.state.services.get(svcName.toLowerCase());
  if (!service) return err(`service '${svcName}' does not exist`);
  const op = action.toLowerCase() === 'insert' ? 'insert' : 'remove';
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(name)) return err(`invalid header name '${name}'`, 'HEADER <service> INSERT Name: value');
  if (op === 'insert' && (value === undefined || value === '')) return err('no value provided');
  // Header names are case-insensitive, so only a value that lost its capitals is worth a word.
  const writtenValue = /^[^:]*:\s*([^=]*)/.exec(x.c.orig)?.[1] ?? '';
  if (op === 'insert' && /[A-Z]/.test(writtenValue)) {
    x.warn(`HEADER is lowercased up to the first =, as in Perlbal: the backend gets '${name}: ${value ?? ''}'`);
  }
  service.headers.push(value === undefined ? { op, name, loc: x.c.loc } : { op, name, value, loc: x.c.loc });
  return OK;
};

const load: CommandHandler = (x) => {
  const m = /^load (\w+)$/i.exec(x.c.orig);
  if (!m || !/^load \w+$/.test(x.c.cmd)) return err("Invalid syntax to 'load' command", 'LOAD <plugin>');
  const written = m[1]!;
  const canonical = canonicalPlugin(written);
  if (!canonical) return unknownPlugin(written);
  // Perlbal tries the name as typed, all lowercase, then Capitalised; mixed-case plugins need the exact case there.
  const lower = written.toLowerCase();
  const perlbalFinds = [written, lower, lower[0]!.toUpperCase() + lower.slice(1)].includes(canonical);
  if (!perlbalFinds) x.warn(`Perlbal 1.80 cannot find plugin '${written}' (its file is ${canonical}.pm)`, `write LOAD ${canonical}`);
  if (!x.state.loadedPlugins.includes(canonical)) {
    x.state.loadedPlugins.push(canonical);
    if (!IMPLEMENTED_PLUGINS.has(canonical)) x.warn(`plugin ${canonical} is accepted but not implemented by tsbal: its settings parse, it does nothing at run time`);
  }
  return OK;
};

const unload: CommandHandler = (x) => {
  const a = parseArgs(x, /^unload (\w+)$/);
  if (!a) return err("Invalid syntax to 'unload' command");
  const canonical = canonicalPlugin(a[0]!);
  if (!canonical || !x.state.loadedPlugins.includes(canonical)) {
    x.warn(`UNLOAD ${a[0]}: the plugin is not loaded`);
    return OK;
  }
  x.state.loadedPlugins = x.state.loadedPlugins.filter((p) => p !== canonical);
  const lower = canonical.toLowerCase();
  for (const s of x.state.services.values()) {
    if (!s.plugins.includes(lower)) continue;
    s.plugins = s.plugins.filter((p) => p !== lower);
    if (canonical === 'Vhosts') {
      s.vhosts = [];
      metaFor(x.state, s.name).vhostIndex.clear();
    }
    if (canonical === 'Vpaths') s.vpaths = [];
  }
  return OK;
};

const reload: CommandHandler = (x) => {
  const a = parseArgs(x, /^reload (\w+)$/);
  if (!a) return err("Invalid syntax to 'reload' command");
  const canonical = canonicalPlugin(a[0]!);
  if (!canonical || !x.state.loadedPlugins.includes(canonical)) return err(`Unknown/unloaded plugin '${a[0]}'`);
  return err(`Plugin Perlbal::Plugin::${canonical} doesn't support reloading`);
};

const SERVER_KEYS = ['max_reproxy_connections', 'max_connections', 'nice_level', 'aio_mode', 'aio_threads', 'track_obj', 'pidfile', 'crash_backtrace', 'workers', ...ANYCAST_SERVER_KEYS];

const server: CommandHandler = (x) => {
  const a = parseArgs(x, /^server (\S+) ?= ?(.+)$/);
  if (!a) return err("Invalid syntax to 'server' command", 'SERVER <key> = <value>');
  const [key, value] = a as [string, string];
  const numeric = /^-?\d+$/.test(value);
  x.state.serverLocs.set(key, x.c.loc);
  const anycast = setAnycastServerKey(x.state, key, value);
  if (anycast !== null) return anycast.ok ? OK : err(anycast.message, anycast.hint);
  if (/^max_reproxy_connections(?:\(.+\))?$/.test(key) || ['max_connections', 'nice_level', 'aio_threads'].includes(key)) {
    if (!numeric) return err('Expected numeric parameter');
    x.state.server[key] = Number(value);
    return OK;
  }
  if (key === 'track_obj' || key === 'crash_backtrace') {
    if (value !== '0' && value !== '1') return err('Expected 1 or 0');
    x.state.server[key] = Number(value);
    return OK;
  }
  if (key === 'aio_mode') {
    if (value === 'linux') return err('Linux::AIO no longer supported', 'use none');
    if (value !== 'none' && value !== 'ioaio') return err('Unknown AIO mode', 'none or ioaio');
    if (value === 'ioaio') x.warn('aio_mode ioaio is ignored: tsbal does its file I/O without IO::AIO');
    x.state.server[key] = value;
    return OK;
  }
  if (key === 'workers') {
    // tsbal's own: worker processes (src/proxy/workers/count.ts), `auto` = one per core.
    if (value.toLowerCase() === 'auto') {
      x.state.server[key] = 'auto';
      return OK;
    }
    if (!numeric || Number(value) < 1 || Number(value) > 256) return err(`workers must be auto or 1..256, got '${value}'`, 'SERVER workers = auto, or a number such as 2');
    x.state.server[key] = Number(value);
    return OK;
  }
  if (key === 'pidfile') {
    x.state.server[key] = value;
    return OK;
  }
  return err(`unknown server option '${key}'`, didYouMean(key, SERVER_KEYS) ?? `keys are ${SERVER_KEYS.join(', ')}`);
};

const verbose: CommandHandler = (x) => {
  const a = parseArgs(x, /^verbose (on|off)$/);
  if (!a) return err('usage: VERBOSE {on|off}');
  x.ctx.verbose = a[0] === 'on';
  return OK;
};

const stopsServer: CommandHandler = (x) =>
  x.ctx.mode === 'config'
    ? err(`${x.c.word.toUpperCase()} in a config file would stop the server`, 'remove this line')
    : err(`${x.c.word} is not available here`);

export const BUILTIN_COMMANDS: Readonly<Record<string, CommandHandler>> = {
  create, use, set, default: defaultCmd, enable, disable: enable, pool, header, load, unload, reload, server, verbose,
  shutdown: stopsServer, crash: stopsServer,
};

/** Perlbal's report commands: they change nothing, and print only on the management port. */
export const REPORT_COMMANDS: readonly string[] = [
  'aio', 'backends', 'dumpconfig', 'fd', 'gladiator', 'help', 'leaks', 'mime', 'node', 'nodes', 'noverify', 'obj',
  'pending', 'plugins', 'proc', 'prof', 'queues', 'reproxy_state', 'show', 'socks', 'state', 'states', 'track',
  'uptime', 'varsize', 'version', 'xs',
];
