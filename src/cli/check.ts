// `tsbal check`: validate perlbal.conf and /etc/ha.d like `nginx -t`, print what would run, exit 0 or 1.
import { defineCommand } from 'citty';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { availableParallelism, networkInterfaces } from 'node:os';
import { canonicalIpv6 } from '../config/perlbal/values.ts';
import { applyLogArgs, guarded, logArgs } from './common.ts';
import { formatDiagnostic, type ConfigDiagnostic } from '../config/errors.ts';
import { readPerlbalConfigFile } from '../config/perlbal.ts';
import { detectLocalNode, readHaDir } from '../config/hadir.ts';
import { checkAcrossFiles, checkListenAddresses } from '../config/crosscheck.ts';
import { summarizeHa, summarizePerlbal } from '../config/summary.ts';
import { runRefusals, unservedServices } from '../proxy/roles.ts';
import { findScript } from '../ha/resources.ts';
import { DEFAULT_STATE_DIR } from '../ha/cluster.ts';
import { anycastSettings, type AnycastSettings } from '../config/anycast.ts';
import { checkFrrAgainstVip, checkFrrDaemons, usesBfd } from '../config/frr.ts';
import { perProcessLimits, planWorkers, portZeroServices, WORKERS_ENV, workersEnvProblem, workersSetting } from '../proxy/workers/count.ts';
import { AFFINITY_KEY_FILE, HOST_ONLY_KEY_HINT, hostOnlyKeyWarning, servicesOnClusterKey } from './affinity-key.ts';

export const DEFAULT_PERLBAL_CONF = '/etc/perlbal/perlbal.conf';
export const DEFAULT_HA_DIR = '/etc/ha.d';
export const DEFAULT_FRR_CONF = '/etc/frr/frr.conf';

function readNonlocalBind(): boolean | null {
  try {
    return readFileSync('/proc/sys/net/ipv4/ip_nonlocal_bind', 'utf8').trim() === '1';
  } catch {
    return null;
  }
}

/** Every IPv4 address of this host (in this network namespace). */
export function localIpv4Addresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address)));
}

/** This host's IPv4 and IPv6 addresses, IPv6 ones canonical (as `SET listen = [..]` keeps them) and without a zone. */
export function hostAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => (a.family === 'IPv4' ? a.address : canonicalIpv6(a.address.replace(/%.*$/, '')) ?? a.address))));
}

export interface CheckArgs {
  config?: string;
  /** `required`: given on the command line, so it must be there; otherwise it is skipped when it has no ha.cf. */
  haDir: { path: string; required: boolean };
  node?: string;
  /** FRR's config, checked against anycast_vip (default /etc/frr/frr.conf; a missing default is a warning only). */
  frrConf?: string;
  cwd: string;
}

/**
 * Anycast mode: FRR must announce exactly anycast_vip (frr.conf's prefix-list, route-map and neighbours), and run
 * bgpd (and bfdd) by the daemons file beside it.
 */
export function checkFrrFiles(anycast: AnycastSettings, frrConf: string | undefined): { diagnostics: ConfigDiagnostic[]; summary: string; read: string | null } {
  const file = frrConf ?? DEFAULT_FRR_CONF;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    const message = `cannot read (${code}): nothing checks that FRR announces anycast_vip ${anycast.vip}`;
    return { diagnostics: [{ file, line: 0, severity: frrConf === undefined ? 'warning' : 'error', message, hint: 'tsbal setup --anycast writes it; --frr-conf names another' }], summary: `anycast      ${anycast.vip} on ${anycast.dev} (no ${file})`, read: null };
  }
  const diagnostics = checkFrrAgainstVip(text, file, anycast.vip);
  const daemons = join(dirname(file), 'daemons');
  if (existsSync(daemons)) diagnostics.push(...checkFrrDaemons(readFileSync(daemons, 'utf8'), daemons, usesBfd(text)));
  return { diagnostics, summary: `anycast      ${anycast.vip} on ${anycast.dev}, announced by FRR (${file})`, read: file };
}

export interface CheckOutcome {
  ok: boolean;
  stdout: string[];
  stderr: string[];
}

/** Everything `tsbal check` does, minus printing and exiting. */
export function runCheck(args: CheckArgs): CheckOutcome {
  const stdout: string[] = [];
  const diagnostics: ConfigDiagnostic[] = [];
  const perlbal = readPerlbalConfigFile(args.config ?? DEFAULT_PERLBAL_CONF, { cwd: args.cwd });
  diagnostics.push(...perlbal.diagnostics);

  const haDir = args.haDir.path;
  const haWanted = args.haDir.required || existsSync(join(haDir, 'ha.cf'));
  const localNode = haWanted ? (args.node?.toLowerCase() ?? detectLocalNode(haDir)) : null;
  const ha = haWanted ? readHaDir(haDir, { localNode }) : null;
  if (ha) diagnostics.push(...ha.diagnostics);
  // A resource script missing here fails only when this node takes its group over, the worst time to find out.
  for (const group of ha?.value.haresources.groups ?? []) {
    for (const r of group.resources) {
      if (r.kind !== 'script') continue;
      try {
        findScript(r.name, haDir);
      } catch (error) {
        diagnostics.push({ ...group.loc, severity: 'warning', message: `${(error as Error).message}: taking over this group would fail`, hint: 'install it on this node, or fix its name' });
      }
    }
  }

  // The files are valid Perlbal; say up front which services this version of `tsbal run` will not serve. A role it
  // refuses is an error, as it would be at the next restart: check passing and run refusing must never disagree.
  for (const { service, support } of unservedServices(perlbal.value.services)) {
    diagnostics.push({
      ...service.loc,
      severity: support === 'refused' ? 'error' : 'warning',
      message:
        support === 'refused'
          ? `service ${service.name}: role ${service.role} is not served by this version of tsbal run, which refuses to start with it`
          : `service ${service.name}: role ${service.role ?? '(none)'} is not served by this version of tsbal run; it will be skipped`,
    });
  }

  // What tsbal run would refuse (a security plugin it would not enforce, a selector target it cannot serve) is an error.
  for (const { loc, message } of runRefusals(perlbal.value.services)) diagnostics.push({ ...loc, severity: 'error', message });

  const anycast = perlbal.diagnostics.some((d) => d.severity === 'error') ? null : anycastSettings(perlbal.value);
  const frr = anycast === null ? null : checkFrrFiles(anycast, args.frrConf);
  if (frr !== null) diagnostics.push(...frr.diagnostics);
  else if (args.frrConf !== undefined && !perlbal.diagnostics.some((d) => d.severity === 'error')) {
    diagnostics.push({ file: args.frrConf, line: 0, severity: 'warning', message: 'not checked: perlbal.conf has no SERVER anycast_vip (FRR announces nothing of tsbal\'s without it)' });
  }

  const errors = diagnostics.filter((d) => d.severity === 'error');
  // --node names the node whose files these are: maybe not this host, whose addresses then say nothing about them.
  const localAddresses = args.node === undefined ? hostAddresses() : null;
  if (ha && errors.length === 0) diagnostics.push(...checkAcrossFiles(perlbal.value, ha.value, { nonlocalBind: readNonlocalBind(), localAddresses }));
  // The anycast VIP is added by tsbal run itself once it serves: like a VIP in haresources, not yet on this host.
  else if (errors.length === 0) diagnostics.push(...checkListenAddresses(perlbal.value, new Set(anycast === null ? [] : [anycast.host]), localAddresses));

  if (errors.length === 0) {
    stdout.push(...summarizePerlbal(perlbal.value));
    if (frr !== null) stdout.push(frr.summary);
    if (ha) stdout.push(...summarizeHa(ha.value, localNode));
    else if (anycast !== null) stdout.push('cluster      (anycast: no heartbeat; the router spreads clients over the nodes)');
    else stdout.push(`cluster      (no ${join(haDir, 'ha.cf')}: running without HA)`);
    stdout.push(workersLine(perlbal.value));
  }
  // Session affinity without sticky_secret: keyed by the cluster's authkeys, else by a key of this host only.
  if (errors.length === 0 && ha === null) {
    const file = join(DEFAULT_STATE_DIR, AFFINITY_KEY_FILE);
    for (const s of servicesOnClusterKey(perlbal.value)) diagnostics.push({ ...s.loc, severity: 'warning', message: hostOnlyKeyWarning(s, file), hint: HOST_ONLY_KEY_HINT });
  }
  const warnings = diagnostics.filter((d) => d.severity === 'warning');
  const stderr = [...errors, ...warnings].map(formatDiagnostic);
  const files = [perlbal.value.file, ...(ha ? [haDir] : []), ...(frr?.read ? [frr.read] : [])].join(' and ');
  if (errors.length === 0) stdout.push(`tsbal check: ${files}: configuration OK${warnings.length > 0 ? ` (${warnings.length} warning${warnings.length === 1 ? '' : 's'})` : ''}`);
  else stderr.push(`tsbal check: ${errors.length} error${errors.length === 1 ? '' : 's'} in ${files}`);
  return { ok: errors.length === 0, stdout, stderr };
}

export default defineCommand({
  meta: { name: 'check', description: 'Validate perlbal.conf and /etc/ha.d (like nginx -t) and summarise what would run' },
  args: {
    ...logArgs,
    config: { type: 'string', alias: 'c', description: `perlbal.conf to check (default ${DEFAULT_PERLBAL_CONF})` },
    'ha-dir': { type: 'string', description: `heartbeat config directory (default ${DEFAULT_HA_DIR}, skipped if it has no ha.cf)` },
    node: { type: 'string', description: "this node's name (default: nodeinfo or uname -n), to check another node's files" },
    'frr-conf': { type: 'string', description: `with SERVER anycast_vip: FRR's config to check against it (default ${DEFAULT_FRR_CONF}; daemons beside it)` },
  },
  run: ({ args }) =>
    guarded(() => {
      applyLogArgs(args);
      const haDir = args['ha-dir'] === undefined ? { path: DEFAULT_HA_DIR, required: false } : { path: args['ha-dir'], required: true };
      const outcome = runCheck({ config: args.config, haDir, node: args.node, frrConf: args['frr-conf'], cwd: process.cwd() });
      for (const line of outcome.stdout) console.log(line);
      for (const line of outcome.stderr) console.error(line);
      process.exitCode = outcome.ok ? 0 : 1;
    }),
});

/** What `tsbal run` on this host and runtime would start for SERVER workers (the same plan as run.ts makes). */
function workersLine(config: Parameters<typeof perProcessLimits>[0] & Parameters<typeof portZeroServices>[0] & { server: { workers?: string | number } }): string {
  const setting = workersSetting(config.server.workers, process.env[WORKERS_ENV]);
  const plan = planWorkers(setting, { cores: availableParallelism(), versions: process.versions, portZero: portZeroServices(config), perProcess: perProcessLimits(config) });
  const asked = setting.kind === 'auto' ? 'auto' : String(setting.n);
  const what = plan.count > 1 ? `${plan.count} worker processes` : 'one process';
  const why = plan.note ?? (plan.warning !== undefined ? `warning: ${plan.warning}` : `SERVER workers = ${asked}`);
  const envProblem = workersEnvProblem(process.env[WORKERS_ENV]);
  return `workers      ${what} (${why})${envProblem === null ? '' : `; warning: ${envProblem}`}`;
}
