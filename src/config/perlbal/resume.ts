// The executor state of a config that is already running, so the management port can run a command against it the
// way the file loader ran the file's lines: same commands, same checks, same errors. The running config (the model)
// is the one source of truth; the state is rebuilt from it for each console command and thrown away after.
import type { PerlbalConfig } from '../model.ts';
import { canonicalPlugin } from './plugins.ts';
import { createPerlbalState, newServiceMeta, type PerlbalState } from './state.ts';
import { cloneRecord } from '../records.ts';

/**
 * A fresh executor state holding a deep copy of `config` (the copy is what a command changes). `defaults` are the
 * DEFAULT lines given so far on the management port; the model does not keep those of the file.
 */
export function stateFromConfig(config: PerlbalConfig, defaults: PerlbalState['defaults'] = new Map()): PerlbalState {
  const state = createPerlbalState();
  for (const s of config.services) {
    const copy = { ...structuredClone(s), options: cloneRecord(s.options), extra: cloneRecord(s.extra) };
    state.services.set(s.name, copy);
    const meta = newServiceMeta();
    copy.vhosts.forEach((r, i) => meta.vhostIndex.set(r.pattern, i));
    state.meta.set(s.name, meta);
  }
  for (const p of config.pools) state.pools.set(p.name, { ...structuredClone(p), options: cloneRecord(p.options) });
  state.server = cloneRecord(config.server);
  state.loadedPlugins = config.loadedPlugins.map((p) => canonicalPlugin(p) ?? p);
  state.defaults = new Map(defaults);
  state.access = cloneRecord(config.access);
  state.redirects = cloneRecord(config.redirects);
  // Perlbal auto-creates `<svc>_pool` only until the first CREATE POOL.
  state.vivifyPools = config.pools.length === 0;
  state.files = [...config.files];
  return state;
}
