// What `tsbal setup` will do, decided from the options and what is on disk now. Pure: the caller reads the
// existing files and supplies the random key; the result is data that apply.ts carries out or --dry-run prints.
import { authkeysModeIsSafe, readAuthKeys } from '../config/authkeys.ts';
import { checkAcrossFiles } from '../config/crosscheck.ts';
import { formatDiagnostic, type ConfigDiagnostic } from '../config/errors.ts';
import { readHaCf } from '../config/hacf.ts';
import { readHaResources } from '../config/haresources.ts';
import { warningsOf } from '../config/diagnostics.ts';
import { readPerlbalConfig } from '../config/perlbal.ts';
import type { SetupOptions } from './options.ts';
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
  /** Problems in what would be written (`file:line: message`); when there are any, nothing is written. */
  errors: string[];
  warnings: string[];
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

/** The project's own parsers over the rendered text: what `tsbal check` will say about these files. */
export function validateFiles(o: SetupOptions, files: readonly DesiredFile[]): { errors: ConfigDiagnostic[]; warnings: ConfigDiagnostic[] } {
  const text = (path: string): string => files.find((f) => f.path === path)?.content ?? '';
  const perlbal = readPerlbalConfig(text(PERLBAL_CONF), { file: PERLBAL_CONF });
  const hacf = readHaCf(text(HA_CF), HA_CF, { localNode: o.node });
  const authkeys = readAuthKeys(text(AUTHKEYS), AUTHKEYS);
  const haresources = readHaResources(text(HARESOURCES), HARESOURCES);
  const all = [...perlbal.diagnostics, ...hacf.diagnostics, ...authkeys.diagnostics, ...haresources.diagnostics];
  const errors = all.filter((d) => d.severity === 'error');
  if (errors.length === 0) {
    const ha = { dir: HA_DIR, hacf: hacf.value, authkeys: authkeys.value, haresources: haresources.value, warnings: [] };
    // ip_nonlocal_bind is what setup is about to turn on; say nothing about the current value.
    all.push(...checkAcrossFiles(perlbal.value, ha, { nonlocalBind: null, localAddresses: null }));
  }
  return { errors, warnings: warningsOf(all) };
}

function actionFor(file: DesiredFile, existing: ExistingFile | null, force: boolean, backupSuffix: string): FileAction {
  if (existing === null) return { kind: 'create', file };
  if (existing.content === file.content) {
    const mode = existing.mode & 0o7777;
    // authkeys that group or other can read is refused by heartbeat: put the mode right even though the text is.
    const wrongMode = file.secret ? !authkeysModeIsSafe(mode) || mode !== file.mode : false;
    return wrongMode ? { kind: 'chmod', file, from: mode } : { kind: 'unchanged', file };
  }
  // rc.local is the admin's file: setup only edits its own marked block, so no --force is needed, but keep a copy.
  if (file.path === RC_LOCAL) return { kind: 'replace', file, backup: `${file.path}${backupSuffix}` };
  if (force) return { kind: 'replace', file, backup: `${file.path}${backupSuffix}` };
  return { kind: 'keep', file, why: 'exists with other content; kept (run with --force to replace it, the old one saved as .bak)' };
}

export function planSetup(o: SetupOptions, exec: readonly string[], existing: ExistingFiles, randomKey: string): SetupPlan {
  const auth = resolveAuth(o, existing.get(AUTHKEYS) ?? null, randomKey);
  const files = desiredFiles(o, auth, exec, existing.get(RC_LOCAL)?.content ?? null);
  const { errors, warnings } = validateFiles(o, files);
  const actions = files.map((f) => actionFor(f, existing.get(f.path) ?? null, o.force, '.bak'));
  const notes = actions.flatMap((a) =>
    a.kind === 'keep' && a.file.path === AUTHKEYS && auth.source === 'flag'
      ? [`${AUTHKEYS}: warning: --auth-key differs from the key in the existing file, which is kept (--force replaces it)`]
      : [],
  );
  return { auth, actions, errors: errors.map(formatDiagnostic), warnings: [...warnings.map(formatDiagnostic), ...notes] };
}

/** True when the plan writes nothing: the second run of the same setup. */
export function planIsNoop(plan: SetupPlan): boolean {
  return plan.actions.every((a) => a.kind === 'unchanged' || a.kind === 'keep');
}
