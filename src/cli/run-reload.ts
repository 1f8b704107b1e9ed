// SIGHUP in `tsbal run`: re-read perlbal.conf, validate it as startup does, and hand it to the proxy, which applies
// it without dropping connections or keeps the old one entirely. The HA engine is not restarted: a change to its
// files is reported, not applied.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConsolaInstance } from 'consola';
import type { PerlbalConfig } from '../config/model.ts';
import type { ProxyHandle } from '../proxy/index.ts';

const HA_FILES = ['ha.cf', 'authkeys', 'haresources'] as const;

export interface ReloadSetup {
  configPath: string;
  proxy: ProxyHandle;
  /** Reads and validates the config as startup does; throws with `file:line: message` lines. */
  load: (path: string) => PerlbalConfig;
  /** The HA engine's config dir when it runs, else null. */
  haDir: string | null;
  log: ConsolaInstance;
  /** Told when a round starts and how it ended (`tsbal reload` waits on this, see reload-status.ts). */
  onRound?: (event: ReloadRoundEvent) => void;
}

export type ReloadRoundEvent = { kind: 'running' } | { kind: 'ok'; summary: string } | { kind: 'failed'; errors: string[] };

function readHaFiles(dir: string): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const f of HA_FILES) {
    try {
      out.set(f, readFileSync(join(dir, f), 'utf8'));
    } catch {
      out.set(f, null);
    }
  }
  return out;
}

/**
 * Returns the SIGHUP handler; its promise settles when the reload round it started (or joined) is over. Signals that
 * arrive during a reload fold into one more reload after it.
 */
export function reloadOnSignal(setup: ReloadSetup): (signal: string) => Promise<void> {
  const log = setup.log;
  const haAtStart = setup.haDir === null ? null : readHaFiles(setup.haDir);
  let running: Promise<void> | null = null;
  let again = false;

  const tell = (event: ReloadRoundEvent): void => {
    try {
      setup.onRound?.(event);
    } catch (error) {
      log.warn(`reload: cannot record the outcome for tsbal reload: ${String(error)}`);
    }
  };

  const failed = (lines: readonly string[]): void => {
    tell({ kind: 'failed', errors: [...lines] });
    for (const line of lines) log.error(line);
    log.error(`reload FAILED: still running the previous configuration, unchanged (fix ${setup.configPath} and send SIGHUP again)`);
  };

  const reloadOnce = async (signal: string): Promise<void> => {
    log.info(`${signal}: reloading ${setup.configPath}`);
    tell({ kind: 'running' });
    let config: PerlbalConfig;
    try {
      config = setup.load(setup.configPath);
    } catch (error) {
      failed((error as Error).message.split('\n'));
      return;
    }
    const outcome = await setup.proxy.reload(config);
    if (!outcome.ok) return failed(outcome.errors);
    log.info(`reload OK (${config.file}): ${outcome.summary}`);
    if (setup.haDir !== null && haAtStart !== null) {
      const now = readHaFiles(setup.haDir);
      const changed = HA_FILES.filter((f) => now.get(f) !== haAtStart.get(f));
      if (changed.length > 0) {
        log.warn(`reload: ${changed.join(', ')} in ${setup.haDir} changed since start; the HA engine runs on with what it started with: restart tsbal to apply HA changes`);
        return tell({ kind: 'ok', summary: `${outcome.summary}; NOTE: ${changed.join(', ')} changed but HA changes need a restart` });
      }
    }
    tell({ kind: 'ok', summary: outcome.summary });
  };

  return (signal) => {
    if (running !== null) {
      again = true;
      return running;
    }
    running = (async () => {
      // Signals that came during a round make one more round, however many they were.
      do {
        again = false;
        await reloadOnce(signal).catch((error: unknown) => failed([`reload: ${String(error)}`]));
      } while (again);
      running = null;
    })();
    return running;
  };
}
