// `tsbal setup --adopt`: a node that runs the classic recipe (Perlbal and heartbeat on /etc/perlbal/perlbal.conf and
// /etc/ha.d) moves to tsbal on the same files, and `--undo` moves it back. Pure: what to write, what to run, in which
// order, and the record that makes the undo exact. adopt-apply.ts carries it out.
import type { InitSystem } from './options.ts';
import { RC_BEGIN, RC_END, RC_LOCAL, SYSTEMD_UNIT, mergeRcLocal, renderRcLocalBlock, renderSystemdUnit } from './render.ts';

/** The two daemons of the classic recipe, in the order adopt stops them. */
export const RECIPE_SERVICES = ['heartbeat', 'perlbal'] as const;
export type RecipeService = (typeof RECIPE_SERVICES)[number];

/** How this host starts its daemons: systemd units, or Debian's sysvinit scripts (/etc/init.d, update-rc.d). */
export type ServiceManager = 'systemd' | 'sysv';

export interface ServiceState {
  /** Starts at boot (null: unknown, e.g. not installed, or a --root tree). */
  enabled: boolean | null;
  /** Running now (null: unknown). */
  active: boolean | null;
}

export const ADOPT_STATE = '/var/lib/tsbal/adopt.json';
/** Prefix of an rc.local line adopt turned off; undo turns exactly these back on. */
export const ADOPT_MARK = '# tsbal adopt: ';

export interface FileBefore {
  path: string;
  /** null: the file did not exist. */
  before: { content: string; mode: number } | null;
}

/** Everything `--undo` needs, written before adopt changes anything. */
export interface AdoptRecord {
  version: 1;
  adoptedAt: string;
  manager: ServiceManager;
  init: InitSystem;
  services: Record<RecipeService, ServiceState>;
  /** The rc.local lines that started a recipe daemon, as they were. */
  rcLocalLines: string[];
  files: FileBefore[];
}

/** A line of rc.local that starts Perlbal or heartbeat (not a comment, not inside tsbal's own block). */
export function startsRecipeDaemon(line: string): RecipeService | null {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return null;
  if (/(^|[\s/;&|(])perlbal(\s|$|;|&)/.test(text) || /\/etc\/init\.d\/perlbal\b/.test(text)) return 'perlbal';
  if (/(^|[\s/;&|(])heartbeat(\s|$|;|&)/.test(text) || /\/etc\/init\.d\/heartbeat\b/.test(text)) return 'heartbeat';
  return null;
}

/** rc.local with every recipe line turned into a marked comment; and those lines. */
export function disableRecipeLines(rcLocal: string): { text: string; lines: string[] } {
  const lines: string[] = [];
  const text = rcLocal
    .split('\n')
    .map((line) => {
      if (startsRecipeDaemon(line) === null) return line;
      lines.push(line);
      return `${ADOPT_MARK}${line}`;
    })
    .join('\n');
  return { text, lines };
}

export interface AdoptPlanInput {
  init: InitSystem;
  manager: ServiceManager;
  exec: readonly string[];
  /** Current rc.local, or null. */
  rcLocal: { content: string; mode: number } | null;
  unit: { content: string; mode: number } | null;
  services: Record<RecipeService, ServiceState>;
  now: Date;
}

export type AdoptStep =
  | { kind: 'stop' | 'disable' | 'enable' | 'start'; service: RecipeService | 'tsbal'; via: ServiceManager | 'rc.local' }
  | { kind: 'daemon-reload' }
  | { kind: 'run-line'; line: string };

export interface AdoptPlan {
  record: AdoptRecord;
  writes: Array<{ path: string; content: string; mode: number }>;
  /** In order: the heartbeat daemon first, so it hands the VIP to the peer before Perlbal stops serving it. */
  steps: AdoptStep[];
}

export function planAdopt(input: AdoptPlanInput): AdoptPlan {
  const writes: AdoptPlan['writes'] = [];
  const files: FileBefore[] = [];
  let rcLines: string[] = [];
  if (input.rcLocal !== null || input.init === 'rc.local') {
    const disabled = input.rcLocal === null ? { text: '', lines: [] } : disableRecipeLines(input.rcLocal.content);
    rcLines = disabled.lines;
    const text = input.init === 'rc.local' ? mergeRcLocal(input.rcLocal === null ? null : disabled.text, renderRcLocalBlock(input.exec)) : disabled.text;
    if (input.rcLocal === null || text !== input.rcLocal.content) {
      files.push({ path: RC_LOCAL, before: input.rcLocal });
      writes.push({ path: RC_LOCAL, content: text, mode: input.rcLocal?.mode ?? 0o755 });
    }
  }
  if (input.init === 'systemd') {
    files.push({ path: SYSTEMD_UNIT, before: input.unit });
    writes.push({ path: SYSTEMD_UNIT, content: renderSystemdUnit(input.exec), mode: 0o644 });
  }
  const steps: AdoptStep[] = [];
  for (const service of RECIPE_SERVICES) {
    if (input.services[service].active !== false) steps.push({ kind: 'stop', service, via: input.manager });
  }
  for (const service of RECIPE_SERVICES) {
    if (input.services[service].enabled !== false) steps.push({ kind: 'disable', service, via: input.manager });
  }
  if (input.init === 'systemd') steps.push({ kind: 'daemon-reload' }, { kind: 'enable', service: 'tsbal', via: 'systemd' }, { kind: 'start', service: 'tsbal', via: 'systemd' });
  if (input.init === 'rc.local') steps.push({ kind: 'start', service: 'tsbal', via: 'rc.local' });
  const record: AdoptRecord = {
    version: 1,
    adoptedAt: input.now.toISOString(),
    manager: input.manager,
    init: input.init,
    services: input.services,
    rcLocalLines: rcLines,
    files,
  };
  return { record, writes, steps };
}

/** rc.local as adopt found it, keeping what the admin changed since: tsbal's block out, the marked lines back on. */
export function restoreRcLocal(current: string): string {
  let text = current;
  const begin = text.indexOf(RC_BEGIN);
  const end = begin < 0 ? -1 : text.indexOf(RC_END, begin);
  if (begin >= 0 && end >= 0) {
    const after = text.indexOf('\n', end);
    // mergeRcLocal put a blank line between the block and `exit 0`: take it out again.
    const rest = after < 0 ? '' : text.slice(after + 1);
    text = text.slice(0, begin) + (rest.startsWith('\n') ? rest.slice(1) : rest);
  }
  return text.split('\n').map((line) => (line.startsWith(ADOPT_MARK) ? line.slice(ADOPT_MARK.length) : line)).join('\n');
}

export type Restore = { path: string; content: string; mode: number } | { path: string; remove: true };

/**
 * The way back, from the record: tsbal stopped and its boot hook gone, every file adopt wrote as it was (rc.local
 * with the admin's later edits kept), then the recipe's daemons enabled and started as they were, Perlbal before
 * heartbeat so the VIP never comes to a node that cannot serve it.
 */
export interface UndoPlan {
  /** First: tsbal stops, so the VIP goes to the peer and the ports are free. */
  stopTsbal: AdoptStep[];
  restores: Restore[];
  /** Last: the recipe's daemons as they were. */
  startRecipe: AdoptStep[];
}

export function planUndo(record: AdoptRecord, currentRcLocal: string | null): UndoPlan {
  const stopTsbal: AdoptStep[] = [];
  if (record.init === 'systemd') stopTsbal.push({ kind: 'stop', service: 'tsbal', via: 'systemd' }, { kind: 'disable', service: 'tsbal', via: 'systemd' });
  if (record.init === 'rc.local') stopTsbal.push({ kind: 'stop', service: 'tsbal', via: 'rc.local' });
  const restores: Restore[] = record.files.map((f): Restore => {
    if (f.path === RC_LOCAL && f.before !== null && currentRcLocal !== null) return { path: f.path, content: restoreRcLocal(currentRcLocal), mode: f.before.mode };
    return f.before === null ? { path: f.path, remove: true } : { path: f.path, content: f.before.content, mode: f.before.mode };
  });
  const startRecipe: AdoptStep[] = [];
  if (record.files.some((f) => f.path === SYSTEMD_UNIT) && record.manager === 'systemd') startRecipe.push({ kind: 'daemon-reload' });
  const order = [...RECIPE_SERVICES].reverse();
  // A daemon rc.local started comes back by its own line, not by its init script as well (it would start twice).
  const byLine = new Set(record.rcLocalLines.map(startsRecipeDaemon));
  for (const service of order) if (record.services[service].enabled === true) startRecipe.push({ kind: 'enable', service, via: record.manager });
  for (const service of order) if (record.services[service].active === true && !byLine.has(service)) startRecipe.push({ kind: 'start', service, via: record.manager });
  for (const line of record.rcLocalLines) {
    const service = startsRecipeDaemon(line);
    if (service === null || record.services[service].active !== false) startRecipe.push({ kind: 'run-line', line });
  }
  return { stopTsbal, restores, startRecipe };
}

/** The step as the command an admin would type: printed by --dry-run and in the report. */
export function stepCommand(step: AdoptStep, tsbalStart: string): string {
  switch (step.kind) {
    case 'daemon-reload':
      return 'systemctl daemon-reload';
    case 'run-line':
      return step.line.trim();
    default:
      break;
  }
  if (step.via === 'systemd') return `systemctl ${step.kind} ${step.service}.service`;
  if (step.via === 'sysv') return step.kind === 'enable' || step.kind === 'disable' ? `update-rc.d ${step.service} ${step.kind}` : `/etc/init.d/${step.service} ${step.kind}`;
  return step.kind === 'start' ? tsbalStart : `kill $(cat /run/tsbal.pid)`;
}

/** A record read back from disk, checked enough that undo does not act on a file it does not understand. */
export function parseAdoptRecord(text: string, path: string): AdoptRecord {
  const value = JSON.parse(text) as Partial<AdoptRecord>;
  if (value.version !== 1 || !Array.isArray(value.files) || !Array.isArray(value.rcLocalLines) || value.services === undefined) {
    throw new Error(`${path}: not a record tsbal setup --adopt wrote (version ${String(value.version)})`);
  }
  return value as AdoptRecord;
}

export { RC_LOCAL, SYSTEMD_UNIT };
