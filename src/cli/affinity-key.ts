// Where the key of session affinity comes from when a service has no `sticky_secret`: the cluster's authkeys (both
// balancers of a heartbeat pair have the same file, so they route the same cookie to the same backend), else a key
// generated once into the state dir (this host only: affinity then does not survive a failover). `tsbal run` and
// `tsbal check` both decide it here, so check warns exactly when run falls back.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PerlbalConfig, ServiceModel } from '../config/model.ts';
import { parseAuthKeys } from '../config/authkeys.ts';
import { stickySettings } from '../proxy/options.ts';
import { servedServices } from '../proxy/roles.ts';
import { keyFromAuthkeys } from '../proxy/upstream/affinity.ts';

export const AFFINITY_KEY_FILE = 'sticky.key';

/** Services whose affinity cookie is keyed by the cluster's key: cookie or prefix mode without sticky_secret. */
export function servicesOnClusterKey(config: Pick<PerlbalConfig, 'services'>): ServiceModel[] {
  return servedServices(config.services).filter((s) => {
    if (s.role !== 'reverse_proxy') return false;
    const st = stickySettings(s.options);
    return st !== null && st.mode !== 'source' && st.secret === null;
  });
}

export type AffinityKey =
  | { kind: 'authkeys'; key: Buffer; file: string }
  | { kind: 'generated'; key: Buffer; file: string; created: boolean }
  /** Nothing needs it at start: one for this process, for a reload that turns sticky on. */
  | { kind: 'process'; key: Buffer };

/** The warning `tsbal check` and `tsbal run` give for a service on a key of this host only. */
export function hostOnlyKeyWarning(s: ServiceModel, file: string): string {
  return `service ${s.name}: sticky without sticky_secret and no cluster authkeys: the key is generated into ${file} on this host only, so session affinity will not survive a failover to the other balancer`;
}
export const HOST_ONLY_KEY_HINT = 'SET sticky_secret = <the same long random text on both balancers>, or run with the cluster\'s /etc/ha.d';

/**
 * The key for services on the cluster key. `haDir`: the heartbeat directory `run` uses (null: no HA); its authkeys'
 * active key is the secret. Otherwise `<stateDir>/sticky.key`, read or created (mode 600) when `needed`.
 */
export function resolveAffinityKey(haDir: string | null, stateDir: string, needed: boolean): AffinityKey {
  if (haDir !== null && existsSync(join(haDir, 'ha.cf'))) {
    // Only the key file: run has checked the whole directory (checkHaForRun) before it gets here.
    const file = join(haDir, 'authkeys');
    const auth = parseAuthKeys(readFileSync(file, 'utf8'), file);
    const active = auth.keys.find((k) => k.index === auth.activeIndex);
    if (active !== undefined) return { kind: 'authkeys', key: keyFromAuthkeys(active.method, active.key), file };
  }
  if (!needed) return { kind: 'process', key: randomBytes(32) };
  const file = join(stateDir, AFFINITY_KEY_FILE);
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(text)) return { kind: 'generated', key: Buffer.from(text, 'hex'), file, created: false };
    throw new Error(`${file}: not a key written by tsbal (64 hex digits expected); remove it to have a new one made`);
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  // wx: two processes starting at once do not overwrite each other's key.
  writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  return { kind: 'generated', key, file, created: true };
}
