// `tsbal setup --adopt` and `tsbal setup --adopt --undo`: move a node that runs the classic recipe to tsbal on the
// same files (kept byte for byte), and back. The peer, still on heartbeat, sees the same node leave and come back.
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { HA_DIR, PERLBAL_CONF, RC_LOCAL, RC_LOCAL_PIDFILE, SYSTEMD_UNIT, quoteWord } from '../setup/render.ts';
import { SetupError, underRoot, writeAtomically } from '../setup/apply.ts';
import { ADOPT_STATE, RECIPE_SERVICES, parseAdoptRecord, planAdopt, planUndo, stepCommand, type AdoptStep, type RecipeService, type ServiceState } from '../setup/adopt.ts';
import { detectManager, runStep, serviceState } from '../setup/adopt-apply.ts';
import type { InitSystem } from '../setup/options.ts';
import { DEFAULT_DAEMON_LOG_FILE } from '../log-file.ts';
import { runCheck } from './check.ts';
import { UsageError } from './common.ts';

const EXIT_FAILED = 1;

export interface AdoptArgs {
  root: string;
  init: InitSystem;
  exec: readonly string[];
  node: string | undefined;
  dryRun: boolean;
  /** Act on this host's services (default unless --root): stop, disable, enable, start. */
  apply: boolean;
}

/** The flags that describe a new cluster; with --adopt the cluster is the files already there. */
export const CLUSTER_FLAGS = ['peer', 'primary', 'vip', 'iface', 'peer-ip', 'backend', 'port', 'mgmt-port', 'keepalive', 'deadtime', 'ping', 'auto-failback', 'auth', 'auth-key', 'auth-key-file', 'force'] as const;

function readFile(root: string, path: string): { content: string; mode: number } | null {
  const real = underRoot(root, path);
  if (!existsSync(real)) return null;
  return { content: readFileSync(real, 'utf8'), mode: statSync(real).mode & 0o7777 };
}

/** The command rc.local's block runs, as argv: how adopt starts tsbal now on a host without systemd. */
function tsbalDaemonArgv(exec: readonly string[]): string[] {
  return [...exec, 'run', '--daemon', '--pidfile', RC_LOCAL_PIDFILE, '--log-file', DEFAULT_DAEMON_LOG_FILE];
}

function carry(steps: readonly AdoptStep[], a: AdoptArgs, prefix: string): void {
  const start = tsbalDaemonArgv(a.exec);
  for (const step of steps) {
    const command = stepCommand(step, start.map(quoteWord).join(' '));
    if (a.dryRun) console.log(`${prefix}would run    ${command}`);
    else if (!a.apply) console.log(`not applied  ${command} (${a.root === '/' ? '--no-apply' : '--root'})`);
    else {
      runStep(step, start);
      console.log(`ran          ${command}`);
    }
  }
}

export function adopt(a: AdoptArgs): void {
  const statePath = underRoot(a.root, ADOPT_STATE);
  if (existsSync(statePath)) {
    throw new UsageError(`setup --adopt: this node was adopted already (${statePath}); tsbal setup --adopt --undo goes back first`, EXIT_FAILED);
  }
  // The files stay exactly as they are: they are checked by the very code `tsbal check` runs, and must pass.
  const haDir = underRoot(a.root, HA_DIR);
  const check = runCheck({ config: underRoot(a.root, PERLBAL_CONF), haDir: { path: haDir, required: true }, node: a.node, cwd: process.cwd() });
  for (const line of check.stdout) console.log(line);
  for (const line of check.stderr) console.error(line);
  if (!check.ok) throw new UsageError('setup --adopt: tsbal would not run these files as they are; nothing was changed (fix them, then run --adopt again)', EXIT_FAILED);

  // A staged tree's services are those of the host it is for: systemd's if it gets the unit, sysvinit's otherwise.
  const manager = a.root === '/' ? detectManager() : a.init === 'systemd' ? 'systemd' : 'sysv';
  const unknown: ServiceState = { enabled: null, active: null };
  const services = Object.fromEntries(RECIPE_SERVICES.map((s) => [s, a.apply ? serviceState(manager, s) : unknown])) as Record<RecipeService, ServiceState>;
  const plan = planAdopt({
    init: a.init,
    manager,
    exec: a.exec,
    rcLocal: readFile(a.root, RC_LOCAL),
    unit: a.init === 'systemd' ? readFile(a.root, SYSTEMD_UNIT) : null,
    services,
    now: new Date(),
  });
  for (const s of RECIPE_SERVICES) {
    const st = services[s];
    console.log(`found        ${s}: ${st.enabled === null ? 'boot start unknown' : st.enabled ? 'starts at boot' : 'not started at boot'}, ${st.active === null ? 'running unknown' : st.active ? 'running' : 'not running'}`);
  }
  for (const line of plan.record.rcLocalLines) console.log(`found        ${RC_LOCAL}: ${line.trim()}`);
  const where = (p: string): string => underRoot(a.root, p);
  if (a.dryRun) {
    for (const w of plan.writes) console.log(`would write  ${where(w.path)}`);
    carry(plan.steps, a, '');
    console.log('dry run: nothing was changed');
    return;
  }
  // The record goes first: whatever fails after it, --undo knows what to put back.
  writeAtomically(statePath, `${JSON.stringify(plan.record, null, 2)}\n`, 0o600);
  console.log(`recorded     ${statePath} (what --undo restores)`);
  for (const w of plan.writes) {
    writeAtomically(where(w.path), w.content, w.mode);
    console.log(`wrote        ${where(w.path)}`);
  }
  carry(plan.steps, a, '');
  console.log(`adopted: ${where(PERLBAL_CONF)} and ${haDir} kept as they were; ` +
    (a.apply ? 'tsbal runs them now' : `tsbal will run them once started (${a.init === 'systemd' ? 'systemctl start tsbal' : tsbalDaemonArgv(a.exec).map(quoteWord).join(' ')})`));
  console.log('undo: tsbal setup --adopt --undo (restores the files above and starts the recipe\'s daemons as they were)');
}

export function undo(a: AdoptArgs): void {
  const statePath = underRoot(a.root, ADOPT_STATE);
  if (!existsSync(statePath)) throw new UsageError(`setup --adopt --undo: ${statePath} does not exist: this node was not adopted by tsbal setup`, EXIT_FAILED);
  let record;
  try {
    record = parseAdoptRecord(readFileSync(statePath, 'utf8'), statePath);
  } catch (error) {
    throw new UsageError(`setup --adopt --undo: ${(error as Error).message}`, EXIT_FAILED);
  }
  const plan = planUndo(record, readFile(a.root, RC_LOCAL)?.content ?? null);
  const where = (p: string): string => underRoot(a.root, p);
  carry(plan.stopTsbal, a, '');
  for (const r of plan.restores) {
    if (a.dryRun) console.log(`would restore ${where(r.path)}${'remove' in r ? ' (removed: it was not there)' : ''}`);
    else if ('remove' in r) {
      rmSync(where(r.path), { force: true });
      console.log(`removed      ${where(r.path)} (it was not there before --adopt)`);
    } else {
      writeAtomically(where(r.path), r.content, r.mode);
      console.log(`restored     ${where(r.path)}`);
    }
  }
  carry(plan.startRecipe, a, '');
  if (a.dryRun) {
    console.log('dry run: nothing was changed');
    return;
  }
  rmSync(statePath, { force: true });
  console.log(`undone: this node is back on the classic recipe as it was on ${record.adoptedAt}`);
}

export function adoptArgsProblems(given: ReadonlySet<string>): string[] {
  return CLUSTER_FLAGS.filter((f) => given.has(f)).map((f) => `--${f}: --adopt keeps the cluster's files as they are; it takes no flag that would describe another`);
}

export function runAdoptCommand(a: AdoptArgs, undoIt: boolean): void {
  try {
    if (undoIt) undo(a);
    else adopt(a);
  } catch (error) {
    if (error instanceof SetupError) throw new UsageError(`${error.message}\n  (tsbal setup --adopt${undoIt ? ' --undo' : ''} stopped here; what it did so far is listed above)`, EXIT_FAILED);
    throw error;
  }
}
