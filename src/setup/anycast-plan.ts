// What `tsbal setup --anycast` will do, decided from the options and what is on disk now. Pure, as plan.ts is for the
// heartbeat mode: the same file actions (create, unchanged, keep, replace with a backup), checked by the parsers
// `tsbal check` uses before anything is written.
import { basename } from 'node:path';
import { anycastSettings } from '../config/anycast.ts';
import { formatDiagnostic } from '../config/errors.ts';
import { checkFrrAgainstVip, checkFrrDaemons, usesBfd } from '../config/frr.ts';
import { warningsOf } from '../config/diagnostics.ts';
import { readPerlbalConfig, type ConfigFs } from '../config/perlbal.ts';
import type { AnycastOptions } from './anycast-options.ts';
import { netdevPath, networkPath, renderAnycastPerlbalConf, renderAnycastSysctl, renderNetdev, renderNetwork } from './anycast-render.ts';
import { FRR_CONF, FRR_DAEMONS, isStockFrrConf, mergeFrrDaemons, renderFrrConf, vipPrefix } from './frr.ts';
import { actionFor, backupSuffix, type ExistingFile, type ExistingFiles, type FileAction } from './plan.ts';
import { PERLBAL_CONF, SYSCTL_FILE, SYSTEMD_UNIT, renderSystemdUnit, type DesiredFile } from './render.ts';

export interface StickySecret {
  secret: string;
  source: 'flag' | 'existing' | 'generated';
}

export interface AnycastPlan {
  /** The affinity key in perlbal.conf (null: --sticky off). */
  sticky: StickySecret | null;
  actions: FileAction[];
  errors: string[];
  warnings: string[];
  advice: string[];
}

export function anycastPlannedPaths(o: AnycastOptions): string[] {
  return [SYSCTL_FILE, PERLBAL_CONF, FRR_DAEMONS, FRR_CONF, netdevPath(o), networkPath(o), ...(o.init === 'systemd' ? [SYSTEMD_UNIT] : [])];
}

/**
 * The key all nodes share for session affinity: the one given, else the one already in perlbal.conf (so re-running
 * setup, even with --force, never changes it by surprise), else a fresh random one.
 */
export function resolveStickySecret(o: AnycastOptions, existingPerlbal: string | null, randomKey: string): StickySecret | null {
  if (o.sticky === 'off') return null;
  if (o.stickySecret !== null) return { secret: o.stickySecret, source: 'flag' };
  if (existingPerlbal !== null) {
    const parsed = readPerlbalConfig(existingPerlbal, { file: PERLBAL_CONF });
    const secrets = parsed.value.services.map((s) => s.options.sticky_secret).filter((v): v is string => typeof v === 'string' && v !== '');
    if (secrets[0] !== undefined) return { secret: secrets[0], source: 'existing' };
  }
  return { secret: randomKey, source: 'generated' };
}

export function anycastDesiredFiles(o: AnycastOptions, exec: readonly string[], existingDaemons: string | null, sticky: StickySecret | null): DesiredFile[] {
  const file = (path: string, content: string): DesiredFile => ({ path, mode: 0o644, content, secret: false });
  const files = [
    file(SYSCTL_FILE, renderAnycastSysctl(o)),
    // With the affinity key in it, perlbal.conf is root's to read (tsbal runs as root).
    sticky === null ? file(PERLBAL_CONF, renderAnycastPerlbalConf(o, null)) : { ...file(PERLBAL_CONF, renderAnycastPerlbalConf(o, sticky.secret)), mode: 0o600, secret: true },
    file(FRR_DAEMONS, mergeFrrDaemons(existingDaemons)),
    // 644, not the package's 640 frr:frr: a file setup writes is root's, and FRR's daemons (user frr) must read it.
    file(FRR_CONF, renderFrrConf(o)),
    file(netdevPath(o), renderNetdev(o)),
    file(networkPath(o), renderNetwork(o)),
  ];
  if (o.init === 'systemd') files.push(file(SYSTEMD_UNIT, renderSystemdUnit(exec, { prefix: vipPrefix(o), dev: o.dev })));
  return files;
}

/**
 * The heartbeat mode's rules, plus two files that are FRR's package's before they are ours: daemons is edited in
 * place (our keys only, like rc.local's block), and a stock frr.conf (nothing but the package's lines) is replaced;
 * both without --force, both with a backup.
 */
function anycastActionFor(file: DesiredFile, existing: ExistingFile | null, o: AnycastOptions, suffix: string): FileAction {
  const action = actionFor(file, existing, o.force, suffix);
  if (action.kind !== 'keep' || existing === null) return action;
  if (file.path === FRR_DAEMONS || (file.path === FRR_CONF && isStockFrrConf(existing.content))) {
    return { kind: 'replace', file, backup: `${file.path}${suffix}` };
  }
  return action;
}

export interface AnycastPlanInputs {
  exec: readonly string[];
  /** Used only when there is no affinity key yet. */
  randomKey: string;
  existing: ExistingFiles;
  now: Date;
  perlbalFs?: ConfigFs;
}

export function planAnycastSetup(o: AnycastOptions, inputs: AnycastPlanInputs): AnycastPlan {
  const { existing } = inputs;
  const sticky = resolveStickySecret(o, existing.get(PERLBAL_CONF)?.content ?? null, inputs.randomKey);
  const files = anycastDesiredFiles(o, inputs.exec, existing.get(FRR_DAEMONS)?.content ?? null, sticky);
  const suffix = backupSuffix(inputs.now);
  const actions = files.map((f) => anycastActionFor(f, existing.get(f.path) ?? null, o, suffix));
  const kept = new Map(actions.flatMap((a) => (a.kind === 'keep' ? [[a.file.path, existing.get(a.file.path)!.content] as const] : [])));
  const text = (path: string): string => kept.get(path) ?? files.find((f) => f.path === path)?.content ?? '';

  // What `tsbal check` will say about the files as they will be: perlbal.conf, then frr.conf against its anycast_vip.
  const perlbal = readPerlbalConfig(text(PERLBAL_CONF), { file: PERLBAL_CONF, ...(inputs.perlbalFs === undefined ? {} : { fs: inputs.perlbalFs }) });
  const diagnostics = [...perlbal.diagnostics];
  const settings = perlbal.diagnostics.some((d) => d.severity === 'error') ? null : anycastSettings(perlbal.value);
  const errors: string[] = [];
  const blocking: string[] = [];
  if (settings === null && kept.has(PERLBAL_CONF)) {
    errors.push(`${PERLBAL_CONF}: kept as it is (it exists with other content), it has no SERVER anycast_vip, so this node would not announce ${vipPrefix(o)}`);
    blocking.push(PERLBAL_CONF);
  } else if (settings !== null && settings.vip !== vipPrefix(o)) {
    errors.push(`${PERLBAL_CONF}: kept as it is (it exists with other content), its anycast_vip is ${settings.vip}, not ${vipPrefix(o)}`);
    blocking.push(PERLBAL_CONF);
  }
  if (settings !== null) {
    const frr = checkFrrAgainstVip(text(FRR_CONF), FRR_CONF, settings.vip);
    diagnostics.push(...frr, ...checkFrrDaemons(text(FRR_DAEMONS), FRR_DAEMONS, usesBfd(text(FRR_CONF))));
    if (kept.has(FRR_CONF) && frr.some((d) => d.severity === 'error')) blocking.push(FRR_CONF);
  }
  errors.unshift(...diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic));
  for (const path of kept.keys()) if (diagnostics.some((d) => d.severity === 'error' && d.file === path) && !blocking.includes(path)) blocking.push(path);
  const names = blocking.map((p) => basename(p));
  return {
    sticky,
    actions,
    errors,
    warnings: warningsOf(diagnostics).map(formatDiagnostic),
    advice: names.length === 0 ? [] : [
      `This node will not announce ${vipPrefix(o)} with the kept ${names.join(' and ')}. To proceed, either:`,
      `  - replace ${names.length === 1 ? 'it' : 'them'}: run the same command with --force ${names.join(',')} (the old ${names.length === 1 ? 'file is' : 'files are'} saved beside, as ${names.map((n) => `${n}${suffix}`).join(', ')});`,
      `  - or edit ${names.length === 1 ? 'it' : 'them'} (tsbal check says what is missing) and run setup again.`,
    ],
  };
}
