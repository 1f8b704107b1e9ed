// /etc/ha.d/ha.cf with heartbeat 3.0.6's rules (hb config.c parse_config/add_option, cg cl_get_msec).
// Order matters: each directive takes effect when read. Ordinary directives split their values on
// space, tab and comma and apply each token on its own; a few take the rest of the line whole.
import type { AutoFailback, HaConfig, Medium } from './model.ts';
import type { SourceLocation } from './errors.ts';
import { createDiagnostics, splitLines, throwIfErrors, warningsOf, type Diagnostics, type Parsed } from './diagnostics.ts';
import { didYouMean } from './suggest.ts';
import { isIpv4 } from './ipv4.ts';
import { own } from './records.ts';

export interface HaCfOptions {
  /** This node's name (`uname -n`, or /etc/ha.d/nodeinfo); when given it must be a `node`. */
  localNode?: string;
}

export const DEFAULT_UDP_PORT = 694;
const MAX_NODES = 100;

/** cl_get_msec: digits and dots, then nothing (seconds), `ms` or `us`; rounded to the nearest ms. */
export function parseHaTime(value: string): number | null {
  const m = /^(\d+\.?\d*|\.\d+)(ms|us)?$/.exec(value);
  if (!m) return null;
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'us' ? n / 1000 : n * 1000;
  return Number.isFinite(ms) ? Math.round(ms) : null;
}

/** cl_str_to_boolean. */
export function parseHaBool(value: string): boolean | null {
  const v = value.toLowerCase();
  if (['true', 'on', 'yes', 'y', '1'].includes(v)) return true;
  if (['false', 'off', 'no', 'n', '0'].includes(v)) return false;
  return null;
}

export const SYSLOG_FACILITIES = [
  'auth', 'authpriv', 'cron', 'daemon', 'ftp', 'kern', 'lpr', 'mail', 'news', 'syslog', 'user', 'uucp',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7', 'none',
] as const;

interface State {
  d: Diagnostics;
  file: string;
  keepaliveMs: number | null;
  deadtimeMs: number | null;
  warntimeMs: number | null;
  initdeadMs: number | null;
  deadpingMs: number | null;
  /** Where each time was last set, so the checks between them can point at a line. */
  timeLines: Partial<Record<TimeField, number>>;
  udpPort: number;
  /** The UDP port each bcast/ucast medium captured when it was read (heartbeat binds it then). */
  mediaPorts: Array<{ port: number; loc: SourceLocation }>;
  media: Medium[];
  nodes: string[];
  autoFailback: AutoFailback | null;
  /** An auto_failback line was read, valid or not (only a missing one earns heartbeat's "legacy" warning). */
  autoFailbackGiven: boolean;
  pingNodes: string[];
  pingGroups: Array<{ name: string; members: string[] }>;
  logfacility: string | null;
  logfile: string | null;
  debugfile: string | null;
  useLogd: boolean | null;
  debug: number;
  msgfmt: 'classic' | 'netstring';
  hbgenmethod: 'file' | 'time';
  maxRexmitDelayMs: number;
  respawn: HaConfig['respawn'];
  ignored: HaConfig['ignored'];
  seenCrm: boolean;
}

type TokenHandler = (s: State, value: string, loc: SourceLocation, directive: string) => void;
type LineHandler = (s: State, rest: string, loc: SourceLocation, directive: string) => void;
type Directive = { whole: false; apply: TokenHandler } | { whole: true; apply: LineHandler };

const token = (apply: TokenHandler): Directive => ({ whole: false, apply });
const whole = (apply: LineHandler): Directive => ({ whole: true, apply });

type TimeField = 'keepaliveMs' | 'deadtimeMs' | 'warntimeMs' | 'initdeadMs' | 'deadpingMs';

function timeSetter(field: TimeField): Directive {
  return token((s, v, loc, name) => {
    const ms = parseHaTime(v);
    if (ms === null) {
      const hint = v === 'ms' || v === 'us' || v === 's'
        ? 'write the unit right after the number, e.g. 2000ms'
        : 'a number of seconds, or a number followed by ms or us (e.g. 2 or 500ms)';
      s.d.error(loc, `${name}: invalid time '${v}'`, hint);
      return;
    }
    s[field] = ms;
    s.timeLines[field] = loc.line;
  });
}

function intIn(s: State, v: string, loc: SourceLocation, name: string, min: number, max: number): number | null {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    s.d.error(loc, `${name}: '${v}' is not an integer between ${min} and ${max}`);
    return null;
  }
  return Number(v);
}

function boolOf(s: State, v: string, loc: SourceLocation, name: string): boolean | null {
  const b = parseHaBool(v);
  if (b === null) s.d.error(loc, `${name}: '${v}' is not a boolean`, 'use on or off');
  return b;
}

function oneOf<T extends string>(s: State, v: string, loc: SourceLocation, name: string, allowed: readonly T[]): T | null {
  if ((allowed as readonly string[]).includes(v)) return v as T;
  s.d.error(loc, `${name}: invalid value '${v}'`, `expected one of ${allowed.join(', ')}`);
  return null;
}

/** Kept and listed by `tsbal check`, not acted on. */
const keep: Directive = whole((s, rest, loc, name) => {
  s.ignored.push({ directive: name, value: rest, loc });
});

function unsupported(why: string): Directive {
  return whole((s, rest, loc, name) => {
    s.ignored.push({ directive: name, value: rest, loc });
    s.d.warn(loc, `${name} is accepted but not used by tsbal: ${why}`);
  });
}

function addBcast(s: State, iface: string, loc: SourceLocation): void {
  s.media.push({ kind: 'bcast', iface, loc });
  s.mediaPorts.push({ port: s.udpPort, loc });
}

const DIRECTIVES: Record<string, Directive> = {
  keepalive: timeSetter('keepaliveMs'),
  deadtime: timeSetter('deadtimeMs'),
  warntime: timeSetter('warntimeMs'),
  initdead: timeSetter('initdeadMs'),
  deadping: timeSetter('deadpingMs'),
  udpport: token((s, v, loc, name) => {
    const port = intIn(s, v, loc, name, 1, 65535);
    if (port === null) return;
    const earlier = s.mediaPorts[0];
    if (earlier && port !== s.udpPort) {
      s.d.warn(loc, `udpport ${port} comes after the media line ${earlier.loc.line}, which keeps port ${s.udpPort}`,
        'move udpport above the bcast/ucast lines (heartbeat reads them in order)');
    }
    s.udpPort = port;
  }),
  bcast: token((s, v, loc) => addBcast(s, v, loc)),
  udp: token((s, v, loc) => {
    s.d.warn(loc, `directive 'udp' replaced by 'bcast'`, `write bcast ${v}`);
    addBcast(s, v, loc);
  }),
  mcast: whole((s, rest, loc) => parseMcast(s, rest, loc)),
  ucast: whole((s, rest, loc) => {
    const [iface, peer, ...extra] = rest.split(/\s+/).filter(Boolean);
    if (!iface) return s.d.error(loc, 'ucast: missing interface', 'ucast IFACE PEER-IP');
    if (!peer) return s.d.error(loc, `ucast [${iface}] missing target IP address/hostname`, 'ucast IFACE PEER-IP');
    if (extra.length > 0) s.d.warn(loc, `ucast takes one peer per line; ignoring '${extra.join(' ')}'`, 'write one ucast line per peer');
    s.media.push({ kind: 'ucast', iface, peer, loc });
    s.mediaPorts.push({ port: s.udpPort, loc });
  }),
  node: token((s, v, loc) => {
    const name = v.toLowerCase();
    if (s.nodes.includes(name)) return s.d.warn(loc, `node ${name} is listed twice`);
    if (s.nodes.length >= MAX_NODES) return s.d.error(loc, `too many nodes (heartbeat allows at most ${MAX_NODES})`);
    s.nodes.push(name);
  }),
  auto_failback: token((s, v, loc, name) => {
    s.autoFailbackGiven = true;
    const af = oneOf(s, v.toLowerCase(), loc, name, ['on', 'off', 'legacy'] as const);
    if (af !== null) s.autoFailback = af;
  }),
  nice_failback: token((s, v, loc, name) => {
    const b = boolOf(s, v, loc, name);
    if (b === null) return;
    // heartbeat 3.0.6 logs "nice_failback on has been strictly interpreted as 'auto_failback legacy'".
    s.autoFailback = 'legacy';
    s.d.warn(loc, `nice_failback ${v} is obsolete and is interpreted as 'auto_failback legacy'`, 'write auto_failback on (or off)');
  }),
  logfacility: token((s, v, loc) => {
    if (!(SYSLOG_FACILITIES as readonly string[]).includes(v)) {
      return s.d.error(loc, `Log facility(${v}) not valid`, didYouMean(v, SYSLOG_FACILITIES) ?? 'e.g. local0, daemon or none');
    }
    s.logfacility = v;
  }),
  logfile: token((s, v) => void (s.logfile = v)),
  debugfile: token((s, v) => void (s.debugfile = v)),
  use_logd: token((s, v, loc, name) => {
    const b = boolOf(s, v, loc, name);
    if (b !== null) s.useLogd = b;
  }),
  debug: token((s, v, loc, name) => {
    const n = intIn(s, v, loc, name, 0, 255);
    if (n !== null) s.debug = n;
  }),
  msgfmt: token((s, v, loc, name) => {
    const f = oneOf(s, v, loc, name, ['classic', 'netstring'] as const);
    if (f !== null) s.msgfmt = f;
  }),
  hbgenmethod: token((s, v, loc) => {
    if (v !== 'file' && v !== 'time') return s.d.error(loc, `Illegal hb generation method [${v}]`, 'expected file or time');
    s.hbgenmethod = v;
  }),
  max_rexmit_delay: token((s, v, loc) => {
    // Milliseconds; heartbeat takes 250 and 250ms but not 0.5.
    const m = /^(\d+)(ms)?$/.exec(v);
    if (!m || Number(m[1]) === 0) return s.d.error(loc, `Invalid max_rexmit_delay time(${v})`, 'milliseconds, e.g. 250');
    s.maxRexmitDelayMs = Number(m[1]);
  }),
  ping: token((s, v, loc) => {
    if (!isIpv4(v)) return s.d.error(loc, `ping: '${v}' is not an IPv4 address`);
    if (!s.pingNodes.includes(v)) s.pingNodes.push(v);
  }),
  ping_group: whole((s, rest, loc) => {
    const [name, ...members] = rest.split(/[\s,]+/).filter(Boolean);
    if (!name || members.length === 0) return s.d.error(loc, 'ping_group needs a name and at least one IP', 'ping_group NAME IP [IP...]');
    const bad = members.find((m) => !isIpv4(m));
    if (bad !== undefined) return s.d.error(loc, `ping_group ${name}: '${bad}' is not an IPv4 address`);
    s.pingGroups.push({ name: name.toLowerCase(), members });
  }),
  respawn: whole((s, rest, loc) => {
    const m = /^(\S+)\s+(\S.*)$/.exec(rest);
    if (!m) return s.d.error(loc, `respawn: expected a user and a command`, 'respawn hacluster /usr/lib/heartbeat/ipfail');
    const command = m[2]!;
    if (!command.startsWith('/')) return s.d.error(loc, `Client child command [${command.split(/\s+/)[0]}] is not full pathname`);
    s.respawn.push({ user: m[1]!, command, loc });
  }),
  crm: token((s, v, loc, name) => crmDirective(s, v, loc, name)),
  pacemaker: token((s, v, loc, name) => crmDirective(s, v, loc, name)),
  autojoin: token((s, v, loc, name) => {
    const a = oneOf(s, v, loc, name, ['none', 'other', 'any'] as const);
    if (a !== null && a !== 'none') s.d.error(loc, 'R1 style resource management conflicts with autojoin set', 'tsbal uses haresources; set autojoin none');
  }),
  realtime: token((s, v, loc, name) => {
    if (boolOf(s, v, loc, name) !== null) s.ignored.push({ directive: name, value: v, loc });
  }),
  rtprio: token((s, v, loc, name) => {
    if (intIn(s, v, loc, name, 0, 99) !== null) s.ignored.push({ directive: name, value: v, loc });
  }),
  hopfudge: token((s, v, loc, name) => {
    if (intIn(s, v, loc, name, 0, 255) !== null) s.ignored.push({ directive: name, value: v, loc });
  }),
  uuidfrom: token((s, v, loc, name) => {
    if (oneOf(s, v, loc, name, ['file', 'nodename'] as const) !== null) s.ignored.push({ directive: name, value: v, loc });
  }),
  apiauth: whole((s, rest, loc, name) => {
    if (!/^\S+\s+(uid|gid)=/.test(rest)) return s.d.error(loc, `Invalid apiauth directive [${rest}]`);
    s.ignored.push({ directive: name, value: rest, loc });
  }),
  serial: unsupported('serial media are not supported; heartbeats go over UDP only'),
  baud: keep,
  mcast6: unsupported('IPv6 media are not supported'),
  ucast6: unsupported('IPv6 media are not supported'),
  hbaping: unsupported('hbaping is not supported'),
  stonith: unsupported('STONITH is not supported'),
  stonith_host: unsupported('STONITH is not supported'),
  watchdog: unsupported('the watchdog device is not used'),
  failfast: keep,
  coredumps: keep,
  coreroot: keep,
  memreserve: keep,
  conn_logd_time: keep,
  log_badpack: keep,
  syslogmsgfmt: keep,
  env: keep,
  cluster: keep,
  quorum_server: keep,
  crm_daemon_dir: keep,
  crmd_spawns_pengine: keep,
  record_config_changes: keep,
  record_pengine_inputs: keep,
  enable_config_writes: keep,
  use_apphbd: keep,
  compression: keep,
  compression_threshold: keep,
  traditional_compression: keep,
};

export const HACF_DIRECTIVES: readonly string[] = Object.keys(DIRECTIVES);

function crmDirective(s: State, v: string, loc: SourceLocation, name: string): void {
  if (s.seenCrm) s.d.error(loc, `${name} may appear only once (crm and pacemaker are the same directive)`);
  s.seenCrm = true;
  if (parseHaBool(v) === false) return;
  const known = ['on', 'respawn', 'minimal', 'manual', 'ccm-only', 'valgrind'];
  if (!known.includes(v.toLowerCase()) && parseHaBool(v) === null) return s.d.error(loc, `${name}: invalid value '${v}'`);
  s.d.error(loc, `${name} ${v}: Pacemaker mode is not supported; tsbal runs haresources (R1) clusters only`, `remove the line or set ${name} off`);
}

function parseMcast(s: State, rest: string, loc: SourceLocation): void {
  const [iface, group, port, ttl, loop] = rest.split(/\s+/).filter(Boolean);
  if (!iface) return s.d.error(loc, 'mcast: missing interface', 'mcast IFACE GROUP PORT TTL LOOP');
  const fields = { group, port, ttl, loop };
  for (const [what, v] of Object.entries(fields)) {
    if (v === undefined) return s.d.error(loc, `mcast [${iface}] missing ${what}`, 'mcast IFACE GROUP PORT TTL LOOP, e.g. mcast eth0 225.0.0.1 694 1 0');
  }
  const first = Number(group!.split('.')[0]);
  if (!isIpv4(group!) || first < 224 || first > 239) return s.d.error(loc, `mcast [${iface}] bad addr [${group}]`, 'a class D address, 224.0.0.0 to 239.255.255.255');
  if (!/^\d+$/.test(port!) || Number(port) < 1 || Number(port) > 65535) return s.d.error(loc, `mcast [${iface}] bad port [${port}]`);
  if (!/^\d+$/.test(ttl!) || Number(ttl) > 4) return s.d.error(loc, `mcast [${iface}] bad ttl [${ttl}]`, 'heartbeat accepts ttl 0 to 4');
  if (loop !== '0' && loop !== '1') return s.d.error(loc, `mcast [${iface}] bad loop [${loop}]`, 'loop is 0 or 1');
  s.media.push({ kind: 'mcast', iface, group: group!, port: Number(port), ttl: Number(ttl), loop: loop === '1', loc });
}

function newState(file: string, d: Diagnostics): State {
  return {
    d, file,
    keepaliveMs: null, deadtimeMs: null, warntimeMs: null, initdeadMs: null, deadpingMs: null, timeLines: {},
    udpPort: DEFAULT_UDP_PORT, mediaPorts: [], media: [], nodes: [], autoFailback: null, autoFailbackGiven: false,
    pingNodes: [], pingGroups: [], logfacility: null, logfile: null, debugfile: null, useLogd: null,
    debug: 0, msgfmt: 'classic', hbgenmethod: 'file', maxRexmitDelayMs: 250, respawn: [], ignored: [],
    seenCrm: false,
  };
}

/** Parses without throwing: the model as far as it goes, plus every error and warning. */
export function readHaCf(text: string, file: string, options: HaCfOptions = {}): Parsed<HaConfig> {
  const d = createDiagnostics();
  const s = newState(file, d);
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const content = lines[i]!.replace(/#.*/, '').trim();
    if (content === '') continue;
    const loc = { file, line: i + 1 };
    const m = /^(\S+)\s*(.*)$/.exec(content)!;
    const name = m[1]!;
    const rest = m[2]!;
    const directive = own(DIRECTIVES, name);
    if (!directive) {
      d.error(loc, `Illegal directive [${name}]`, didYouMean(name, HACF_DIRECTIVES));
      continue;
    }
    if (directive.whole) {
      directive.apply(s, rest, loc, name);
      continue;
    }
    const values = rest.split(/[ \t,]+/).filter(Boolean);
    if (values.length === 0) d.error(loc, `${name}: missing value`);
    for (const v of values) directive.apply(s, v, loc, name);
  }
  const value = finish(s, options);
  return { value, diagnostics: d.list };
}

/** heartbeat's defaults, derivations and whole-file checks (hb config.c init_config). */
function finish(s: State, options: HaCfOptions): HaConfig {
  const fileLoc = { file: s.file, line: 0 };
  /** The line of the first of these that was set (the one to edit), else the file. */
  const at = (...fields: TimeField[]) => ({ file: s.file, line: fields.map((f) => s.timeLines[f]).find((l) => l !== undefined) ?? 0 });
  const keepaliveMs = s.keepaliveMs ?? 1000;
  const deadtimeMs = s.deadtimeMs ?? 30_000;
  const warntimeMs = s.warntimeMs ?? Math.floor(deadtimeMs / 2);
  const initdeadMs = s.initdeadMs ?? (deadtimeMs > 10_000 ? deadtimeMs : deadtimeMs < 6000 ? 12_000 : 2 * deadtimeMs);
  const deadpingMs = s.deadpingMs ?? deadtimeMs;

  if (keepaliveMs <= 0) s.d.error(at('keepaliveMs'), `keepalive must be greater than 0 (got ${keepaliveMs} ms)`);
  if (deadtimeMs <= 2 * keepaliveMs) {
    s.d.error(at('deadtimeMs', 'keepaliveMs'), `Dead time [${deadtimeMs}] is too small compared to keepalive [${keepaliveMs}]`,
      'deadtime must be more than twice keepalive');
  }
  if (warntimeMs <= 0) s.d.error(at('warntimeMs'), `Warn time [${warntimeMs}] is invalid.`);
  if (initdeadMs < deadtimeMs) s.d.error(at('initdeadMs', 'deadtimeMs'), `Initial dead time [${initdeadMs}] is smaller than deadtime [${deadtimeMs}]`);
  else if (initdeadMs < 10_000) s.d.warn(at('initdeadMs', 'deadtimeMs'), `Initial dead time [${initdeadMs} ms] may be too small!`);
  if (deadpingMs <= 2 * keepaliveMs) {
    s.d.error(at('deadpingMs', 'deadtimeMs', 'keepaliveMs'), `Ping dead time [${deadpingMs}] is too small compared to keepalive [${keepaliveMs}]`);
  }
  if (s.media.length === 0) s.d.error(fileLoc, 'No heartbeat media defined', 'add e.g. bcast eth0 or ucast eth0 PEER-IP');
  if (s.nodes.length === 0) s.d.error(fileLoc, 'no nodes defined', 'add node lb1 lb2 (the uname -n names)');
  if (options.localNode !== undefined && s.nodes.length > 0 && !s.nodes.includes(options.localNode.toLowerCase())) {
    s.d.error(fileLoc, `Current node [${options.localNode.toLowerCase()}] not in configuration!`,
      `add it to a node line, or check uname -n (nodes: ${s.nodes.join(', ')})`);
  }
  const ports = new Set(s.mediaPorts.map((p) => p.port));
  if (ports.size > 1) {
    s.d.error(s.mediaPorts[s.mediaPorts.length - 1]!.loc, `media use different UDP ports (${[...ports].join(', ')})`,
      'put one udpport line above all bcast/ucast lines');
  }
  if (s.logfacility === null && s.logfile === null && s.debugfile === null && s.useLogd === false) {
    s.d.error(fileLoc, 'No log entry found in ha.cf and use_logd is set to off', 'add logfacility local0 or a logfile');
  }
  let autoFailback = s.autoFailback;
  if (autoFailback === null) {
    autoFailback = 'legacy';
    if (!s.autoFailbackGiven) s.d.warn(fileLoc, "Deprecated 'legacy' auto_failback option selected.", "Please convert to 'auto_failback on'.");
  }
  return {
    file: s.file,
    keepaliveMs, deadtimeMs, warntimeMs, initdeadMs, deadpingMs,
    udpPort: s.mediaPorts[0]?.port ?? s.udpPort,
    media: s.media,
    nodes: s.nodes,
    autoFailback,
    pingNodes: s.pingNodes,
    pingGroups: s.pingGroups,
    logfacility: s.logfacility,
    logfile: s.logfile,
    debugfile: s.debugfile,
    debug: s.debug,
    msgfmt: s.msgfmt,
    hbgenmethod: s.hbgenmethod,
    maxRexmitDelayMs: s.maxRexmitDelayMs,
    respawn: s.respawn,
    ignored: s.ignored,
    warnings: warningsOf(s.d.list),
  };
}

/** Parses ha.cf text; throws a ConfigError listing every error. Warnings are kept in `warnings`. */
export function parseHaCf(text: string, file: string, options: HaCfOptions = {}): HaConfig {
  const { value, diagnostics } = readHaCf(text, file, options);
  throwIfErrors(diagnostics);
  return value;
}
