// A fast restart keeps its VIPs. The engine records, with every heartbeat it sends, what it holds and whether the peer
// said it holds our groups too (<state-dir>/ha-held.json). An engine that finds its home groups' VIPs still on the
// interface at start (the previous one was killed: kill -9, the OOM killer) keeps them when that record says it held
// them, the peer did not, and its last heartbeat went out less than a deadtime ago: the peer has then not declared
// it dead, so it has not taken them over, and the clients are served again as soon as the proxy listens. Anything
// else left on the interface is removed until the cluster decides (the peer may hold it by now).
import { writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResourceGroup } from '../config/model.ts';
import type { HaNode } from './node.ts';
import { FOREIGN, groupsIn, LOCAL, stopping } from './resource-fsm.ts';

export const HELD_RECORD_FILE = 'ha-held.json';

export const heldRecordPath = (stateDir: string): string => join(stateDir, HELD_RECORD_FILE);

export interface HeldRecord {
  node: string;
  generation: number;
  /** Wall clock (ms) of the last heartbeat (status) that went out. */
  at: number;
  /** The deadtime we advertised (`dt`): how long the peer waits after that heartbeat before taking over. */
  deadtimeMs: number;
  /** Group keys we held and had up. */
  held: string[];
  /** The live peer's last report said it holds our home groups too (a double ownership in progress). */
  peerHoldsOurs: boolean;
}

/** What the node holds right now, as the next engine must know it after a crash. Pure. */
export function heldRecord(node: HaNode, wall: number): HeldRecord {
  const s = node.rsc;
  const held = stopping(s) ? [] : groupsIn(s.hold, node.cfg.me, node.cfg.groups).filter((g) => s.up.has(g.key)).map((g) => g.key);
  const peerAlive = node.peer.status !== 'dead' && node.peer.status !== 'unknown';
  return {
    node: node.cfg.me,
    generation: node.cfg.generation,
    at: wall,
    deadtimeMs: node.cfg.deadtimeMs,
    held,
    peerHoldsOurs: peerAlive && (s.otherHolds & FOREIGN) !== 0,
  };
}

/** Null when the text is not a record (missing, torn by the crash, another version): the safe answer is "remove". */
export function parseHeldRecord(text: string): HeldRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  const r = v as Partial<HeldRecord>;
  if (
    typeof r !== 'object' || r === null ||
    typeof r.node !== 'string' || typeof r.generation !== 'number' || typeof r.at !== 'number' ||
    typeof r.deadtimeMs !== 'number' || !Array.isArray(r.held) || !r.held.every((k) => typeof k === 'string') ||
    typeof r.peerHoldsOurs !== 'boolean'
  ) {
    return null;
  }
  return r as HeldRecord;
}

export function readHeldRecord(stateDir: string): HeldRecord | null {
  try {
    return parseHeldRecord(readFileSync(heldRecordPath(stateDir), 'utf8'));
  } catch {
    return null;
  }
}

export type LeftoverVerdict = { adopt: true; groups: ResourceGroup[]; why: string } | { adopt: false; why: string };

/**
 * Pure: whether the VIPs found on our interfaces at start are kept (adopted) or removed. `present` tells, per group
 * key, whether every VIP of the group is configured here. Only our home groups are kept, and only all of them together
 * (the resource machine tracks "our groups" as one): each must have been held by the previous engine and be still
 * up, the peer must not have said it holds them, and the previous engine's last heartbeat must be less than a
 * deadtime old (the smaller of the one it advertised and ours now). A record from the future (the clock went back) is
 * not trusted.
 */
export function judgeLeftovers(
  record: HeldRecord | null,
  me: string,
  groups: readonly ResourceGroup[],
  present: ReadonlyMap<string, boolean>,
  deadtimeMs: number,
  nowWall: number,
): LeftoverVerdict {
  const ours = groupsIn(LOCAL, me, groups);
  if (ours.length === 0) return { adopt: false, why: 'this node is the home of no group' };
  if (!ours.every((g) => present.get(g.key))) return { adopt: false, why: 'not all of our groups are still up' };
  if (record === null) return { adopt: false, why: 'no record of what the previous engine held' };
  if (record.node !== me) return { adopt: false, why: `the record is ${record.node}'s, not ${me}'s` };
  const missing = ours.filter((g) => !record.held.includes(g.key));
  if (missing.length > 0) return { adopt: false, why: `the previous engine did not hold ${missing.map((g) => g.key).join(', ')}` };
  if (record.peerHoldsOurs) return { adopt: false, why: 'the peer said it held them too' };
  const agoMs = nowWall - record.at;
  const limit = Math.min(deadtimeMs, record.deadtimeMs);
  if (agoMs < 0) return { adopt: false, why: 'the record is from the future (the clock went back)' };
  if (agoMs >= limit) return { adopt: false, why: `the previous engine's last heartbeat was ${agoMs} ms ago, not within deadtime (${limit} ms): the peer may have taken them over` };
  return {
    adopt: true,
    groups: ours,
    why: `the previous engine held them, its last heartbeat was ${agoMs} ms ago (within deadtime ${limit} ms) and the peer did not hold them`,
  };
}

/**
 * Writes the record after every heartbeat sent, off the heartbeat's path: one write at a time, the latest record
 * pending replaces an older one. A failure is reported once (a read-only state dir only costs the fast restart).
 */
export function createHeldRecorder(stateDir: string, onError: (msg: string) => void): { note(r: HeldRecord): void } {
  const path = heldRecordPath(stateDir);
  let writing = false;
  let pending: HeldRecord | null = null;
  let failed = false;
  const flush = (): void => {
    if (writing || pending === null) return;
    const r = pending;
    pending = null;
    writing = true;
    writeFile(path, `${JSON.stringify(r)}\n`, { mode: 0o600 }).then(
      () => {
        writing = false;
        flush();
      },
      (e: Error) => {
        writing = false;
        if (!failed) onError(`cannot record what this node holds in ${path} (${e.message}): a crash then costs a deadtime instead of a restart`);
        failed = true;
        flush();
      },
    );
  };
  return {
    note(r) {
      pending = r;
      flush();
    },
  };
}
