// `tsbal setup --node lb1 --peer lb2 --vip IP/BITS --iface IF --backend IP:PORT ...`: the manual steps of the classic
// two-node recipe in one idempotent command (sysctl drop-in, /etc/ha.d, perlbal.conf, a systemd unit or rc.local hook).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { basename } from 'node:path';
import { nodeConfigFs } from '../config/perlbal.ts';
import { defineCommand } from 'citty';
import { SetupError, applyAction, applyNonlocalBind, enableSystemdUnit, readExisting, systemdIsRunning, underRoot } from '../setup/apply.ts';
import { adoptArgsProblems, runAdoptCommand } from './setup-adopt.ts';
import { runAnycastCommand } from './setup-anycast.ts';
import { forceFlags, parseSetupArgs, repeatedFlag, type InitSystem, type RawSetupArgs, type SetupOptions } from '../setup/options.ts';
import { planIsNoop, plannedPaths, planSetup, type SetupPlan } from '../setup/plan.ts';
import { PERLBAL_CONF, RC_LOCAL, rcLocalStartCommand, SYSCTL_FILE, SYSTEMD_UNIT } from '../setup/render.ts';
import { ownAddress } from '../setup/join.ts';
import { actionLine, joinLines, shownContent, summaryLine } from '../setup/report.ts';
import { selfInvocation } from '../runtime/self.ts';
import { applyLogArgs, guarded, logArgs, UsageError } from './common.ts';

/** Exit codes: 0 done (or nothing to do), 1 an error in what would be written or while writing, 2 bad flags. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

function execLine(exec: string | undefined): string[] {
  if (exec !== undefined) return [exec];
  const self = selfInvocation();
  return [self.command, ...self.args];
}

function printDryRun(plan: SetupPlan, where: (p: string) => string): void {
  for (const action of plan.actions) {
    console.log(actionLine(action, where, true));
    if (action.kind === 'create' || action.kind === 'replace') {
      console.log(shownContent(action.file).replace(/^/gm, '    | ').trimEnd());
    }
  }
}

/** Writes the files and applies; true when anything changed (files, the live sysctl, the unit's state). */
function carryOut(o: SetupOptions, plan: SetupPlan, where: (p: string) => string): boolean {
  let changed = !planIsNoop(plan);
  for (const action of plan.actions) console.log(actionLine(applyAction(o.root, action), where, false));
  if (!o.apply) {
    console.log(`not applied  net.ipv4.ip_nonlocal_bind (${o.root === '/' ? '--no-apply' : '--root'}; ${SYSCTL_FILE} sets it at boot)`);
  } else {
    const sysctl = applyNonlocalBind();
    if (sysctl === 'set') changed = true;
    console.log(sysctl === 'set' ? 'applied      net.ipv4.ip_nonlocal_bind = 1' : 'unchanged    net.ipv4.ip_nonlocal_bind = 1 (already)');
  }
  if (o.init === 'systemd') {
    const unitChanged = plan.actions.some((a) => a.file.path === SYSTEMD_UNIT && a.kind !== 'unchanged' && a.kind !== 'keep');
    const outcome = o.apply && o.root === '/' ? enableSystemdUnit('tsbal.service', unitChanged) : 'not-applied';
    if (outcome === 'enabled') changed = true;
    if (outcome === 'enabled') console.log('enabled      tsbal.service (systemctl daemon-reload, systemctl enable)');
    else if (outcome === 'already-enabled') console.log('unchanged    tsbal.service (already enabled)');
    else if (outcome === 'not-running') console.log('note: systemd is not running here; enable the unit where it runs: systemctl enable tsbal.service');
  }
  return changed;
}

function adoptCommand(args: Record<string, unknown>, rawArgs: readonly string[]): void {
  const given = new Set(rawArgs.filter((r) => r.startsWith('--')).map((r) => r.slice(2).split('=')[0]!));
  const problems = adoptArgsProblems(given);
  const init = args.init as string | undefined;
  if (init !== undefined && init !== 'systemd' && init !== 'rc.local') problems.push(`--init ${init}: --adopt needs systemd or rc.local to start tsbal`);
  if (problems.length > 0) throw new UsageError(`setup: ${problems.join('\n  ')}`, EXIT_USAGE);
  const root = (args.root as string | undefined) ?? '/';
  runAdoptCommand({
    root,
    init: (init as InitSystem | undefined) ?? (root !== '/' || systemdIsRunning() ? 'systemd' : 'rc.local'),
    exec: execLine(args.exec as string | undefined),
    node: args.node as string | undefined,
    dryRun: args['dry-run'] === true,
    apply: (args.apply as boolean | undefined) ?? root === '/',
  }, args.undo === true);
}

export default defineCommand({
  meta: { name: 'setup', description: 'Set up this node: one of a two-node HA pair, or with --anycast one of N nodes behind ECMP (idempotent)' },
  args: {
    ...logArgs,
    node: { type: 'string', description: "this node's name, as uname -n says (required; e.g. lb1)" },
    peer: { type: 'string', description: "the other node's name (required; e.g. lb2)" },
    primary: { type: 'string', description: 'the node that holds the VIP when both are up (default: the first of the two names in sort order)' },
    vip: { type: 'string', description: 'the virtual IP with its prefix (required; e.g. 192.0.2.10/24; default prefix /24)' },
    iface: { type: 'string', description: 'interface for the VIP and the heartbeats (required; e.g. eth0)' },
    'peer-ip': { type: 'string', description: "the peer's own address: heartbeats by ucast to it instead of bcast on --iface" },
    backend: { type: 'string', description: 'a backend IP[:PORT] (default port 80); repeat the flag or separate with commas (required)' },
    port: { type: 'string', description: 'the port the balancer listens on at the VIP (default 80)' },
    'mgmt-port': { type: 'string', description: "Perlbal's management console on 127.0.0.1 (default 60000)" },
    sticky: { type: 'string', description: 'session affinity: cookie (default; keyed by authkeys, so both nodes agree), source (client address hash) or off' },
    'health-path': { type: 'string', description: 'the path the health checks of the backends ask for (default /)' },
    keepalive: { type: 'string', description: 'heartbeat interval (default 2 s; e.g. 500ms)' },
    deadtime: { type: 'string', description: 'declare the peer dead after this long (default 10 s; more than twice keepalive)' },
    ping: { type: 'string', description: 'a ping node (usually the gateway); repeat or separate with commas' },
    'auto-failback': { type: 'string', description: 'on (default): the VIP goes back to its home node when it returns; off: it stays' },
    auth: { type: 'string', description: 'sha1 (default) or md5: the HMAC of the heartbeats' },
    'auth-key': { type: 'string', description: 'the shared key (default: the one in an existing authkeys, else a random one, printed once in the join line)' },
    'auth-key-file': { type: 'string', description: 'read the shared key from this file instead (the key alone, or an authkeys file; /dev/stdin to pipe it in)' },
    init: { type: 'string', description: 'systemd, rc.local or none (default: systemd where it runs, else rc.local; systemd with --root)' },
    exec: { type: 'string', description: 'the tsbal path the unit or rc.local starts (default: this tsbal)' },
    root: { type: 'string', description: 'write under this directory instead of / (packaging, images); applies nothing unless --apply' },
    apply: { type: 'boolean', description: 'set net.ipv4.ip_nonlocal_bind now and enable the unit (default; --no-apply only writes files)' },
    force: { type: 'string', description: 'replace these files where they exist with other content, e.g. --force authkeys or --force perlbal.conf,ha.cf; --force alone: all of them (each old one kept as FILE.bak.TIME)' },
    'dry-run': { type: 'boolean', description: 'print what would be written and change nothing' },
    adopt: { type: 'boolean', description: 'this node runs Perlbal and heartbeat: keep perlbal.conf and /etc/ha.d exactly, check them, and move the node to tsbal (see docs/setup.md)' },
    undo: { type: 'boolean', description: 'with --adopt: go back to Perlbal and heartbeat as they were before --adopt' },
    anycast: { type: 'string', description: 'anycast mode: this node is one of N behind an ECMP router, announcing this VIP with FRR (e.g. 198.18.2.1; no heartbeat; see docs/setup.md)' },
    'anycast-dev': { type: 'string', description: 'with --anycast: the interface tsbal puts the VIP on (default vip0)' },
    'anycast-dev-kind': { type: 'string', description: 'with --anycast: dummy (default) or ifb (a kernel without dummy)' },
    router: { type: 'string', description: 'with --anycast: the BGP neighbour (upstream router) address; repeat for two routers' },
    'router-asn': { type: 'string', description: "with --anycast: the router's AS number (e.g. 65000)" },
    asn: { type: 'string', description: "with --anycast: this node's AS number (e.g. 65001; the same on every node)" },
    'sticky-secret-file': { type: 'string', description: 'with --anycast: the session affinity key all nodes share, from this file (/dev/stdin to pipe it; default: the one in perlbal.conf, else a new one, printed once)' },
    'router-id': { type: 'string', description: "with --anycast: this node's BGP router-id (default: its IPv4 address on the router's subnet)" },
  },
  run: ({ args, rawArgs }) =>
    guarded(() => {
      applyLogArgs(args);
      if (args.undo === true && args.adopt !== true) throw new UsageError('setup: --undo goes with --adopt (tsbal setup --adopt --undo)', EXIT_USAGE);
      if (args.adopt === true) return adoptCommand(args as Record<string, unknown>, rawArgs);
      if (args.anycast !== undefined) {
        const raw = { ...(args as Record<string, unknown>), backend: repeatedFlag(rawArgs, 'backend'), router: repeatedFlag(rawArgs, 'router'), force: forceFlags(rawArgs) };
        return runAnycastCommand(raw, execLine(args.exec as string | undefined));
      }
      const raw: RawSetupArgs = { ...(args as RawSetupArgs), backend: repeatedFlag(rawArgs, 'backend'), ping: repeatedFlag(rawArgs, 'ping'), force: forceFlags(rawArgs) };
      const readKeyFile = (path: string): string => readFileSync(path, 'utf8');
      const parsed = parseSetupArgs(raw, { liveInit: systemdIsRunning() ? 'systemd' : 'rc.local', readKeyFile });
      if (!parsed.ok) throw new UsageError(`setup: ${parsed.errors.join('\n  ')}\n  (see tsbal setup --help)`, EXIT_USAGE);
      const o = parsed.value;
      const where = (path: string): string => underRoot(o.root, path);
      try {
        const existing = readExisting(o.root, plannedPaths(o));
        const plan = planSetup(o, {
          exec: execLine(args.exec as string | undefined),
          existing,
          randomKey: randomBytes(32).toString('hex'),
          now: new Date(),
          // A kept perlbal.conf may INCLUDE files or name a docroot: look for them where it says, as check does.
          perlbalFs: nodeConfigFs,
        });
        console.log(summaryLine(o));
        for (const w of plan.warnings) console.error(w);
        if (plan.errors.length > 0) {
          for (const e of plan.errors) console.error(e);
          for (const line of plan.advice) console.error(line);
          throw new UsageError(`setup: ${plan.errors.length} problem${plan.errors.length === 1 ? '' : 's'} in the files this node would have; nothing was written`, EXIT_FAILED);
        }
        if (o.dryRun) {
          printDryRun(plan, where);
          if (o.apply) console.log('would apply  net.ipv4.ip_nonlocal_bind = 1' + (o.init === 'systemd' && o.root === '/' ? ', systemctl enable tsbal.service' : ''));
          console.log('dry run: nothing was written');
          return;
        }
        const changed = carryOut(o, plan, where);
        const kept = plan.actions.filter((a) => a.kind === 'keep').map((a) => basename(a.file.path));
        if (!changed && kept.length > 0) {
          console.log(`nothing written: ${kept.length} file${kept.length === 1 ? '' : 's'} kept with content of ${kept.length === 1 ? 'its' : 'their'} own (--force ${kept.join(',')} replaces ${kept.length === 1 ? 'it' : 'them'}, keeping a .bak)`);
        } else if (!changed) console.log('nothing to change: this node is already set up with these flags');
        console.log(`next: tsbal check -c ${where(PERLBAL_CONF)}${o.root === '/' ? '' : ` --ha-dir ${where('/etc/ha.d')} --node ${o.node}`}` +
          (o.init === 'systemd' ? '; systemctl start tsbal' : ''));
        // rc.local runs only at boot: the admin needs the exact line to start it now (the same one, from the block).
        if (o.init === 'rc.local') console.log(`start it now (${RC_LOCAL} runs the same line at boot):\n  ${rcLocalStartCommand(execLine(args.exec as string | undefined))}`);
        // The address the peer should send its heartbeats to is this host's only when setup is applied to this host.
        const self = o.apply ? ownAddress(o.iface, networkInterfaces(), o.vip.ip, o.peerIp) : null;
        for (const line of joinLines(o, plan, self, where)) console.log(line);
      } catch (error) {
        if (error instanceof SetupError) throw new UsageError(error.message, EXIT_FAILED);
        throw error;
      }
    }),
});
