// Heartbeat's haresources ("nice_failback") resource protocol for two nodes: who holds the local and foreign groups,
// the starting/resource exchange, the three-phase standby handshake (hb_standby, auto_failback), takeover on death
// and shutdone, and graceful shutdown. Modelled on hb_resource.c; pure, driven by node.ts.
//
// "local" groups are those whose home (first haresources token) is us, "foreign" the others; rsc_hold on the wire is
// always from the sender's point of view.
//
// One file on purpose (like hb_resource.c): the transitions call each other both ways (an operation's completion
// continues the standby handshake, a death cancels it, a takeover restarts acquisition), so splitting it would
// only create import cycles.
import type { AutoFailback, ResourceGroup } from '../config/model.ts';
import { rscBits, rscFromBits, type Body, type RscHold } from './messages.ts';
import type { LogLevel } from './types.ts';

export const NONE = 0;
export const LOCAL = 1;
export const FOREIGN = 2;
export const ALL = 3;

export type RState = 'init' | 'starting' | 'bothstarting' | 'rscrcvd' | 'stable' | 'shutdown';
export type Standby = 'not' | 'me' | 'other' | 'done';
type Purpose = 'req_our' | 'mach_down' | 'standby_giveup' | 'standby_acquire' | 'shutdown' | 'retry' | 'isolated' | 'split_brain';

interface Op {
  id: number;
  kind: 'acquire' | 'release';
  groups: ResourceGroup[];
  purpose: Purpose;
}

/** heartbeat's STANDBY_INIT_TO_MS and HB_STANDBY_RSC_TO_MS. */
const STANDBY_REPLY_MS = 10_000;
const STANDBY_DONE_MS = 60 * 60 * 1000;
const AUTO_FAILBACK_RETRY_MS = 1000;
/** While both nodes hold the same groups, how often we say again what we hold and re-check who must release. */
export const REEXAMINE_MS = 1000;

export interface RscState {
  rstate: RState;
  /** What we are responsible for (set eagerly, as heartbeat does, before the groups are up). */
  hold: number;
  /** Group keys actually started, and those whose start failed. */
  up: Set<string>;
  failed: Set<string>;
  otherHolds: number;
  otherStable: boolean;
  standby: Standby;
  standbyRsc: number;
  standbyDeadline: number | null;
  takeoverInProgress: boolean;
  needsFailback: boolean;
  /** A takeover skipped because no ping node answered; done once one does. */
  takeoverDeferred: boolean;
  /** The peer has said what it holds since it was last dead or restarted (otherHolds is news, not a memory). */
  peerReported: boolean;
  /**
   * The peer came back from a partition while we held its groups (auto_failback on): its next stable report starts
   * the failback, as a restarted heartbeat node's would.
   */
  failbackOnPeerStable: boolean;
  /** The peer came back while our own link was not yet trusted: we report unstable until it is, then stable. */
  linkWait: boolean;
  localTakeoverAt: number | null;
  startingSince: number | null;
  autoFailbackAt: number | null;
  retryAt: number | null;
  shutdownRequestedAt: number | null;
  shuttingDown: boolean;
  busy: Op | null;
  queue: Op[];
  nextOpId: number;
  lastAudit: string;
  /** Which of what we hold (LOCAL/FOREIGN bits) the last audit found the peer holding too. */
  doubleOwned: number;
  /** A double ownership persists: audit again then (our report may not have been heard). */
  reexamineAt: number | null;
  /** ipfail: whether our ping count equalled the live peer's at the last look (null: not compared yet). */
  pingBalanced: boolean | null;
  /** ipfail's delayed giveup of the foreign groups once the counts balance again (auto_failback on). */
  ipfailGiveupAt: number | null;
}

export const newRscState = (): RscState => ({
  rstate: 'init',
  hold: NONE,
  up: new Set(),
  failed: new Set(),
  otherHolds: NONE,
  otherStable: false,
  standby: 'not',
  standbyRsc: ALL,
  standbyDeadline: null,
  takeoverInProgress: false,
  needsFailback: false,
  takeoverDeferred: false,
  peerReported: false,
  failbackOnPeerStable: false,
  linkWait: false,
  localTakeoverAt: null,
  startingSince: null,
  autoFailbackAt: null,
  retryAt: null,
  shutdownRequestedAt: null,
  shuttingDown: false,
  busy: null,
  queue: [],
  nextOpId: 1,
  lastAudit: '',
  doubleOwned: NONE,
  reexamineAt: null,
  pingBalanced: null,
  ipfailGiveupAt: null,
});

/** What the resource machine needs from the node around it. */
export interface RscCtx {
  now: number;
  me: string;
  peer: string;
  groups: ResourceGroup[];
  autoFailback: AutoFailback;
  rqstDelayMs: number;
  shutdownWaitMs: number;
  retryFailedMs: number;
  /** ipfail delays its giveup by twice the keepalive. */
  keepaliveMs: number;
  peerAlive: boolean;
  /** False when ping nodes are configured and none answered lately: we may be the cut-off side. */
  canTakeOver: boolean;
  send(body: Body): void;
  log(level: LogLevel, msg: string): void;
  act(kind: 'acquire' | 'release', opId: number, groups: ResourceGroup[], reason: string): void;
  announce(groups: ResourceGroup[], reason: string): void;
  reply(ok: boolean, msg: string): void;
  exit(): void;
}

const flip = (bits: number): number => (bits === LOCAL ? FOREIGN : bits === FOREIGN ? LOCAL : bits);
export const holdName = (bits: number): RscHold => rscFromBits(bits);

export function groupsIn(bits: number, me: string, groups: readonly ResourceGroup[]): ResourceGroup[] {
  return groups.filter((g) => (g.node === me ? bits & LOCAL : bits & FOREIGN));
}

function sendHeld(s: RscState, c: RscCtx, stable: boolean, info: string | null = null): void {
  c.send({ t: 'resource', rsc_hold: holdName(s.hold), full: true, isstable: stable && !s.linkWait, info });
}

function sendStandby(s: RscState, c: RscCtx, info: 'me' | 'other' | 'done'): void {
  c.send({ t: 'ask_resources', rsc_hold: holdName(s.standbyRsc), info });
}

function enqueue(s: RscState, c: RscCtx, kind: Op['kind'], bits: number, purpose: Purpose, only?: ResourceGroup[]): void {
  const groups = only ?? groupsIn(bits, c.me, c.groups);
  s.queue.push({ id: s.nextOpId++, kind, groups, purpose });
  pump(s, c);
}

function pump(s: RscState, c: RscCtx): void {
  while (!s.busy && s.queue.length > 0) {
    const op = s.queue.shift()!;
    s.busy = op;
    if (op.groups.length === 0) {
      finishOp(s, c, op, []);
      continue;
    }
    c.act(op.kind, op.id, op.groups, op.purpose);
  }
}

/** The shell finished an acquire/release; `failed` lists group keys that did not start (or stop). */
export function rscOpDone(s: RscState, c: RscCtx, opId: number, failed: string[]): void {
  if (!s.busy || s.busy.id !== opId) {
    c.log('warn', `resource operation ${opId} finished but was not the one in progress`);
    return;
  }
  finishOp(s, c, s.busy, failed);
  pump(s, c);
  rscTick(s, c);
}

function finishOp(s: RscState, c: RscCtx, op: Op, failed: string[]): void {
  s.busy = null;
  for (const g of op.groups) {
    if (op.kind === 'acquire') {
      if (failed.includes(g.key)) {
        s.up.delete(g.key);
        s.failed.add(g.key);
      } else {
        s.up.add(g.key);
        s.failed.delete(g.key);
      }
    } else {
      s.failed.delete(g.key);
      if (!failed.includes(g.key)) s.up.delete(g.key);
    }
  }
  if (s.failed.size > 0 && s.retryAt === null) s.retryAt = c.now + c.retryFailedMs;
  switch (op.purpose) {
    case 'req_our':
      if (!s.shuttingDown) sendHeld(s, c, true, 'req_our_resources()');
      break;
    case 'mach_down':
      s.takeoverInProgress = false;
      s.needsFailback = true;
      s.otherStable = true;
      if (!s.shuttingDown) c.send({ t: 'resource', rsc_hold: 'foreign', full: false, isstable: null, info: 'mach_down' });
      c.log('info', 'mach_down takeover complete.');
      break;
    case 'standby_giveup':
      sendStandby(s, c, 'done');
      rscAskResources(s, c, s.standbyRsc, 'done', true);
      break;
    case 'standby_acquire':
      sendStandby(s, c, 'done');
      rscAskResources(s, c, s.standbyRsc, 'done', true);
      break;
    case 'shutdown':
      c.log('info', 'All HA resources relinquished.');
      c.send({ t: 'shutdone', st: 'dead' });
      c.exit();
      break;
    case 'retry':
    case 'isolated':
    case 'split_brain':
      if (!s.shuttingDown) sendHeld(s, c, true);
      break;
  }
}

/**
 * Shutdown was asked for (heartbeat's shutdown_in_progress): from then on this node takes nothing over, whether the
 * peer dies, sends shutdone, asks to go standby or fails back. Set before the release starts, so it also covers the
 * wait for an operation already running.
 */
export const stopping = (s: RscState): boolean => s.shuttingDown || s.shutdownRequestedAt !== null;

/** An acquire/release really running (or queued behind one): the only thing a shutdown waits for. */
const opRunning = (s: RscState): boolean => s.busy !== null || s.queue.length > 0;

export function isStable(s: RscState): boolean {
  if (s.shutdownRequestedAt !== null && s.rstate === 'init') return true;
  return s.otherStable && ownStable(s);
}

/** Nothing of ours is changing hands (heartbeat's isstable: its own resource state is stable, whatever the peer's). */
function ownStable(s: RscState): boolean {
  return (
    !s.takeoverInProgress &&
    s.standby === 'not' &&
    s.standbyDeadline === null &&
    s.busy === null &&
    s.queue.length === 0 &&
    (s.rstate === 'stable' || s.rstate === 'shutdown' || s.rstate === 'init')
  );
}

// ---------------------------------------------------------------------------------------------
// Acquisition

function reqOurResources(s: RscState, c: RscCtx, anyway: boolean): void {
  if (stopping(s)) return;
  if (((s.otherHolds & FOREIGN) !== 0 || (s.hold & LOCAL) !== 0) && !anyway) {
    if (s.standby === 'not') c.log('info', 'Local Resource acquisition completed. (none)');
    return;
  }
  s.hold |= LOCAL;
  enqueue(s, c, 'acquire', LOCAL, 'req_our');
}

function takeoverFromNode(s: RscState, c: RscCtx): void {
  if (stopping(s)) {
    c.log('info', 'Resource takeover cancelled - shutdown in progress.');
    return;
  }
  if (!c.canTakeOver) {
    c.log('error', `not taking over from ${c.peer}: no ping node answers, or not yet for its whole dead time (this node may be the one cut off)`);
    s.takeoverDeferred = true;
    return;
  }
  s.takeoverDeferred = false;
  c.log('info', `Resources being acquired from ${c.peer}.`);
  s.hold |= FOREIGN;
  s.otherHolds = NONE;
  s.otherStable = true;
  s.takeoverInProgress = true;
  enqueue(s, c, 'acquire', FOREIGN, 'mach_down');
  reqOurResources(s, c, true);
}

function becomeStable(s: RscState, c: RscCtx, why: string): void {
  c.log('info', why);
  reqOurResources(s, c, false);
  s.rstate = 'stable';
  s.localTakeoverAt = null;
  s.startingSince = null;
  sendHeld(s, c, true);
}

function performAutoFailback(s: RscState, c: RscCtx): void {
  if (stopping(s) || (s.hold & FOREIGN) === 0 || !s.needsFailback || c.autoFailback === 'off') {
    s.needsFailback = false;
    return;
  }
  if (s.standby !== 'not' || !s.otherStable || s.rstate !== 'stable' || !c.peerAlive) {
    s.autoFailbackAt = c.now + AUTO_FAILBACK_RETRY_MS;
    return;
  }
  if (s.otherHolds & LOCAL) {
    // The peer already holds its own groups, so both of us do (a healed partition): there is nothing to hand back,
    // and a handshake would only hold up the split-brain audit, which releases ours.
    s.needsFailback = false;
    audit(s, c);
    return;
  }
  c.log('info', `auto_failback: handing foreign resources back to ${c.peer}`);
  s.standbyRsc = FOREIGN;
  sendStandby(s, c, 'me');
  rscAskResources(s, c, FOREIGN, 'me', true);
  s.needsFailback = false;
}

// ---------------------------------------------------------------------------------------------
// Messages from the peer and membership changes

export function rscCommUp(s: RscState, c: RscCtx): void {
  c.send({ t: 'starting' });
  if (s.rstate === 'init') {
    s.rstate = 'starting';
    s.startingSince = c.now;
  }
}

export function rscPeerStarting(s: RscState, c: RscCtx): void {
  const prev = s.rstate;
  if (prev === 'starting') s.rstate = 'bothstarting';
  else if (prev === 'init') {
    c.log('error', "Received 'starting' message in state init");
    return;
  }
  s.otherStable = false;
  if (s.takeoverInProgress) c.log('warn', 'T_STARTING received during takeover.');
  sendHeld(s, c, prev === 'stable');
}

export function rscPeerResource(s: RscState, c: RscCtx, body: Extract<Body, { t: 'resource' }>): void {
  const prev = s.rstate;
  if (prev === 'init') {
    c.log('error', 'resource message received in state init');
    return;
  }
  if (prev === 'starting' || prev === 'bothstarting') s.rstate = 'rscrcvd';
  const n = rscBits(body.rsc_hold);
  s.otherHolds = body.full ? n : n === NONE ? NONE : n | s.otherHolds;
  s.peerReported = true;
  if (body.isstable === true) {
    const afterPartition = s.failbackOnPeerStable;
    s.failbackOnPeerStable = false;
    if (!s.otherStable) {
      c.log('info', 'remote resource transition completed.');
      s.otherStable = true;
      sendHeld(s, c, prev === 'stable');
      performAutoFailback(s, c);
    } else if (afterPartition) {
      performAutoFailback(s, c);
    }
  } else if (body.isstable === false) {
    s.otherStable = false;
  }
  if (prev !== 'stable' && prev !== 'shutdown') {
    if (s.otherStable) {
      becomeStable(s, c, 'remote resource transition completed.');
      performAutoFailback(s, c);
    } else if (body.full && s.otherHolds === NONE) {
      // tsbal: a peer that holds nothing and is itself starting cannot be taking our groups, so there is
      // nothing to wait RQSTDELAY (10 s) for. A real heartbeat peer then becomes stable on our report.
      becomeStable(s, c, `${c.peer} holds nothing: taking our own resources without waiting`);
    }
  }
  if (s.rstate === 'rscrcvd' && s.localTakeoverAt === null) s.localTakeoverAt = c.now + c.rqstDelayMs;
  audit(s, c);
}

export function rscPeerShutdone(s: RscState, c: RscCtx): void {
  s.otherStable = true;
  s.otherHolds = NONE;
  if (stopping(s)) return;
  c.log('info', `Received shutdown notice from '${c.peer}'.`);
  s.standby = 'not';
  s.standbyDeadline = null;
  if (s.rstate !== 'shutdown') s.rstate = 'stable';
  takeoverFromNode(s, c);
}

/** The peer was declared dead (hb_rsc_recover_dead_resources). */
export function rscPeerDead(s: RscState, c: RscCtx, everHeard: boolean): void {
  s.peerReported = false;
  s.doubleOwned = NONE;
  s.reexamineAt = null;
  s.pingBalanced = null;
  s.ipfailGiveupAt = null;
  s.failbackOnPeerStable = false;
  s.linkWait = false;
  if (s.standby !== 'not') {
    c.log('info', 'Cancelling pending standby operation');
    s.standby = 'not';
    s.standbyDeadline = null;
    if (!s.otherStable && s.hold === ALL) s.otherStable = true;
  }
  if (stopping(s)) {
    if (!s.shuttingDown) c.log('info', `Resource takeover from ${c.peer} cancelled - shutdown in progress.`);
    return;
  }
  s.needsFailback = true;
  s.otherStable = true; // a dead peer is not going anywhere
  if (s.rstate !== 'stable' && s.rstate !== 'shutdown') {
    // tsbal: with the peer gone there is no one to wait for; answer a returning peer as stable at once.
    s.rstate = 'stable';
    s.localTakeoverAt = null;
    s.startingSince = null;
  }
  if (!c.canTakeOver) {
    c.log('error', `not taking over from ${c.peer}: no ping node answers, or not yet for its whole dead time (this node may be the one cut off)`);
    s.takeoverDeferred = true;
    return;
  }
  if (!(everHeard && s.otherHolds === NONE)) {
    c.send({ t: 'stonith', node: c.peer, result: 'n_stnth' });
    c.log('warn', 'No STONITH device configured.');
    takeoverFromNode(s, c);
    return;
  }
  c.log('info', `Dead node ${c.peer} gave up resources.`);
  c.send({ t: 'stonith', node: c.peer, result: 'unneeded' });
  if (s.hold === ALL) {
    s.otherStable = true;
    return;
  }
  if (!(s.hold & LOCAL)) reqOurResources(s, c, true);
  if (!(s.hold & FOREIGN)) takeoverFromNode(s, c);
}

/**
 * The peer restarted (new generation) without us seeing it die: whatever it held is gone with its old process.
 * Heartbeat keeps its stale view here and can leave our own groups unowned; we take them back.
 */
export function rscPeerRestarted(s: RscState, c: RscCtx): void {
  if (s.standby !== 'not') {
    c.log('info', `Cancelling pending standby operation: ${c.peer} restarted`);
    s.standby = 'not';
    s.standbyDeadline = null;
  }
  const hadOurs = (s.otherHolds & FOREIGN) !== 0;
  s.otherHolds = NONE;
  s.peerReported = false;
  s.failbackOnPeerStable = false;
  s.otherStable = false;
  if (hadOurs && s.rstate === 'stable' && !(s.hold & LOCAL) && !stopping(s)) {
    c.log('warn', `${c.peer} restarted while holding our resources: taking them back`);
    reqOurResources(s, c, true);
  }
}

/** Our packets were lost for a while (a muted heartbeat worker): say again what we hold, and audit afresh. */
export function rscResync(s: RscState, c: RscCtx): void {
  s.lastAudit = '';
  if (s.rstate === 'stable' && !s.shuttingDown) sendHeld(s, c, isStable(s));
}

/**
 * A dead peer is heard again: tell it what we hold, so both sides can audit (and resolve a split brain).
 *
 * heartbeat restarts itself here, and the restarted home node gets its groups back through the starting/resource
 * exchange (auto_failback on). tsbal stays up and keeps that exchange's trigger: a node holding its peer's groups
 * fails back on the peer's next stable report, and a node whose own link is not yet trusted (ping nodes configured,
 * not answering for the peer's whole dead time) reports itself unstable until it is, so nothing is handed to a side
 * that may still be cut off. The handover is heartbeat's ask_resources handshake: released before acquired.
 */
export function rscPeerBack(s: RscState, c: RscCtx): void {
  s.takeoverDeferred = false;
  if (s.rstate !== 'stable' || stopping(s)) return;
  s.failbackOnPeerStable = c.autoFailback !== 'off' && (s.hold & FOREIGN) !== 0;
  if (s.failbackOnPeerStable) s.needsFailback = true;
  s.linkWait = !c.canTakeOver;
  sendHeld(s, c, isStable(s));
  // Whatever the peer did while we could not hear each other (a takeover, its gratuitous ARPs), our own groups stay
  // here: point the clients back at us. Its groups (held after a takeover) are announced only if we keep them.
  announceHeld(s, c, LOCAL, `${c.peer} is heard again`);
}

/** Re-sends the gratuitous ARP burst for the groups in `bits` that we hold and have up. */
function announceHeld(s: RscState, c: RscCtx, bits: number, why: string): void {
  const groups = groupsIn(bits & s.hold, c.me, c.groups).filter((g) => s.up.has(g.key));
  if (groups.length > 0) c.announce(groups, why);
}

/** ask_resources, from the peer or (fromMe) one we sent ourselves: heartbeat's ask_for_resources. */
export function rscAskResources(s: RscState, c: RscCtx, rtype: number, info: string, fromMe: boolean): void {
  if (s.rstate === 'shutdown') return;
  if (!fromMe && stopping(s) && (s.standby === 'not' || s.standby === 'other')) {
    // Taking the peer's handover now would acquire during our shutdown; our shutdone hands everything to it instead.
    c.log('info', `standby message [${info}] from ${c.peer} ignored - shutdown in progress.`);
    return;
  }
  // Holdings are changing hands: what the peer last reported is no longer news until it reports again.
  s.peerReported = false;
  const who = fromMe ? c.me : c.peer;
  if (!fromMe && info === 'me' && s.standby === 'me' && yieldsToPeer(s, c, rtype)) {
    c.log('warn', `standby requests crossed: ${c.me} [${holdName(s.standbyRsc)}] and ${c.peer} [${holdName(rtype)}]; ${c.me} yields and lets ${c.peer} go standby first`);
    // Crossed failbacks (each hands the other its home groups): ours is tried again once the peer's is done.
    if (s.standbyRsc === FOREIGN && rtype === FOREIGN && (s.hold & FOREIGN) !== 0 && c.autoFailback !== 'off') {
      s.needsFailback = true;
      s.autoFailbackAt = c.now + AUTO_FAILBACK_RETRY_MS;
    }
    s.standby = 'not';
    s.standbyDeadline = null;
    s.otherStable = true;
  } else if (s.standbyDeadline !== null && c.now < s.standbyDeadline && info === 'me' && s.standby !== 'not') {
    c.log('warn', `Standby in progress - new request from ${who} ignored`);
    return;
  }
  let ignored = false;
  switch (s.standby) {
    case 'not':
      if (!s.otherStable) {
        c.log('warn', `standby message [${info}] from ${who} ignored.  Other side is in flux.`);
        return;
      }
      if (s.rstate !== 'stable') {
        c.log('warn', `standby message [${info}] from ${who} ignored.  local resources in flux.`);
        return;
      }
      s.standbyRsc = rtype;
      if (info !== 'me') {
        ignored = true;
        break;
      }
      s.otherStable = false;
      c.log('info', `${who} wants to go standby [${holdName(rtype)}]`);
      if (fromMe) {
        s.standby = 'me';
        s.standbyDeadline = c.now + STANDBY_REPLY_MS;
      } else {
        s.standby = 'other';
        sendStandby(s, c, 'other');
        s.standbyDeadline = c.now + STANDBY_DONE_MS;
      }
      break;
    case 'me':
      if (!fromMe) {
        s.standbyRsc = rtype;
        s.standbyDeadline = c.now + STANDBY_DONE_MS;
        if (info === 'other') {
          c.log('info', `standby: ${who} can take our ${holdName(rtype)} resources`);
          s.otherStable = false;
          s.hold &= ~rtype;
          sendHeld(s, c, false, 'standby');
          enqueue(s, c, 'release', rtype, 'standby_giveup');
        } else ignored = true;
      } else if (info === 'done') {
        c.log('info', `Local standby process completed [${holdName(rtype)}].`);
        s.standby = 'done';
        s.hold &= ~s.standbyRsc;
        s.standbyDeadline = c.now + STANDBY_DONE_MS;
      } else ignored = true;
      break;
    case 'other':
      s.standbyRsc = rtype;
      if (info === 'done') {
        s.standbyDeadline = c.now + STANDBY_DONE_MS;
        if (!fromMe) {
          c.log('info', `standby: acquire [${holdName(rtype)}] resources from ${who}`);
          s.standby = 'done';
          enqueue(s, c, 'acquire', flip(rtype), 'standby_acquire');
        } else ignored = true;
      } else if (!fromMe || info !== 'other') ignored = true;
      break;
    case 'done':
      s.standbyRsc = rtype;
      if (info !== 'done') {
        ignored = true;
        break;
      }
      s.standbyDeadline = null;
      s.standby = 'not';
      if (fromMe) {
        c.log('info', `Standby resource acquisition done [${holdName(rtype)}].`);
        s.hold |= flip(rtype);
        // The peer handed us its own groups on purpose (hb_standby there, hb_takeover here, or ipfail): auto_failback
        // must not hand them straight back, and a failback still pending from an earlier death is overtaken by this
        // handover. As in heartbeat, only a death (mach_down, recover_dead_resources) or a healed partition makes a
        // failback due. A handover of our own groups leaves a pending failback of the peer's alone (crossed failbacks).
        if (flip(rtype) & FOREIGN) s.needsFailback = false;
      } else {
        c.log('info', `Other node completed standby takeover of ${holdName(rtype)} resources.`);
        s.otherStable = true;
      }
      sendHeld(s, c, true);
      break;
  }
  if (ignored) c.log('error', `Ignored standby message '${info}' from ${who} in state ${s.standby}`);
}

/**
 * Both nodes asked to go standby at the same moment (each sent `ask_resources info=me` before hearing the other's).
 * heartbeat ignores both and lets them time out after 10 s; tsbal lets one go first, and both sides must pick the same
 * one, so the choice uses only what both know for certain: the two requested sets and the two names (each side's view
 * of what the other holds may be stale, e.g. right after a partition, and two nodes that both yielded would wait for
 * each other for an hour). A request for `foreign` only (a failback: groups go back to their home node) goes first;
 * otherwise the node whose name sorts first does. A real heartbeat peer never yields, so we do whenever its request wins.
 */
function yieldsToPeer(s: RscState, c: RscCtx, peerRtype: number): boolean {
  const failbackOnly = (rtype: number): boolean => rtype === FOREIGN;
  if (failbackOnly(peerRtype) !== failbackOnly(s.standbyRsc)) return failbackOnly(peerRtype);
  return c.peer < c.me;
}

/** `tsbal ha standby [all|local|foreign|failback]` (hb_standby): ask the peer to take resources from us. */
export function rscStandbyCommand(s: RscState, c: RscCtx, which: string): void {
  const rsc = which === 'failback' ? 'foreign' : which || 'all';
  if (!['all', 'local', 'foreign'].includes(rsc)) return c.reply(false, `unknown resource set '${which}' (all, local, foreign or failback)`);
  const refuse = !c.peerAlive
    ? `no live peer to hand resources to (${c.peer} is not up)`
    : stopping(s)
      ? 'shutting down'
      : !isStable(s)
        ? 'a resource transition is in progress; try again when it is done'
        : null;
  if (refuse) return c.reply(false, `standby refused: ${refuse}`);
  s.standbyRsc = rscBits(rsc as RscHold);
  sendStandby(s, c, 'me');
  rscAskResources(s, c, s.standbyRsc, 'me', true);
  c.reply(true, `going standby [${rsc}]: ${c.peer} is taking over`);
}

/** A peer's hb_takeover: it wants resources from us, so we go standby for the matching set. */
export function rscPeerTakeover(s: RscState, c: RscCtx, rscHold: string): void {
  const mapped = rscHold === 'local' ? 'foreign' : rscHold === 'foreign' ? 'local' : 'all';
  c.log('info', `${c.peer} asks to take over [${rscHold}]: going standby [${mapped}]`);
  if (stopping(s)) {
    c.log('warn', `takeover request from ${c.peer} ignored: shutting down (our shutdone hands everything over)`);
    return;
  }
  if (!isStable(s) || !c.peerAlive) {
    c.log('warn', `takeover request from ${c.peer} ignored: resources in flux`);
    return;
  }
  s.standbyRsc = rscBits(mapped);
  sendStandby(s, c, 'me');
  rscAskResources(s, c, s.standbyRsc, 'me', true);
}

export function rscRequestShutdown(s: RscState, c: RscCtx): void {
  if (s.shuttingDown || s.shutdownRequestedAt !== null) return;
  s.shutdownRequestedAt = c.now;
  if (opRunning(s)) c.log('warn', `Shutdown delayed until current resource activity finishes (${s.busy?.kind ?? 'an operation'} in progress).`);
  rscTick(s, c);
}

function doShutdown(s: RscState, c: RscCtx): void {
  s.shuttingDown = true;
  s.queue = [];
  s.hold = NONE;
  s.rstate = 'shutdown';
  s.standby = 'not';
  s.standbyDeadline = null;
  c.log('info', 'Heartbeat shutdown in progress: giving up all HA resources.');
  sendHeld(s, c, false, 'shutdown');
  // Release everything we might hold, including groups an interrupted operation may have started.
  enqueue(s, c, 'release', ALL, 'shutdown', c.groups.filter((g) => s.up.has(g.key) || s.failed.has(g.key) || s.busy?.groups.includes(g)));
}

// ---------------------------------------------------------------------------------------------
// Timers, ping (ipfail) and audits

export function rscTick(s: RscState, c: RscCtx): void {
  if (s.shutdownRequestedAt !== null && !s.shuttingDown) {
    // Only an operation really running holds the shutdown up. A standby handshake waiting for the peer's word (our
    // release done, its acquire still going: standby 'done' for up to an hour) or a peer in flux does not: our
    // resource/shutdone messages tell the peer everything it needs, and heartbeat's peer handles them the same way.
    if (!opRunning(s) || c.now >= s.shutdownRequestedAt + c.shutdownWaitMs) doShutdown(s, c);
    return;
  }
  if (s.shuttingDown) return;
  if (s.linkWait && c.canTakeOver) {
    s.linkWait = false;
    c.log('info', `our link has worked for ${c.peer}'s dead time: reporting our resources stable`);
    // Our own state, not isStable(): if both sides waited for their links, each saw the other unstable, and neither
    // may wait for the other's stable report before sending its own.
    if (s.rstate === 'stable') sendHeld(s, c, ownStable(s));
  }
  if (s.localTakeoverAt !== null && c.now >= s.localTakeoverAt) {
    s.localTakeoverAt = null;
    if (s.rstate === 'rscrcvd') becomeStable(s, c, `${c.peer} not stable after RQSTDELAY: taking our own resources`);
  }
  if (s.startingSince !== null && c.now >= s.startingSince + c.rqstDelayMs) {
    s.startingSince = null;
    if (s.rstate === 'starting' || s.rstate === 'bothstarting') {
      becomeStable(s, c, `no resource report from ${c.peer} after RQSTDELAY: taking our own resources`);
    }
  }
  if (s.autoFailbackAt !== null && c.now >= s.autoFailbackAt) {
    s.autoFailbackAt = null;
    performAutoFailback(s, c);
  }
  if (s.standbyDeadline !== null && c.now >= s.standbyDeadline) {
    c.log('warn', 'No reply to standby request.  Standby request cancelled.');
    s.standby = 'not';
    s.standbyDeadline = null;
    s.otherStable = true;
    sendHeld(s, c, true);
  }
  if (s.ipfailGiveupAt !== null && c.now >= s.ipfailGiveupAt) ipfailGiveup(s, c);
  if (s.reexamineAt !== null && c.now >= s.reexamineAt) {
    s.reexamineAt = null;
    if (c.peerAlive && s.rstate === 'stable') audit(s, c);
  }
  reclaimUnowned(s, c);
  if (s.retryAt !== null && c.now >= s.retryAt && !s.busy) {
    s.retryAt = null;
    const retry = c.groups.filter((g) => s.failed.has(g.key) && groupsIn(s.hold, c.me, [g]).length > 0);
    if (retry.length > 0) enqueue(s, c, 'acquire', NONE, 'retry', retry);
    else s.failed.clear();
  }
}

/**
 * tsbal: heartbeat's audit only logs 'No one owns our local resources!', and the VIP stays down. That happens when
 * both sides released as isolated during a partition (one cut off, then the other stalled past deadping). When both
 * are stable and the live peer, since it came back, has said it holds none of our groups, their home node takes them,
 * once its own link is trusted (canTakeOver: with ping nodes, they have answered for the peer's dead time).
 */
function reclaimUnowned(s: RscState, c: RscCtx): void {
  if (s.rstate !== 'stable' || stopping(s) || !c.peerAlive || !s.peerReported || !c.canTakeOver || !isStable(s)) return;
  if (s.hold & LOCAL || s.otherHolds & FOREIGN || groupsIn(LOCAL, c.me, c.groups).length === 0) return;
  c.log('warn', `no one holds our resources and ${c.peer} is stable without them: taking them back`);
  reqOurResources(s, c, true);
}

export function rscNextDeadline(s: RscState, c: Pick<RscCtx, 'rqstDelayMs' | 'shutdownWaitMs'>): number {
  const times = [
    s.localTakeoverAt,
    s.startingSince === null ? null : s.startingSince + c.rqstDelayMs,
    s.autoFailbackAt,
    s.standbyDeadline,
    s.retryAt,
    s.reexamineAt,
    s.ipfailGiveupAt,
    s.shutdownRequestedAt === null || s.shuttingDown ? null : s.shutdownRequestedAt + c.shutdownWaitMs,
  ];
  return Math.min(...times.map((t) => t ?? Infinity));
}

/**
 * ipfail semantics. `mine`/`theirs` count reachable ping targets (theirs null: a real heartbeat peer, assumed to reach
 * all). A node that reaches fewer than its live peer hands its resources over; a node that reaches none and has no
 * live peer is the isolated side of a partition and releases everything.
 */
export function rscPingChanged(s: RscState, c: RscCtx, mine: number, theirs: number | null, total: number): void {
  if (total === 0 || stopping(s) || s.busy || s.queue.length > 0) return;
  if (c.peerAlive) {
    const peerCount = theirs ?? total;
    ipfailBalance(s, c, mine === peerCount);
    if (mine < peerCount && s.hold !== NONE && isStable(s)) {
      c.log('warn', `ping: we reach ${mine}/${total} ping nodes, ${c.peer} reaches ${peerCount}: handing our resources to it`);
      s.standbyRsc = ALL;
      sendStandby(s, c, 'me');
      rscAskResources(s, c, ALL, 'me', true);
    }
    return;
  }
  if (mine === 0 && s.hold !== NONE) {
    c.log('error', `isolated: ${c.peer} is dead and no ping node answers; releasing our resources so the other side can hold them`);
    const held = s.hold;
    s.hold = NONE;
    s.takeoverDeferred = true;
    enqueue(s, c, 'release', held, 'isolated');
  } else if (c.canTakeOver && s.takeoverDeferred && s.rstate === 'stable') {
    c.log('info', `${c.peer} stayed silent for its whole dead time while ping nodes answered: taking over`);
    takeoverFromNode(s, c);
  }
}

/**
 * ipfail's give-back: when the ping counts of the two nodes become equal again (the side that lost its ping node
 * reaches it again), a node holding its peer's groups with auto_failback on gives them back after twice the keepalive
 * ("Ping node count is balanced." / "Giving up foreign resources (auto_failback)." / "Delayed giveup in N seconds."),
 * through the standby handshake; a count unbalanced again before then aborts it. auto_failback off leaves them.
 */
function ipfailBalance(s: RscState, c: RscCtx, balanced: boolean): void {
  const was = s.pingBalanced;
  s.pingBalanced = balanced;
  if (!balanced && s.ipfailGiveupAt !== null) {
    c.log('info', 'Aborted delayed giveup: the ping node counts differ again');
    s.ipfailGiveupAt = null;
  }
  if (!balanced || was !== false) return;
  c.log('info', `Ping node count is balanced (${c.me} and ${c.peer} reach as many ping nodes).`);
  if (c.autoFailback === 'off' || (s.hold & FOREIGN) === 0 || groupsIn(FOREIGN, c.me, c.groups).length === 0) return;
  c.log('info', 'Giving up foreign resources (auto_failback).');
  c.log('info', `Delayed giveup in ${(2 * c.keepaliveMs) / 1000} seconds.`);
  s.ipfailGiveupAt = c.now + 2 * c.keepaliveMs;
}

/** The delayed giveup is due: hand the peer its groups back (hb_standby foreign), once our state is stable. */
function ipfailGiveup(s: RscState, c: RscCtx): void {
  s.ipfailGiveupAt = null;
  if (stopping(s) || !c.peerAlive || (s.hold & FOREIGN) === 0 || s.pingBalanced !== true || c.autoFailback === 'off') return;
  if (!isStable(s) || s.rstate !== 'stable') {
    // ipfail's need_standby: try again when things have settled.
    s.ipfailGiveupAt = c.now + AUTO_FAILBACK_RETRY_MS;
    return;
  }
  c.log('info', `giveup() called: handing foreign resources back to ${c.peer}`);
  s.standbyRsc = FOREIGN;
  sendStandby(s, c, 'me');
  rscAskResources(s, c, FOREIGN, 'me', true);
}

/**
 * AuditResources, plus tsbal's split-brain resolution: the group's home (preferred) node keeps it.
 *
 * A double ownership is re-examined every REEXAMINE_MS until it is gone, and the keeper says again what it holds at
 * every audit meanwhile: its first report may have gone out while the peer could not hear it (a one-way partition),
 * and the peer only releases on a report it hears. When it is gone and we kept the groups, the keeper re-announces
 * them (gratuitous ARP): during the double ownership the peer's ARPs may have won the clients' caches. The home
 * node also announces at every audit while both hold its groups, so that clients are already back on it when the
 * peer releases (a request sent to the peer between its release and our ARPs would be lost).
 */
function audit(s: RscState, c: RscCtx): void {
  const key = `${s.hold}/${s.otherHolds}/${s.otherStable}`;
  const changed = key !== s.lastAudit;
  s.lastAudit = key;
  const ours = groupsIn(LOCAL, c.me, c.groups).length > 0;
  const theirs = groupsIn(FOREIGN, c.me, c.groups).length > 0;
  const oursDouble = (s.hold & LOCAL) !== 0 && (s.otherHolds & FOREIGN) !== 0 && ours;
  const theirsDouble = (s.otherHolds & LOCAL) !== 0 && (s.hold & FOREIGN) !== 0 && theirs;
  if (oursDouble) {
    if (changed) c.log('error', `SPLIT BRAIN: both ${c.me} and ${c.peer} hold ${c.me}'s resources; ${c.me} is their preferred node and keeps them, ${c.peer} must release`);
    // The peer may not know we hold them (we were silent to it, not it to us): tell it, again at every audit, so it
    // releases. Stable as far as we are concerned: we are changing nothing, and the peer waits for a stable report.
    sendHeld(s, c, ownStable(s));
    // And point the clients at us now, not only once the peer has let go: its release and our ARPs would race, and
    // a request sent to it in between is lost. Any ARPs it sent were at its takeover; it sends none later.
    announceHeld(s, c, LOCAL, `${c.peer} holds them too and we are their home node`);
  }
  if (theirsDouble) {
    if (changed) c.log('error', `SPLIT BRAIN: both ${c.me} and ${c.peer} hold ${c.peer}'s resources; ${c.peer} is their preferred node, releasing ours`);
    if (s.otherStable && !s.busy && s.standby === 'not' && s.queue.length === 0) {
      s.hold &= ~FOREIGN;
      s.needsFailback = false;
      enqueue(s, c, 'release', FOREIGN, 'split_brain');
    }
  }
  const double = (oursDouble ? LOCAL : NONE) | (theirsDouble && (s.hold & FOREIGN) !== 0 ? FOREIGN : NONE);
  const resolved = s.doubleOwned & ~double & s.hold;
  s.doubleOwned = double;
  s.reexamineAt = double !== NONE ? c.now + REEXAMINE_MS : null;
  if (resolved !== NONE) announceHeld(s, c, resolved, `${c.peer} released them: the double ownership is over`);
  if (changed && isStable(s) && s.rstate === 'stable') {
    if (!(s.hold & LOCAL) && !(s.otherHolds & FOREIGN) && ours) c.log('error', 'No one owns our local resources!');
    if (!(s.otherHolds & LOCAL) && !(s.hold & FOREIGN) && theirs) c.log('error', 'No one owns foreign resources!');
  }
}
