// Events into and actions out of the pure HA node (node.ts). The I/O shell (cluster.ts) feeds events and performs
// actions; nothing in between touches a socket, a clock or a process.
import type { AuthKey, AutoFailback, ResourceGroup } from '../config/model.ts';

export interface EngineConfig {
  /** Our node name, lowercased. */
  me: string;
  /** Every cluster node, lowercased, in ha.cf order (ours included). */
  nodes: string[];
  keepaliveMs: number;
  deadtimeMs: number;
  warntimeMs: number;
  initdeadMs: number;
  deadpingMs: number;
  autoFailback: AutoFailback;
  /** Outbound key (authkeys `auth N`) and every key, for inbound checks. */
  authKey: AuthKey;
  keys: AuthKey[];
  /** msgfmt classic: add heartbeat's redundant inner `auth` field. */
  innerAuth: boolean;
  groups: ResourceGroup[];
  /** Ping targets: each `ping` IP is its own target, each `ping_group` one target with several members. */
  pingTargets: Array<{ name: string; members: string[] }>;
  /** How often the shell pings each target. */
  pingIntervalMs: number;
  /** Our generation (hg), persisted and increased on every start by the shell. */
  generation: number;
  maxRexmitDelayMs: number;
  /** heartbeat's RQSTDELAY: how long a starting node waits for an unstable peer before taking its own groups. */
  rqstDelayMs: number;
  /** How long a graceful shutdown waits for a resource transition in flight before going ahead anyway. */
  shutdownWaitMs: number;
  /** How often a group that failed to start is retried. */
  retryFailedMs: number;
  /** Seed for the jitter heartbeat adds to retransmit requests (deterministic in tests). */
  seed: number;
}

/** Every event carries a monotonic clock (ms) for timers and the wall clock (ms) for the `ts` field. */
export interface Clock {
  now: number;
  wall: number;
}

export type CommandName = 'standby' | 'takeover' | 'shutdown';

export type HaEvent =
  | ({ kind: 'start' } & Clock)
  | ({ kind: 'tick' } & Clock)
  | ({ kind: 'packet'; bytes: Uint8Array; from: string } & Clock)
  | ({ kind: 'command'; command: CommandName; which: string; requestId: number } & Clock)
  | ({ kind: 'opDone'; opId: number; failed: string[]; errors: string[] } & Clock)
  | ({ kind: 'pingReply'; target: string } & Clock)
  /** What we sent lately never left (the worker was muted): announce our state again. */
  | ({ kind: 'resync' } & Clock);

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type HaAction =
  | { kind: 'send'; bytes: Uint8Array; type: string; seq: number | null }
  /** `decidedAt`: the wall clock (ms) of the event that led to it, so the shell can say how long the hand-off took. */
  | { kind: 'acquire'; opId: number; groups: ResourceGroup[]; reason: string; decidedAt: number }
  | { kind: 'release'; opId: number; groups: ResourceGroup[]; reason: string; decidedAt: number }
  /**
   * Send the gratuitous ARP burst again for the VIPs of groups we hold and keep: after a double ownership is resolved
   * in our favour, or when the peer is heard again, clients whose ARP cache holds the other node's MAC must move back.
   */
  | { kind: 'announce'; groups: ResourceGroup[]; reason: string }
  | { kind: 'log'; level: LogLevel; msg: string }
  /** A command's answer for `tsbal ha standby|takeover`. */
  | { kind: 'reply'; requestId: number; ok: boolean; msg: string }
  /** Graceful shutdown finished: shutdone is out, the process may stop heartbeating. */
  | { kind: 'exit' };

export type DropReason =
  | 'malformed'
  | 'badAuth'
  | 'unknownNode'
  | 'impostor'
  | 'staleGeneration'
  | 'oldSeq'
  | 'duplicate'
  | 'notForUs'
  | 'own';

export const DROP_REASONS: readonly DropReason[] = [
  'malformed',
  'badAuth',
  'unknownNode',
  'impostor',
  'staleGeneration',
  'oldSeq',
  'duplicate',
  'notForUs',
  'own',
];
