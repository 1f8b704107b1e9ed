// The text of every file `tsbal setup` writes, from the options alone. Pure, and deterministic (no dates, no
// host facts), so a second run renders the same bytes and finds nothing to change.
import { parseHaTime } from '../config/hacf.ts';
import { DEFAULT_DAEMON_LOG_FILE } from '../log-file.ts';
import type { AuthMethodChoice, SetupOptions } from './options.ts';

export const SYSCTL_FILE = '/etc/sysctl.d/60-tsbal.conf';
export const HA_DIR = '/etc/ha.d';
export const PERLBAL_CONF = '/etc/perlbal/perlbal.conf';
export const SYSTEMD_UNIT = '/etc/systemd/system/tsbal.service';
export const RC_LOCAL = '/etc/rc.local';
export const RC_LOCAL_PIDFILE = '/run/tsbal.pid';

export interface ResolvedAuth {
  method: AuthMethodChoice;
  key: string;
  source: 'flag' | 'existing' | 'generated';
}

/** A file setup wants on disk. `merge` files (rc.local) are shared with the admin: only a marked block is ours. */
export interface DesiredFile {
  path: string;
  mode: number;
  content: string;
  secret: boolean;
}

const HEADER = (what: string): string =>
  `# ${what}\n# Written by tsbal setup; edit freely: setup keeps a file that exists unless run with --force.\n`;

export function renderSysctl(): string {
  return `${HEADER('Lets the standby node bind the VIP before it holds it (read at boot by systemd-sysctl or procps).')}net.ipv4.ip_nonlocal_bind = 1\n`;
}

/** A heartbeat time back in the file's syntax: whole seconds bare, anything else in ms. */
function haTimeText(ms: number): string {
  return ms % 1000 === 0 ? String(ms / 1000) : `${ms}ms`;
}

export function renderHaCf(o: SetupOptions): string {
  const deadtimeMs = parseHaTime(o.deadtime) ?? 10_000;
  // heartbeat's advice is at least twice deadtime, and it warns below 10 s (the network may come up slowly at boot).
  const initdead = haTimeText(Math.max(2 * deadtimeMs, 10_000));
  const medium = o.peerIp === null ? `bcast ${o.iface}` : `ucast ${o.iface} ${o.peerIp}`;
  const nodes = [o.node, o.peer].sort();
  const lines = [
    HEADER(`heartbeat cluster of ${nodes.join(' and ')}, read by tsbal run (and by heartbeat 3 itself).`),
    'logfacility local0',
    `keepalive ${o.keepalive}`,
    `deadtime ${o.deadtime}`,
    `initdead ${initdead}`,
    medium,
    `auto_failback ${o.autoFailback ? 'on' : 'off'}`,
    ...nodes.map((n) => `node ${n}`),
    ...o.ping.map((p) => `ping ${p}`),
  ];
  return `${lines.join('\n')}\n`;
}

export function renderAuthkeys(auth: ResolvedAuth): string {
  return `${HEADER('Shared secret of the cluster: the same file, mode 600, on both nodes.')}auth 1\n1 ${auth.method} ${auth.key}\n`;
}

export function renderHaResources(o: SetupOptions): string {
  return `${HEADER('Resource groups; the same file on both nodes. The first name is the node that holds the VIP when it is up.')}${o.primary} IPaddr::${o.vip.ip}/${o.vip.cidr}/${o.iface}\n`;
}

export function renderNodeinfo(o: SetupOptions): string {
  // heartbeat (and tsbal) take the first line as this node's name instead of uname -n; no comment allowed.
  return `${o.node}\n`;
}

/** The pool's active health checks: every backend asked for the path every 2 s, idle ones included. */
function healthCheckLines(o: PerlbalConfOptions): string[] {
  return [`  SET health_check_path     = ${o.healthPath}`, '  SET health_check_interval = 2s'];
}

/** Session affinity: tsbal extensions (docs/compat.md); without sticky_secret the key comes from authkeys. */
function stickyLines(o: PerlbalConfOptions): string[] {
  if (o.sticky === 'off') return [];
  return [`  SET sticky          = ${o.sticky}`, ...(o.stickySecret === undefined ? [] : [`  SET sticky_secret   = ${o.stickySecret}`])];
}

/** What perlbal.conf is rendered from: the heartbeat mode's options, or anycast's (its VIP as `vip`). */
export type PerlbalConfOptions = Pick<SetupOptions, 'backends' | 'healthPath' | 'port' | 'mgmtPort' | 'sticky'> & {
  vip: { ip: string };
  /** `SET sticky_secret`: anycast nodes share it in the file (a heartbeat pair keys affinity by authkeys instead). */
  stickySecret?: string;
};

/** `listen` of the balancer: Perlbal's ip:port, with an IPv6 address in brackets. */
const listenOn = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** `server`: SERVER lines that go first (anycast mode's); `what`: the header's description. */
export function renderPerlbalConf(o: PerlbalConfOptions, server: readonly string[] = [], what = 'Perlbal configuration, as in the classic two-node recipe; tsbal run serves it.'): string {
  const lines = [
    HEADER(what),
    ...(server.length > 0 ? [...server, ''] : []),
    'CREATE POOL backends',
    ...o.backends.map((b) => `  POOL backends ADD ${b}`),
    ...healthCheckLines(o),
    '',
    'CREATE SERVICE balancer',
    `  SET listen          = ${listenOn(o.vip.ip, o.port)}`,
    '  SET role            = reverse_proxy',
    '  SET pool            = backends',
    '  SET persist_client  = on',
    '  SET persist_backend = on',
    '  SET verify_backend  = on',
    ...stickyLines(o),
    'ENABLE balancer',
    '',
    'CREATE SERVICE mgmt',
    '  SET role   = management',
    `  SET listen = 127.0.0.1:${o.mgmtPort}`,
    'ENABLE mgmt',
  ];
  return `${lines.join('\n')}\n`;
}

/** One word of a systemd command line or a shell line: quoted only when it must be. */
export function quoteWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Restart on a crash as the rc.local path's supervisor does (src/cli/supervise.ts, RESTART_POLICY: the same numbers).
 * A crashed engine leaves the VIP configured and refusing connections until the peer's deadtime, so the restart is
 * quick (250 ms; the engine then serves about half a second later); 5 restarts in 60 s is a crash loop, left for the
 * admin (`systemctl status`), and the peer takes over at deadtime.
 */
export const UNIT_RESTART = { restartSec: '250ms', startLimitIntervalSec: 60, startLimitBurst: 5 } as const;

/** Anycast mode's unit: the VIP's announced copy, which the unit takes away whenever tsbal stops or dies. */
export interface UnitAnycast {
  prefix: string;
  dev: string;
}

export function renderSystemdUnit(exec: readonly string[], anycast: UnitAnycast | null = null): string {
  const start = [...exec, 'run'].map(quoteWord).join(' ');
  const what = anycast === null ? 'the proxy and the HA engine of this node.' : `the proxy of this anycast node; it puts ${anycast.prefix} on ${anycast.dev} while it serves, and FRR announces it.`;
  const description = anycast === null
    ? 'tsbal load balancer (perlbal.conf) and heartbeat-compatible HA (/etc/ha.d)'
    : `tsbal load balancer (perlbal.conf), anycast ${anycast.prefix} announced by FRR`;
  const after = anycast === null ? 'network-online.target' : 'network-online.target systemd-networkd.service frr.service';
  // Runs after every stop, a crash or kill -9 included: a dead proxy behind a live announcement is a black hole that
  // BFD cannot see (host and FRR are fine), so the address goes, and with it the route. `-`: it may be gone already.
  const withdraw = [...exec, 'anycast', 'withdraw', '--vip', anycast?.prefix ?? '', '--dev', anycast?.dev ?? ''].map(quoteWord).join(' ');
  const cleanup = anycast === null ? '' : `# Whenever tsbal stops or dies: take the VIP off ${anycast.dev}, so FRR withdraws the route (the restart adds it back once
# healthy). \`tsbal anycast withdraw\` removes both copies (the address and the local route on lo); the plain ip line
# is the backstop that needs nothing of tsbal (it fails harmlessly when the address is already gone).
ExecStopPost=-${withdraw}
ExecStopPost=-/sbin/ip addr del ${anycast.prefix} dev ${anycast.dev}
`;
  return `${HEADER(`tsbal: ${what}`)}
[Unit]
Description=${description}
After=${after}
Wants=network-online.target
# A crash loop (more restarts than this) stops here; see Restart= below.
StartLimitIntervalSec=${UNIT_RESTART.startLimitIntervalSec}
StartLimitBurst=${UNIT_RESTART.startLimitBurst}

[Service]
Type=simple
ExecStartPre=${[...exec, 'check'].map(quoteWord).join(' ')}
ExecStart=${start}
# Checks perlbal.conf first, sends SIGHUP, and fails (systemctl reload says so) when the reload is refused.
ExecReload=${[...exec, 'reload', '--pid'].map(quoteWord).join(' ')} $MAINPID
${cleanup}# A crash (kill -9, OOM) leaves the VIP configured and refusing connections: start again at once, not at deadtime.
Restart=on-failure
RestartSec=${UNIT_RESTART.restartSec}
LimitNOFILE=65536
# Root, but only with what moving a VIP needs: ip addr (NET_ADMIN), arping (NET_RAW), ports below 1024.
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
# The HA engine keeps its generation and control socket in /var/lib/tsbal (the default --state-dir).
StateDirectory=tsbal
# ha.cf may name a logfile or debugfile (heartbeat's own default place is /var/log).
ReadWritePaths=-/var/log
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
ProtectClock=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET
RestrictNamespaces=yes
LockPersonality=yes

[Install]
WantedBy=multi-user.target
`;
}

export const RC_BEGIN = '# BEGIN tsbal (managed by tsbal setup; this block is replaced on the next run)';
export const RC_END = '# END tsbal';

/**
 * The command rc.local runs at boot, which setup also prints to start tsbal now. `--daemon` supervises: the engine is
 * started again when it crashes (`tsbal run --supervise`, src/cli/supervise.ts).
 */
export function rcLocalStartCommand(exec: readonly string[]): string {
  return [...exec, 'run', '--daemon', '--pidfile', RC_LOCAL_PIDFILE, '--log-file', DEFAULT_DAEMON_LOG_FILE].map(quoteWord).join(' ');
}

export function renderRcLocalBlock(exec: readonly string[]): string {
  const run = rcLocalStartCommand(exec);
  // rc.local runs under `sh -e`: a tsbal that fails to start must not abort the admin's lines after the block.
  return `${RC_BEGIN}\n${run} || echo 'tsbal: failed to start; see ${DEFAULT_DAEMON_LOG_FILE}' >&2\n${RC_END}\n`;
}

/**
 * rc.local belongs to the admin: replace our marked block if there is one, else add it before the final `exit 0`
 * (rc.local must end with it), else at the end. A missing file becomes a minimal script.
 */
export function mergeRcLocal(existing: string | null, block: string): string {
  if (existing === null || existing.trim() === '') return `#!/bin/sh -e\n\n${block}\nexit 0\n`;
  const begin = existing.indexOf(RC_BEGIN);
  const end = begin < 0 ? -1 : existing.indexOf(RC_END, begin);
  if (begin >= 0 && end >= 0) {
    const after = existing.indexOf('\n', end);
    return existing.slice(0, begin) + block + (after < 0 ? '' : existing.slice(after + 1));
  }
  const text = existing.endsWith('\n') ? existing : `${existing}\n`;
  const exit = /^[ \t]*exit 0[ \t]*$/gm;
  let last: RegExpExecArray | null = null;
  for (let m = exit.exec(text); m !== null; m = exit.exec(text)) last = m;
  if (last === null) return `${text}\n${block}`;
  return `${text.slice(0, last.index)}${block}\n${text.slice(last.index)}`;
}
