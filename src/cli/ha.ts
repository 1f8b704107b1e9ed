// `tsbal ha status|standby|takeover|run`: talk to the running HA engine (or run it alone, without the proxy).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defineCommand } from 'citty';
import { applyLogArgs, guarded, logArgs, logFileArgs, reopenLogFile, UsageError } from './common.ts';
import { ConfigError } from '../config/errors.ts';
import { loadHaDir } from '../config/hadir.ts';
import { DEFAULT_HA_DIR, DEFAULT_STATE_DIR, startHa, type HaHandle, type HaStatus } from '../ha/cluster.ts';
import type { ProxyGate } from '../ha/resources.ts';
import { request } from '../ha/control.ts';
import { statusLines } from '../ha/status-view.ts';
import { requestAnycast } from '../status/socket.ts';
import { anycastLine } from '../status/view.ts';
import { DEFAULT_GARP, type GarpOptions } from '../ha/vip.ts';

export const haArgs = {
  'ha-dir': { type: 'string', description: `heartbeat config dir (ha.cf, authkeys, haresources); default ${DEFAULT_HA_DIR}` },
  node: { type: 'string', description: "this node's name (default: <ha-dir>/nodeinfo, else uname -n)" },
  'state-dir': { type: 'string', description: `where the generation and the control socket live; default ${DEFAULT_STATE_DIR}` },
} as const;

export const garpArgs = {
  'ha-thread': { type: 'string', description: 'where heartbeats run: worker (default; own thread, stops if the main thread stalls past deadtime) or main' },
  'garp-count': { type: 'string', description: `gratuitous ARPs after taking a VIP (default ${DEFAULT_GARP.count})` },
  'garp-interval': { type: 'string', description: `ms between gratuitous ARPs (default ${DEFAULT_GARP.intervalMs})` },
} as const;

export function garpFrom(args: { 'garp-count'?: string; 'garp-interval'?: string }): GarpOptions {
  const count = args['garp-count'] === undefined ? DEFAULT_GARP.count : Number(args['garp-count']);
  const intervalMs = args['garp-interval'] === undefined ? DEFAULT_GARP.intervalMs : Number(args['garp-interval']);
  if (!Number.isInteger(count) || count < 1 || count > 100) throw new UsageError(`--garp-count must be 1-100, got '${args['garp-count']}'`);
  if (!Number.isFinite(intervalMs) || intervalMs < 10 || intervalMs > 10_000) throw new UsageError(`--garp-interval must be 10-10000 ms, got '${args['garp-interval']}'`);
  return { count, intervalMs };
}

export type HaRunArgs = { 'ha-dir'?: string; node?: string; 'state-dir'?: string; 'garp-count'?: string; 'garp-interval'?: string; 'ha-thread'?: string };

function threadFrom(args: HaRunArgs): 'worker' | 'main' {
  const t = args['ha-thread'] ?? 'worker';
  if (t !== 'worker' && t !== 'main') throw new UsageError(`--ha-thread must be worker or main, got '${t}'`);
  return t;
}

/**
 * Checks the flags and the files startHaForRun will use, before tsbal run opens anything: an error in /etc/ha.d then
 * stops tsbal run before its listeners are bound and logged as listening.
 */
export function checkHaForRun(args: HaRunArgs): void {
  garpFrom(args);
  threadFrom(args);
  const haDir = args['ha-dir'] ?? DEFAULT_HA_DIR;
  if (!existsSync(join(haDir, 'ha.cf'))) {
    if (args['ha-dir'] !== undefined) throw new UsageError(`--ha-dir ${haDir}: no ha.cf there`);
    return;
  }
  try {
    loadHaDir(haDir, { localNode: args.node?.toLowerCase() });
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

/**
 * The HA half of `tsbal run`: starts the engine next to the proxy when `<ha-dir>/ha.cf` exists, else returns null
 * (proxy only). An explicit --ha-dir without ha.cf is an error. On shutdown, close the HA handle before the proxy:
 * the VIP moves to the peer first, then the proxy drains.
 */
export async function startHaForRun(args: HaRunArgs, proxy: ProxyGate | null, onTransition?: (msg: string) => void): Promise<HaHandle | null> {
  const haDir = args['ha-dir'] ?? DEFAULT_HA_DIR;
  if (!existsSync(join(haDir, 'ha.cf'))) {
    if (args['ha-dir'] !== undefined) throw new UsageError(`--ha-dir ${haDir}: no ha.cf there`);
    return null;
  }
  return startHa({ haDir, node: args.node, stateDir: args['state-dir'] ?? DEFAULT_STATE_DIR, proxy, garp: garpFrom(args), thread: threadFrom(args), onTransition }).catch((e: Error) => {
    throw new UsageError(e.message);
  });
}

const stateDirOf = (args: { 'state-dir'?: string }): string => args['state-dir'] ?? DEFAULT_STATE_DIR;

/** `tsbal ha status` in plain words (src/ha/status-view.ts); --json keeps the engine's own names. */
export function formatStatus(s: HaStatus): string {
  return statusLines(s).join('\n');
}

const status = defineCommand({
  meta: { name: 'status', description: 'Show the HA state of the running node in plain words: what it holds, the peer, ping nodes, counters (--json: raw)' },
  args: { ...haArgs, ...logArgs, json: { type: 'boolean', description: 'print JSON' } },
  run: ({ args }) =>
    guarded(async () => {
      applyLogArgs(args);
      const answer = await request(stateDirOf(args), { cmd: 'status' }).catch(async (e: Error) => {
        // Anycast mode runs no HA engine: say what it announces instead (src/anycast/).
        const anycast = await requestAnycast(stateDirOf(args), { cmd: 'anycast', action: 'status' }, 2000).catch(() => null);
        if (anycast?.ok === true) return { ok: true as const, anycast: anycast.anycast };
        throw new UsageError(e.message, 3);
      });
      if ('anycast' in answer) {
        console.log(args.json ? JSON.stringify(answer.anycast, null, 2) : `anycast mode (no heartbeat): ${anycastLine(answer.anycast)}`);
        return;
      }
      if (!('status' in answer)) throw new UsageError(answer.msg);
      console.log(args.json ? JSON.stringify(answer.status, null, 2) : formatStatus(answer.status as HaStatus));
    }),
});

function handoverCommand(name: 'standby' | 'takeover', description: string) {
  return defineCommand({
    meta: { name, description },
    args: {
      which: { type: 'positional', required: false, description: 'all (default), local, foreign or failback' },
      ...haArgs,
      ...logArgs,
    },
    run: ({ args }) =>
      guarded(async () => {
        applyLogArgs(args);
        const answer = await request(stateDirOf(args), { cmd: name, which: args.which ?? '' }).catch((e: Error) => {
          throw new UsageError(e.message, 3);
        });
        const msg = 'msg' in answer ? answer.msg : '';
        if (!answer.ok) throw new UsageError(msg);
        console.log(msg);
      }),
  });
}

const run = defineCommand({
  meta: { name: 'run', description: 'Run the HA engine alone, without the proxy (tsbal run starts both)' },
  args: { ...haArgs, ...garpArgs, ...logArgs, ...logFileArgs },
  run: ({ args }) =>
    guarded(async () => {
      const logFile = applyLogArgs(args);
      // logrotate's postrotate signal: reopen the log file (the HA engine has nothing else to reload).
      if (logFile !== null) process.on('SIGHUP', () => reopenLogFile(logFile));
      const ha = await startHa({
        haDir: args['ha-dir'] ?? DEFAULT_HA_DIR,
        node: args.node,
        stateDir: stateDirOf(args),
        garp: garpFrom(args),
        thread: threadFrom(args),
      }).catch((e: Error) => {
        throw new UsageError(e.message);
      });
      const stop = (): void => void ha.close();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      await ha.stopped;
    }),
});

export default defineCommand({
  meta: { name: 'ha', description: 'Heartbeat-compatible HA: status, standby (hb_standby), takeover (hb_takeover)' },
  subCommands: {
    status,
    standby: handoverCommand('standby', 'Hand resources to the peer, like hb_standby [all|local|foreign|failback]'),
    takeover: handoverCommand('takeover', 'Ask the peer to hand resources over, like hb_takeover [all|local|foreign|failback]'),
    run,
  },
});
