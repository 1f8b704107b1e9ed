// `tsbal setup --anycast VIP --router IP --router-asn N --asn N --node NAME --backend IP:PORT ...`: one node of N
// behind an ECMP router. Writes perlbal.conf (SERVER anycast_*), FRR's daemons and frr.conf, the VIP's interface
// (systemd-networkd) and the unit whose ExecStopPost takes the VIP away; prints what the router needs.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { basename } from 'node:path';
import { nodeConfigFs } from '../config/perlbal.ts';
import { SetupError, applyAction, applyNonlocalBind, enableSystemdUnit, readExisting, systemdIsRunning, underRoot } from '../setup/apply.ts';
import { parseAnycastArgs, type AnycastOptions, type HostAddress, type RawAnycastArgs } from '../setup/anycast-options.ts';
import { anycastPlannedPaths, planAnycastSetup, type AnycastPlan } from '../setup/anycast-plan.ts';
import { FRR_CONF, routerSideLines, vipPrefix } from '../setup/frr.ts';
import { planIsNoop } from '../setup/plan.ts';
import { PERLBAL_CONF, SYSTEMD_UNIT, quoteWord } from '../setup/render.ts';
import { actionLine, shownContent } from '../setup/report.ts';
import { UsageError } from './common.ts';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

function hostAddresses(): HostAddress[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => ({ address: a.address, cidr: a.cidr, family: a.family })));
}

export function summaryLine(o: AnycastOptions): string {
  const n = o.backends.length;
  return `tsbal setup: anycast node ${o.node} (router-id ${o.routerId}, ASN ${o.asn}); VIP ${vipPrefix(o)} on ${o.dev} (${o.devKind}), announced to ` +
    `${o.routers.join(', ')} (ASN ${o.routerAsn}); ${n} backend${n === 1 ? '' : 's'} behind ${o.anycast.includes(':') ? `[${o.anycast}]` : o.anycast}:${o.port}`;
}

/** The VIP's interface, now (networkd makes it at boot from the .netdev): `ip link add`, then up. */
function ensureDevice(o: AnycastOptions): 'created' | 'exists' {
  const ip = (args: string[]): { ok: boolean; output: string } => {
    const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
    return { ok: r.status === 0, output: `${r.stderr ?? ''}${r.stdout ?? ''}`.trim() || (r.error?.message ?? `exit ${r.status}`) };
  };
  const exists = ip(['link', 'show', 'dev', o.dev]).ok;
  if (!exists) {
    const add = ip(['link', 'add', o.dev, 'type', o.devKind]);
    if (!add.ok) throw new SetupError(`ip link add ${o.dev} type ${o.devKind}: ${add.output}${o.devKind === 'dummy' ? ' (a kernel without the dummy module: --anycast-dev-kind ifb)' : ''}`);
  }
  const up = ip(['link', 'set', o.dev, 'up']);
  if (!up.ok) throw new SetupError(`ip link set ${o.dev} up: ${up.output}`);
  return exists ? 'exists' : 'created';
}

const nonlocalBindKey = (o: AnycastOptions): string => `net.ipv${o.anycast.includes(':') ? 6 : 4}.ip_nonlocal_bind`;

function carryOut(o: AnycastOptions, plan: AnycastPlan, where: (p: string) => string): boolean {
  let changed = !planIsNoop(plan);
  for (const action of plan.actions) console.log(actionLine(applyAction(o.root, action), where, false));
  if (!o.apply) {
    console.log(`not applied  ${nonlocalBindKey(o)}, ${o.dev} (${o.root === '/' ? '--no-apply' : '--root'}; applied at boot from the files)`);
    return changed;
  }
  // IPv6 needs it too: unlike IPv4, a `local` route on lo does not let a socket bind the address (inet6_bind checks
  // interface addresses only), and without the bind the VIP is never announced.
  const sysctl = applyNonlocalBind(o.anycast.includes(':') ? 6 : 4);
  if (sysctl === 'set') changed = true;
  console.log(sysctl === 'set' ? `applied      ${nonlocalBindKey(o)} = 1` : `unchanged    ${nonlocalBindKey(o)} = 1 (already)`);
  const device = ensureDevice(o);
  if (device === 'created') changed = true;
  console.log(device === 'created' ? `created      ${o.dev} (ip link add ${o.dev} type ${o.devKind}; up)` : `unchanged    ${o.dev} (exists; set up)`);
  if (o.init === 'systemd' && o.root === '/') {
    const unitChanged = plan.actions.some((a) => a.file.path === SYSTEMD_UNIT && a.kind !== 'unchanged' && a.kind !== 'keep');
    const outcome = enableSystemdUnit('tsbal.service', unitChanged);
    if (outcome === 'enabled') changed = true;
    if (outcome === 'enabled') console.log('enabled      tsbal.service (systemctl daemon-reload, systemctl enable)');
    else if (outcome === 'already-enabled') console.log('unchanged    tsbal.service (already enabled)');
    else console.log('note: systemd is not running here; enable the unit where it runs: systemctl enable tsbal.service');
  }
  return changed;
}

/**
 * The other nodes' command, when this run made the affinity key (the first node): every node needs the same one, or
 * a client's cookie names another backend on the next node it lands on. Printed this once, piped in (never in `ps`).
 */
export function otherNodeLines(o: AnycastOptions, plan: AnycastPlan): string[] {
  const action = plan.actions.find((a) => a.file.path === PERLBAL_CONF);
  if (plan.sticky?.source !== 'generated' || action === undefined || (action.kind !== 'create' && action.kind !== 'replace')) return [];
  const flags = [
    '--node', 'NODE', '--anycast', o.anycast, ...(o.dev === 'vip0' ? [] : ['--anycast-dev', o.dev]), ...(o.devKind === 'dummy' ? [] : ['--anycast-dev-kind', o.devKind]),
    ...o.routers.flatMap((r) => ['--router', r]), '--router-asn', String(o.routerAsn), '--asn', String(o.asn),
    ...o.backends.flatMap((b) => ['--backend', b]), ...(o.port === 80 ? [] : ['--port', String(o.port)]), ...(o.mgmtPort === 60000 ? [] : ['--mgmt-port', String(o.mgmtPort)]), ...(o.sticky === 'cookie' ? [] : ['--sticky', o.sticky]),
    ...(o.healthPath === '/' ? [] : ['--health-path', o.healthPath]), '--sticky-secret-file', '/dev/stdin',
  ];
  return [
    '',
    'Set up each other node with the same affinity key (NODE: its name; its router-id is found as here):',
    ` printf '%s\\n' ${plan.sticky.secret} | tsbal setup ${flags.map(quoteWord).join(' ')}`,
    '  SECRET: the line above holds the session affinity key, printed only this once (it is also in perlbal.conf, mode 600).',
  ];
}

export function runAnycastCommand(raw: RawAnycastArgs & Record<string, unknown>, exec: readonly string[]): void {
  const parsed = parseAnycastArgs(raw, { addresses: hostAddresses(), liveInit: systemdIsRunning() ? 'systemd' : 'none', readSecretFile: (path) => readFileSync(path, 'utf8') });
  if (!parsed.ok) throw new UsageError(`setup: ${parsed.errors.join('\n  ')}\n  (see tsbal setup --help)`, EXIT_USAGE);
  const o = parsed.value;
  const where = (path: string): string => underRoot(o.root, path);
  try {
    const plan = planAnycastSetup(o, { exec, existing: readExisting(o.root, anycastPlannedPaths(o)), now: new Date(), randomKey: randomBytes(32).toString('hex'), perlbalFs: nodeConfigFs });
    console.log(summaryLine(o));
    for (const w of plan.warnings) console.error(w);
    if (plan.errors.length > 0) {
      for (const e of plan.errors) console.error(e);
      for (const line of plan.advice) console.error(line);
      throw new UsageError(`setup: ${plan.errors.length} problem${plan.errors.length === 1 ? '' : 's'} in the files this node would have; nothing was written`, EXIT_FAILED);
    }
    if (o.init === 'none') console.error(`warning: no unit written (--init none): nothing takes ${vipPrefix(o)} off ${o.dev} if tsbal dies, and the router keeps sending clients to a closed port`);
    if (o.dryRun) {
      for (const action of plan.actions) {
        console.log(actionLine(action, where, true));
        if (action.kind === 'create' || action.kind === 'replace') console.log(shownContent(action.file).replace(/^/gm, '    | ').trimEnd());
      }
      if (o.apply) console.log(`would apply  ${nonlocalBindKey(o)} = 1, ip link add ${o.dev} type ${o.devKind}` + (o.init === 'systemd' && o.root === '/' ? ', systemctl enable tsbal.service' : ''));
      console.log('dry run: nothing was written');
    } else {
      const changed = carryOut(o, plan, where);
      const kept = plan.actions.filter((a) => a.kind === 'keep').map((a) => basename(a.file.path));
      if (!changed && kept.length > 0) console.log(`nothing written: ${kept.join(', ')} kept with content of ${kept.length === 1 ? 'its' : 'their'} own (--force ${kept.join(',')} replaces ${kept.length === 1 ? 'it' : 'them'}, keeping a .bak)`);
      else if (!changed) console.log('nothing to change: this node is already set up with these flags');
      const frrChanged = plan.actions.some((a) => a.file.path.startsWith('/etc/frr/') && (a.kind === 'create' || a.kind === 'replace'));
      console.log(`next: tsbal check -c ${where(PERLBAL_CONF)}${o.root === '/' ? '' : ` --frr-conf ${where(FRR_CONF)}`}` +
        (frrChanged ? '; systemctl restart frr (FRR reads daemons and frr.conf at start)' : '') + (o.init === 'systemd' ? '; systemctl start tsbal' : ''));
    }
    if (!o.dryRun) for (const line of otherNodeLines(o, plan)) console.log(line);
    console.log('');
    for (const line of routerSideLines(o, o.routerId)) console.log(line);
  } catch (error) {
    if (error instanceof SetupError) throw new UsageError(error.message, EXIT_FAILED);
    throw error;
  }
}
