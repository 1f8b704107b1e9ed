// What `tsbal setup` will do, decided from the options and what is on disk now. Pure: the caller reads the
// existing files and supplies the random key; the result is data that apply.ts carries out or --dry-run prints.
import { authkeysModeIsSafe, readAuthKeys } from '../config/authkeys.ts';
import { checkAcrossFiles, clusterVips, servesAddress } from '../config/crosscheck.ts';
import type { PerlbalConfig } from '../config/model.ts';
import type { ConfigFs } from '../config/perlbal.ts';
import { basename } from 'node:path';
import { formatDiagnostic, type ConfigDiagnostic } from '../config/errors.ts';
import { readHaCf } from '../config/hacf.ts';
import { readHaResources } from '../config/haresources.ts';
import { warningsOf } from '../config/diagnostics.ts';
import { readPerlbalConfig } from '../config/perlbal.ts';
import { forces, type ForceChoice, type SetupOptions } from './options.ts';
import { formatHostPort } from '../config/perlbal/values.ts';
import {
  HA_DIR, PERLBAL_CONF, RC_LOCAL, SYSCTL_FILE, SYSTEMD_UNIT, mergeRcLocal, renderAuthkeys, renderHaCf, renderHaResources,
  renderNodeinfo, renderPerlbalConf, renderRcLocalBlock, renderSysctl, renderSystemdUnit, type DesiredFile, type ResolvedAuth,
} from './render.ts';

export interface ExistingFile {
  content: string;
  mode: number;
}

/** Target path (as on the live system, e.g. /etc/ha.d/ha.cf) → what is there now, or null. */
export type ExistingFiles = ReadonlyMap<string, ExistingFile | null>;

export type FileAction =
  | { kind: 'create'; file: DesiredFile }
  | { kind: 'unchanged'; file: DesiredFile }
  | { kind: 'chmod'; file: DesiredFile; from: number }
  | { kind: 'replace'; file: DesiredFile; backup: string }
  | { kind: 'keep'; file: DesiredFile; why: string };

export interface SetupPlan {
  auth: ResolvedAuth;
  actions: FileAction[];
  /** Problems in what would be on disk (`file:line: message`); when there are any, nothing is written. */
  errors: string[];
  warnings: string[];
  /** How to proceed when a kept file is what stops the cluster from serving (empty otherwise). */
  advice: string[];
}

export const AUTHKEYS = `${HA_DIR}/authkeys`;
export const HA_CF = `${HA_DIR}/ha.cf`;
export const HARESOURCES = `${HA_DIR}/haresources`;
export const NODEINFO = `${HA_DIR}/nodeinfo`;

/** Every path setup may touch, so the caller knows what to read before planning. */
export function plannedPaths(o: SetupOptions): string[] {
  const init = o.init === 'systemd' ? [SYSTEMD_UNIT] : o.init === 'rc.local' ? [RC_LOCAL] : [];
  return [SYSCTL_FILE, HA_CF, AUTHKEYS, HARESOURCES, NODEINFO, PERLBAL_CONF, ...init];
}

/**
 * The key both nodes must share: the one given, else the one already in authkeys (so re-running setup, even with
 * --force, never changes a working cluster's key by surprise), else a fresh random one.
 */
export function resolveAuth(o: SetupOptions, existing: ExistingFile | null, randomKey: string): ResolvedAuth {
  if (o.authKey !== null) return { method: o.authMethod ?? 'sha1', key: o.authKey, source: 'flag' };
  if (existing !== null) {
    const parsed = readAuthKeys(existing.content, AUTHKEYS).value;
    const active = parsed.keys.find((k) => k.index === parsed.activeIndex);
    if (active !== undefined && active.method !== 'crc' && active.key !== '') {
      return { method: o.authMethod ?? active.method, key: active.key, source: 'existing' };
    }
  }
  return { method: o.authMethod ?? 'sha1', key: randomKey, source: 'generated' };
}

export function desiredFiles(o: SetupOptions, auth: ResolvedAuth, exec: readonly string[], existingRcLocal: string | null): DesiredFile[] {
  const file = (path: string, content: string, mode = 0o644): DesiredFile => ({ path, mode, content, secret: false });
  const files = [
    file(SYSCTL_FILE, renderSysctl()),
    file(HA_CF, renderHaCf(o)),
    { ...file(AUTHKEYS, renderAuthkeys(auth), 0o600), secret: true },
    file(HARESOURCES, renderHaResources(o)),
    file(NODEINFO, renderNodeinfo(o)),
    file(PERLBAL_CONF, renderPerlbalConf(o)),
  ];
  if (o.init === 'systemd') files.push(file(SYSTEMD_UNIT, renderSystemdUnit(exec)));
  if (o.init === 'rc.local') files.push(file(RC_LOCAL, mergeRcLocal(existingRcLocal, renderRcLocalBlock(exec)), 0o755));
  return files;
}

export interface ValidatedFiles {
  errors: ConfigDiagnostic[];
  warnings: ConfigDiagnostic[];
  perlbal: PerlbalConfig;
  /** The addresses haresources moves. */
  vips: string[];
}

/**
 * The project's own parsers over the files as they will be on disk (rendered, or kept as they are): what `tsbal
 * check` will say about them. `perlbalFs` resolves the INCLUDEs of a kept perlbal.conf (default: none exist).
 */
export function validateFiles(o: SetupOptions, text: (path: string) => string, perlbalFs?: ConfigFs): ValidatedFiles {
  const perlbal = readPerlbalConfig(text(PERLBAL_CONF), { file: PERLBAL_CONF, ...(perlbalFs === undefined ? {} : { fs: perlbalFs }) });
  const hacf = readHaCf(text(HA_CF), HA_CF, { localNode: o.node });
  const authkeys = readAuthKeys(text(AUTHKEYS), AUTHKEYS);
  const haresources = readHaResources(text(HARESOURCES), HARESOURCES);
  const all = [...perlbal.diagnostics, ...hacf.diagnostics, ...authkeys.diagnostics, ...haresources.diagnostics];
  const errors = all.filter((d) => d.severity === 'error');
  const ha = { dir: HA_DIR, hacf: hacf.value, authkeys: authkeys.value, haresources: haresources.value, warnings: [] };
  if (errors.length === 0) {
    // ip_nonlocal_bind is what setup is about to turn on; say nothing about the current value.
    all.push(...checkAcrossFiles(perlbal.value, ha, { nonlocalBind: null, localAddresses: null }));
  }
  return { errors, warnings: warningsOf(all), perlbal: perlbal.value, vips: clusterVips(ha).map((v) => v.ip) };
}

export function actionFor(file: DesiredFile, existing: ExistingFile | null, force: ForceChoice, backupSuffix: string): FileAction {
  if (existing === null) return { kind: 'create', file };
  if (existing.content === file.content) {
    const mode = existing.mode & 0o7777;
    // authkeys that group or other can read is refused by heartbeat: put the mode right even though the text is.
    const wrongMode = file.secret ? !authkeysModeIsSafe(mode) || mode !== file.mode : false;
    return wrongMode ? { kind: 'chmod', file, from: mode } : { kind: 'unchanged', file };
  }
  // rc.local is the admin's file: setup only edits its own marked block, so no --force is needed, but keep a copy.
  if (file.path === RC_LOCAL) return { kind: 'replace', file, backup: `${file.path}${backupSuffix}` };
  const name = basename(file.path);
  if (forces(force, file.path)) return { kind: 'replace', file, backup: `${file.path}${backupSuffix}` };
  return { kind: 'keep', file, why: `exists with other content; kept (--force ${name} replaces it, the old one saved as ${name}${backupSuffix})` };
}

/** The suffix of a backup: a UTC time stamp, so a later run never overwrites an earlier backup. */
export function backupSuffix(now: Date): string {
  return `.bak.${now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '')}`;
}

export interface PlanInputs {
  exec: readonly string[];
  existing: ExistingFiles;
  /** Used only when there is no key yet. */
  randomKey: string;
  now: Date;
  perlbalFs?: ConfigFs;
}

export function planSetup(o: SetupOptions, inputs: PlanInputs): SetupPlan {
  const { existing } = inputs;
  const auth = resolveAuth(o, existing.get(AUTHKEYS) ?? null, inputs.randomKey);
  const files = desiredFiles(o, auth, inputs.exec, existing.get(RC_LOCAL)?.content ?? null);
  const suffix = backupSuffix(inputs.now);
  const actions = files.map((f) => actionFor(f, existing.get(f.path) ?? null, o.force, suffix));
  const kept = new Map(actions.flatMap((a) => (a.kind === 'keep' ? [[a.file.path, existing.get(a.file.path)!.content] as const] : [])));
  const text = (path: string): string => kept.get(path) ?? files.find((f) => f.path === path)?.content ?? '';
  const v = validateFiles(o, text, inputs.perlbalFs);
  const notes = actions.flatMap((a) =>
    a.kind === 'keep' && a.file.path === AUTHKEYS && auth.source === 'flag'
      ? [`${AUTHKEYS}: warning: --auth-key differs from the key in the existing file, which is kept (--force authkeys replaces it)`]
      : [],
  );
  const errors = v.errors.map(formatDiagnostic);
  const keptWithErrors = [...kept.keys()].filter((path) => v.errors.some((d) => d.file === path));
  const unserved = errors.length === 0 ? servingProblems(o, v, kept) : [];
  const blocking = [...keptWithErrors, ...unserved.map((u) => u.path)];
  return {
    auth,
    actions,
    errors: [...errors, ...unserved.map((u) => u.message)],
    warnings: [...v.warnings.map(formatDiagnostic), ...notes],
    advice: blocking.length > 0 ? keptFileAdvice(o, [...new Set(blocking)], suffix) : [],
  };
}

/** What a kept file does to the cluster these flags describe: it must still serve --vip:--port. */
function servingProblems(o: SetupOptions, v: ValidatedFiles, kept: ReadonlyMap<string, string>): Array<{ path: string; message: string }> {
  const out: Array<{ path: string; message: string }> = [];
  const target = `${o.vip.ip}:${o.port}`;
  if (kept.has(PERLBAL_CONF) && !v.perlbal.services.some((s) => servesAddress(s, o.vip.ip, o.port))) {
    const there = v.perlbal.services.filter((s) => s.enabled && s.listen !== null).map((s) => `${s.name} on ${formatHostPort(s.listen!)}`);
    out.push({
      path: PERLBAL_CONF,
      message: `${PERLBAL_CONF}: kept as it is (it exists with other content), it has no enabled service on ${target}, so the cluster will not serve ${target}` +
        (there.length > 0 ? ` (it has ${there.join(', ')})` : ''),
    });
  }
  if (kept.has(HARESOURCES) && !v.vips.includes(o.vip.ip)) {
    out.push({
      path: HARESOURCES,
      message: `${HARESOURCES}: kept as it is (it exists with other content), it does not move ${o.vip.ip}, so no node will hold the VIP clients use` +
        (v.vips.length > 0 ? ` (it moves ${v.vips.join(', ')})` : ''),
    });
  }
  return out;
}

/** How to proceed when a file setup keeps stops the cluster from serving. */
function keptFileAdvice(o: SetupOptions, paths: readonly string[], suffix: string): string[] {
  const names = paths.map((p) => basename(p));
  return [
    `The cluster will not serve http://${o.vip.ip}${o.port === 80 ? '' : `:${o.port}`}/ with the kept ${names.join(' and ')}. To proceed, either:`,
    `  - replace ${names.length === 1 ? 'it' : 'them'} with what these flags describe: run the same command with --force ${names.join(',')}`,
    `    (the old ${names.length === 1 ? 'file is' : 'files are'} saved beside, as ${names.map((n) => `${n}${suffix}`).join(', ')});`,
    '  - or, if this host already runs Perlbal and heartbeat on these files: tsbal setup --adopt, which keeps',
    '    /etc/perlbal/perlbal.conf and /etc/ha.d exactly, checks them, and moves the node to tsbal;',
    `  - or edit ${names.length === 1 ? 'it' : 'them'} (tsbal check says what is missing) and run setup again.`,
  ];
}

/** True when the plan writes nothing: the second run of the same setup. */
export function planIsNoop(plan: Pick<SetupPlan, 'actions'>): boolean {
  return plan.actions.every((a) => a.kind === 'unchanged' || a.kind === 'keep');
}
