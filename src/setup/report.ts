// What `tsbal setup` tells the admin, as lines. Pure, so the wording is pinned by unit tests.
import type { SetupOptions } from './options.ts';
import { AUTHKEYS, type FileAction, type SetupPlan } from './plan.ts';
import type { DesiredFile } from './render.ts';
import { joinAdvice } from './join.ts';

const VERB: Record<FileAction['kind'], { done: string; dry: string }> = {
  create: { done: 'created  ', dry: 'would create ' },
  replace: { done: 'replaced ', dry: 'would replace' },
  chmod: { done: 'fixed mode', dry: 'would fix mode' },
  unchanged: { done: 'unchanged', dry: 'unchanged    ' },
  keep: { done: 'kept     ', dry: 'would keep   ' },
};

const octal = (mode: number): string => mode.toString(8).padStart(3, '0');

export function actionLine(action: FileAction, where: (path: string) => string, dryRun: boolean): string {
  const verb = dryRun ? VERB[action.kind].dry : VERB[action.kind].done;
  const path = where(action.file.path);
  switch (action.kind) {
    case 'create':
      return `${verb} ${path} (mode ${octal(action.file.mode)})`;
    case 'replace':
      return `${verb} ${path} (old one ${dryRun ? 'to be ' : ''}saved as ${where(action.backup)})`;
    case 'chmod':
      return `${verb} ${path} (${octal(action.from)} -> ${octal(action.file.mode)})`;
    case 'unchanged':
      return `${verb} ${path}`;
    case 'keep':
      return `${verb} ${path}: ${action.why}`;
  }
}

/** The file as --dry-run shows it; the authkeys secret is not printed. */
export function shownContent(file: DesiredFile): string {
  if (!file.secret) return file.content;
  return file.content.replace(/^(\s*\d+\s+(?:sha1|md5)\s+)\S+/gm, '$1<secret>').replace(/^(\s*SET\s+sticky_secret\s*=\s*)\S+/gm, '$1<secret>');
}

/**
 * The join line for the peer, when this run made the cluster's key (the first node): the key is printed this once.
 * A key given with --auth-key or --auth-key-file (the second node, or an admin who chose it) is not echoed back.
 */
export function joinLines(o: SetupOptions, plan: SetupPlan, selfAddress: string | null, where: (path: string) => string): string[] {
  const action = plan.actions.find((a) => a.file.path === AUTHKEYS);
  if (action === undefined || plan.auth.source !== 'generated' || (action.kind !== 'create' && action.kind !== 'replace')) return [];
  return joinAdvice(o, plan.auth, selfAddress, where(AUTHKEYS)).lines;
}

export function summaryLine(o: SetupOptions): string {
  const medium = o.peerIp === null ? `bcast on ${o.iface}` : `ucast to ${o.peerIp} on ${o.iface}`;
  return `tsbal setup: node ${o.node}, peer ${o.peer}; VIP ${o.vip.ip}/${o.vip.cidr} on ${o.iface} (home ${o.primary}); ` +
    `${o.backends.length} backend${o.backends.length === 1 ? '' : 's'} behind ${o.vip.ip}:${o.port}; heartbeats ${medium}`;
}
