// The HA node as a pure state machine: events in (start, tick, packet, command, operation done, ping reply),
// actions out (send bytes, acquire/release groups, log, reply, exit). Membership, liveness, generation/seq checks,
// retransmissions and the join handshake live here (every packet passes through all of them, in this order);
// the resource protocol lives in resource-fsm.ts.
import { decodePacket, encodePacket, fieldValue, verifyPacket } from './wire.ts';
import { dropSummary, newDropLog, noteDrop, type DropLog } from './droplog.ts';
import { isUnsequenced, messageFields, parseMessage, type Body, type Message } from './messages.ts';
import { answerRexmit, checkSeq, newSeqTrack, remember, type SendHistory, type SeqTrack } from './seq.ts';
import * as fsm from './resource-fsm.ts';
import { DROP_REASONS, type DropReason, type EngineConfig, type HaAction, type HaEvent, type LogLevel } from './types.ts';

export type PeerStatus = 'unknown' | 'init' | 'up' | 'active' | 'dead';

export interface PeerState {
  name: string;
  status: PeerStatus;
  /** Our clock when its last new (in-sequence) packet arrived. */
  heardAt: number | null;
  /** The deadtime it advertises (`dt`), else ours. */
  dtMs: number;
  everHeard: boolean;
  pingUp: number | null;
  seq: SeqTrack;
  /** Heartbeat ACKs when seq % 10 equals a per-peer trigger. */
  ackTrigger: number;
}

export interface Counters {
  received: number;
  accepted: number;
  sent: number;
  resent: number;
  rexmitRequested: number;
  lost: number;
  deaths: number;
  dropped: Record<DropReason, number>;
}

export interface HaNode {
  cfg: EngineConfig;
  peerName: string;
  startedAt: number;
  wall: number;
  status: 'init' | 'up' | 'active';
  commUp: boolean;
  reqnodesAt: number | null;
  /** Cleared when a peer's status lacks `protocol` (an older heartbeat): no reqnodes then. */
  flowControl: boolean;
  nextSeq: number;
  history: SendHistory;
  nextStatusAt: number;
  peer: PeerState;
  rsc: fsm.RscState;
  ping: Map<string, { lastReply: number | null; up: boolean }>;
  /**
   * When ping replies started again after a gap (any target, first reply after more than the freshness window):
   * from then on our link is known to work. Null until the first reply.
   */
  linkUpSince: number | null;
  /** When a deferred takeover from a dead peer may go ahead (linkUpSince + its dt): a tick is due then. */
  linkCheckAt: number | null;
  counters: Counters;
  /** Which dropped packets were logged, and the counts for the periodic summary. */
  dropLog: DropLog;
  /**
   * Packets that name our peer as sender but fail authentication: almost always authkeys differing between the two
   * nodes (each then holds the VIP: a split brain). Null until one comes.
   */
  authMismatch: AuthMismatch | null;
  rng: number;
  started: boolean;
  stopped: boolean;
  impostorGens: Set<number>;
}

export interface AuthMismatch {
  /** The sender address of the last such packet. */
  address: string;
  /** verifyPacket's verdict: bad-digest (another key), unknown-key (another `auth N` index), no-auth. */
  reason: string;
  count: number;
  at: number;
}

/** The peer's packets fail authentication and none has passed since: the two authkeys differ. */
export function keysDiffer(node: HaNode): boolean {
  const m = node.authMismatch;
  return m !== null && (node.peer.heardAt === null || m.at > node.peer.heardAt);
}

const REQNODES_INTERVAL_MS = 1000;

export function createNode(cfg: EngineConfig): HaNode {
  if (!cfg.nodes.includes(cfg.me)) throw new Error(`node '${cfg.me}' is not in ha.cf's node list (${cfg.nodes.join(', ')})`);
  const others = cfg.nodes.filter((n) => n !== cfg.me);
  if (others.length !== 1) {
    throw new Error(`haresources mode needs exactly two nodes; ha.cf lists ${cfg.nodes.length} (${cfg.nodes.join(', ')})`);
  }
  const peerName = others[0]!;
  return {
    cfg,
    peerName,
    startedAt: 0,
    wall: 0,
    status: 'init',
    commUp: false,
    reqnodesAt: null,
    flowControl: true,
    nextSeq: 1,
    history: new Map(),
    nextStatusAt: 0,
    peer: {
      name: peerName,
      status: 'unknown',
      heardAt: null,
      dtMs: cfg.deadtimeMs,
      everHeard: false,
      pingUp: null,
      seq: newSeqTrack(),
      ackTrigger: [...peerName].reduce((a, ch) => a + ch.charCodeAt(0), 0) % 10,
    },
    rsc: fsm.newRscState(),
    ping: new Map(cfg.pingTargets.map((t) => [t.name, { lastReply: null, up: true }])),
    linkUpSince: null,
    linkCheckAt: null,
    counters: {
      received: 0,
      accepted: 0,
      sent: 0,
      resent: 0,
      rexmitRequested: 0,
      lost: 0,
      deaths: 0,
      dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
    },
    dropLog: newDropLog(),
    authMismatch: null,
    rng: cfg.seed >>> 0 || 1,
    started: false,
    stopped: false,
    impostorGens: new Set(),
  };
}

// ---------------------------------------------------------------------------------------------
// Sending

interface Out {
  node: HaNode;
  now: number;
  actions: HaAction[];
}

function log(o: Out, level: LogLevel, msg: string): void {
  o.actions.push({ kind: 'log', level, msg });
}

function send(o: Out, body: Body): void {
  const { node } = o;
  const seq = isUnsequenced(body) ? null : node.nextSeq++;
  const fields = messageFields(body, {
    src: node.cfg.me,
    seq,
    hg: node.cfg.generation,
    ts: Math.floor(node.wall / 1000),
    ld: null,
    ttl: 1 + node.cfg.nodes.length,
  });
  const bytes = encodePacket(fields, node.cfg.authKey, { innerAuth: node.cfg.innerAuth });
  if (seq !== null) remember(node.history, seq, bytes);
  node.counters.sent++;
  o.actions.push({ kind: 'send', bytes, type: body.t === 'other' ? body.type : body.t, seq });
}

function sendStatus(o: Out): void {
  const { node } = o;
  const pinged = node.cfg.pingTargets.length > 0 ? pingUpCount(node) : null;
  send(o, { t: 'status', st: node.status, dt: node.cfg.deadtimeMs, protocol: '1', pingUp: pinged });
  node.nextStatusAt = o.now + node.cfg.keepaliveMs;
}

const peerAlive = (p: PeerState): boolean => p.status !== 'dead' && p.status !== 'unknown';

/** How recent a ping reply must be to count as "our link works now": a few ping intervals. */
const pingFreshMs = (cfg: EngineConfig): number => Math.min(cfg.deadpingMs, Math.max(3 * cfg.pingIntervalMs, 200));

/**
 * ipfail's question at takeover time: is the peer's silence real, or were we the one cut off? It is real only if a
 * ping node answered lately (not merely "not yet past deadping": when our own link goes down, the peer and the ping
 * node fall silent together, and the peer's deadtime may run out before the ping node's deadping does) *and* our link
 * has been working for the peer's whole dead time: a peer we declared dead while cut off may be alive, and after the
 * link heals its next heartbeat can come after the ping node's first reply.
 */
function canTakeOver(node: HaNode, now: number): boolean {
  if (node.cfg.pingTargets.length === 0) return true;
  const fresh = pingFreshMs(node.cfg);
  let answered = false;
  for (const p of node.ping.values()) if (p.lastReply !== null && now - p.lastReply <= fresh) answered = true;
  return answered && node.linkUpSince !== null && now >= node.linkUpSince + node.peer.dtMs;
}

function onPingReply(o: Out, target: string): void {
  const { node, now } = o;
  const p = node.ping.get(target);
  if (!p) return;
  let last: number | null = null;
  for (const q of node.ping.values()) if (q.lastReply !== null && (last === null || q.lastReply > last)) last = q.lastReply;
  if (last === null || now - last > pingFreshMs(node.cfg)) {
    node.linkUpSince = now;
    if (node.peer.status === 'dead' && node.rsc.takeoverDeferred) {
      log(o, 'info', `ping nodes answer again: taking over from dead ${node.peerName} in ${node.peer.dtMs} ms unless it is heard by then`);
    }
  }
  if (!p.up) log(o, 'info', `ping node ${target} is up again`);
  p.lastReply = now;
  p.up = true;
}

function pingUpCount(node: HaNode): number {
  let n = 0;
  for (const p of node.ping.values()) if (p.up) n++;
  return n;
}

function rscCtx(o: Out, requestId = 0): fsm.RscCtx {
  const { node } = o;
  return {
    now: o.now,
    me: node.cfg.me,
    peer: node.peerName,
    groups: node.cfg.groups,
    autoFailback: node.cfg.autoFailback,
    rqstDelayMs: node.cfg.rqstDelayMs,
    shutdownWaitMs: node.cfg.shutdownWaitMs,
    retryFailedMs: node.cfg.retryFailedMs,
    keepaliveMs: node.cfg.keepaliveMs,
    peerAlive: peerAlive(node.peer),
    canTakeOver: canTakeOver(node, o.now),
    send: (body) => send(o, body),
    log: (level, msg) => log(o, level, msg),
    act: (kind, opId, groups, reason) => o.actions.push({ kind, opId, groups, reason, decidedAt: node.wall }),
    announce: (groups, reason) => o.actions.push({ kind: 'announce', groups, reason }),
    reply: (ok, msg) => o.actions.push({ kind: 'reply', requestId, ok, msg }),
    exit: () => {
      node.stopped = true;
      o.actions.push({ kind: 'exit' });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Events

export function handle(node: HaNode, ev: HaEvent): HaAction[] {
  const o: Out = { node, now: ev.now, actions: [] };
  node.wall = ev.wall;
  if (node.stopped) return o.actions;
  switch (ev.kind) {
    case 'start':
      node.started = true;
      node.startedAt = ev.now;
      log(o, 'info', `${node.cfg.me}: generation ${node.cfg.generation}, peer ${node.peerName}, keepalive ${node.cfg.keepaliveMs} ms, deadtime ${node.cfg.deadtimeMs} ms, initdead ${node.cfg.initdeadMs} ms`);
      sendStatus(o);
      node.status = 'up';
      sendStatus(o);
      break;
    case 'packet':
      onPacket(o, ev.bytes, ev.from);
      break;
    case 'command':
      onCommand(o, ev.command, ev.which, ev.requestId);
      break;
    case 'opDone':
      for (const e of ev.errors) log(o, 'error', e);
      fsm.rscOpDone(node.rsc, rscCtx(o), ev.opId, ev.failed);
      break;
    case 'pingReply':
      onPingReply(o, ev.target);
      break;
    case 'resync':
      log(o, 'info', 're-announcing our status and resources (what we sent meanwhile was lost)');
      sendStatus(o);
      fsm.rscResync(node.rsc, rscCtx(o));
      break;
    case 'tick':
      break;
  }
  tick(o);
  return o.actions;
}

function onCommand(o: Out, command: 'standby' | 'takeover' | 'shutdown', which: string, requestId: number): void {
  const c = rscCtx(o, requestId);
  switch (command) {
    case 'shutdown':
      fsm.rscRequestShutdown(o.node.rsc, c);
      c.reply(true, 'shutting down: handing resources over');
      break;
    case 'standby':
      fsm.rscStandbyCommand(o.node.rsc, c, which);
      break;
    case 'takeover': {
      const rsc = which || 'all';
      if (!['all', 'local', 'foreign', 'failback'].includes(rsc)) {
        c.reply(false, `unknown resource set '${which}' (all, local, foreign or failback)`);
      } else if (!peerAlive(o.node.peer)) {
        c.reply(false, `takeover refused: ${o.node.peerName} is not up (a dead peer's resources are taken automatically)`);
      } else {
        send(o, { t: 'hb_takeover', rsc_hold: rsc });
        c.reply(true, `asked ${o.node.peerName} to hand over [${rsc}]`);
      }
      break;
    }
  }
}

/** Counts every drop; logs the first few per reason and sender, then a summary every DROP_SUMMARY_MS (droplog.ts). */
function drop(o: Out, reason: DropReason, from: string, detail?: string): void {
  o.node.counters.dropped[reason]++;
  if (!detail) return;
  const line = noteDrop(o.node.dropLog, o.now, reason, from, detail);
  if (line !== null) log(o, 'warn', line);
}

const AUTH_HINT: Record<string, string> = {
  'bad-digest': 'signed with another key',
  'unknown-key': 'signed with a key index our authkeys does not have',
  'no-auth': 'not signed',
};

function onPacket(o: Out, bytes: Uint8Array, from: string): void {
  const { node } = o;
  node.counters.received++;
  const packet = decodePacket(bytes);
  if (!packet.ok) return drop(o, 'malformed', from, `dropped malformed packet from ${from}: ${packet.error}`);
  const verdict = verifyPacket(packet, node.cfg.keys);
  if (verdict !== 'ok') {
    const claims = fieldValue(packet.fields, 'src')?.toLowerCase();
    if (claims === node.peerName) {
      const m = node.authMismatch;
      node.authMismatch = { address: from, reason: verdict, count: (m?.count ?? 0) + 1, at: o.now };
      return drop(o, 'badAuth', from, `dropped packet from ${from} (${node.peerName}): authentication failed (${verdict}, ${AUTH_HINT[verdict] ?? verdict}): the authkeys of ${node.cfg.me} and ${node.peerName} differ; make /etc/ha.d/authkeys the same on both nodes`);
    }
    return drop(o, 'badAuth', from, `dropped packet from ${from}${claims ? ` (claims to be '${claims}')` : ''}: authentication failed (${verdict})`);
  }
  const msg = parseMessage(packet.fields);
  if ('error' in msg) return drop(o, 'malformed', from, `dropped packet from ${from}: ${msg.error}`);
  const { env } = msg;
  if (env.src === node.cfg.me) {
    if (env.hg === node.cfg.generation) return drop(o, 'own', from);
    const first = !node.impostorGens.has(env.hg);
    node.impostorGens.add(env.hg);
    return drop(o, 'impostor', from, first ? `another node at ${from} sends as ${node.cfg.me} (generation ${env.hg}, ours ${node.cfg.generation}): check node names` : undefined);
  }
  if (env.src !== node.peerName) return drop(o, 'unknownNode', from, `dropped ${msg.body.t} from unknown node '${env.src}' at ${from}`);
  const peer = node.peer;
  const wasDead = peer.status === 'dead';
  const seqVerdict = checkSeq(peer.seq, env.hg, env.seq, o.now, () => rexmitDelay(node), wasDead);
  if (seqVerdict.kind === 'drop') {
    const why = seqVerdict.reason === 'staleGeneration'
      ? `dropped ${msg.body.t} from ${env.src}: old generation ${env.hg} < ${peer.seq.generation} (replay?)`
      : seqVerdict.reason === 'oldSeq'
        ? `dropped ${msg.body.t} from ${env.src}: seq ${env.seq} already seen (replay?)`
        : undefined;
    return drop(o, seqVerdict.reason, from, why);
  }
  node.counters.accepted++;
  if (seqVerdict.lost > 0) {
    node.counters.lost += seqVerdict.lost;
    const line = noteDrop(node.dropLog, o.now, 'lost', env.src, `${seqVerdict.lost} lost packet(s) for [${env.src}] [${env.seq! - seqVerdict.lost - 1}:${env.seq}]`);
    if (line !== null) log(o, 'warn', line);
  }
  if (env.seq !== null) {
    // Only new sequenced packets prove the peer alive: a replayed unsequenced NS_ packet must not.
    const interval = peer.heardAt === null ? 0 : o.now - peer.heardAt;
    if (msg.body.t === 'status' && peer.heardAt !== null && !wasDead && interval > node.cfg.warntimeMs) {
      log(o, 'warn', `Late heartbeat: Node ${env.src}: interval ${Math.round(interval)} ms`);
    }
    const firstContact = !peer.everHeard;
    peer.heardAt = o.now;
    peer.everHeard = true;
    if (peer.status === 'unknown') peer.status = 'init';
    if (seqVerdict.restarted) {
      log(o, 'info', `Heartbeat restart on node ${env.src}`);
      if (!wasDead) fsm.rscPeerRestarted(node.rsc, rscCtx(o));
    }
    if (wasDead) {
      peer.status = 'init';
      if (firstContact) log(o, 'info', `node ${env.src} is up (first heard after initdead)`);
      else if (seqVerdict.restarted) log(o, 'info', `node ${env.src} is back (restarted)`);
      else log(o, 'error', `Cluster node ${env.src} returning after partition.`);
      fsm.rscPeerBack(node.rsc, rscCtx(o));
    }
    if (env.dest === null || env.dest === node.cfg.me) {
      if (env.seq % 10 === peer.ackTrigger && node.flowControl) send(o, { t: 'NS_ackmsg', dest: env.src, ackseq: env.seq });
    }
  }
  if (env.dest !== null && env.dest !== node.cfg.me) return drop(o, 'notForUs', from);
  dispatch(o, msg);
}

function dispatch(o: Out, msg: Message): void {
  const { node } = o;
  const peer = node.peer;
  const body = msg.body;
  switch (body.t) {
    case 'status': {
      if (body.protocol === null && node.flowControl) {
        node.flowControl = false;
        log(o, 'warn', `flow control disabled due to different version heartbeat (${peer.name} sends no protocol)`);
      }
      peer.dtMs = body.dt ?? node.cfg.deadtimeMs;
      peer.pingUp = body.pingUp;
      if (body.st === 'dead') {
        if (peer.status !== 'dead') declareDead(o, 'it reports status dead');
        return;
      }
      if (body.st !== peer.status) log(o, 'info', `Status update for node ${peer.name}: status ${body.st}`);
      if (body.st === 'init' || body.st === 'up' || body.st === 'active') peer.status = body.st;
      return;
    }
    case 'reqnodes':
      send(o, { t: 'repnodes', dest: msg.env.src, nodelist: node.cfg.nodes, delnodelist: [] });
      return;
    case 'repnodes':
      if (!node.commUp) commUp(o, `${peer.name} answered reqnodes`);
      return;
    case 'NS_rexmit':
      for (const a of answerRexmit(node.history, body.firstseq, body.lastseq, o.now)) {
        if (a.kind === 'resend') {
          node.counters.resent++;
          o.actions.push({ kind: 'send', bytes: a.bytes, type: 'rexmit', seq: a.seq });
        } else {
          send(o, { t: 'NS_nak_rexmit', dest: msg.env.src, firstseq: a.seq, info: 'seqno not found' });
        }
      }
      return;
    case 'NS_nak_rexmit':
      if (peer.seq.missing.delete(body.firstseq)) log(o, 'warn', `Irretrievably lost packet: node ${peer.name} seq ${body.firstseq}`);
      return;
    case 'NS_ackmsg':
    case 'stonith':
    case 'ip-request-resp':
    case 'other':
      return;
    case 'shutdone':
      fsm.rscPeerShutdone(node.rsc, rscCtx(o));
      return;
    case 'ip-request':
      log(o, 'warn', `ignoring legacy ip-request from ${peer.name}: set auto_failback on or off on both nodes`);
      return;
  }
  if (!node.commUp) return;
  const c = rscCtx(o);
  switch (body.t) {
    case 'starting':
      fsm.rscPeerStarting(node.rsc, c);
      return;
    case 'resource':
      fsm.rscPeerResource(node.rsc, c, body);
      return;
    case 'ask_resources':
      fsm.rscAskResources(node.rsc, c, ['none', 'local', 'foreign', 'all'].indexOf(body.rsc_hold), body.info, false);
      return;
    case 'hb_takeover':
      fsm.rscPeerTakeover(node.rsc, c, body.rsc_hold);
      return;
  }
}

function rexmitDelay(node: HaNode): number {
  node.rng = (Math.imul(node.rng, 1103515245) + 12345) >>> 0;
  const span = Math.max(1, node.cfg.maxRexmitDelayMs - 50);
  return 50 + (node.rng % span);
}

function declareDead(o: Out, why: string): void {
  const { node } = o;
  const peer = node.peer;
  peer.status = 'dead';
  peer.seq.missing.clear();
  node.counters.deaths++;
  log(o, 'warn', `node ${peer.name}: is dead (${why})`);
  fsm.rscPeerDead(node.rsc, rscCtx(o), peer.everHeard);
}

function commUp(o: Out, why: string): void {
  const { node } = o;
  node.commUp = true;
  node.reqnodesAt = null;
  node.status = 'active';
  log(o, 'info', `Comm_now_up(): updating status to active (${why})`);
  sendStatus(o);
  fsm.rscCommUp(node.rsc, rscCtx(o));
}

function peerDeadline(node: HaNode): number {
  const p = node.peer;
  if (p.status === 'dead') return Infinity;
  if (p.heardAt === null) return node.startedAt + node.cfg.initdeadMs;
  return p.heardAt + p.dtMs;
}

function tick(o: Out): void {
  const { node, now } = o;
  if (node.stopped || !node.started) return;
  if (now >= node.nextStatusAt) sendStatus(o);
  if (now >= peerDeadline(node)) {
    const p = node.peer;
    declareDead(o, p.heardAt === null ? `not heard within initdead ${node.cfg.initdeadMs} ms` : `silent for ${Math.round(now - p.heardAt)} ms > ${p.dtMs} ms`);
  }
  if (!node.commUp && node.peer.status !== 'unknown') {
    if (node.peer.status === 'dead' || !node.flowControl) commUp(o, node.peer.status === 'dead' ? 'peer dead' : 'flow control off');
    else if (node.reqnodesAt === null || now >= node.reqnodesAt) {
      send(o, { t: 'reqnodes', dest: node.peerName });
      node.reqnodesAt = now + REQNODES_INTERVAL_MS;
    }
  }
  if (peerAlive(node.peer)) {
    let budget = 10;
    for (const [seq, at] of node.peer.seq.missing) {
      if (at > now || budget-- <= 0) continue;
      node.counters.rexmitRequested++;
      send(o, { t: 'NS_rexmit', dest: node.peerName, firstseq: seq, lastseq: seq });
      node.peer.seq.missing.set(seq, now + node.cfg.maxRexmitDelayMs);
    }
  }
  for (const [name, p] of node.ping) {
    const since = p.lastReply ?? node.startedAt;
    if (p.up && now - since >= node.cfg.deadpingMs) {
      p.up = false;
      log(o, 'warn', `ping node ${name} is dead (no reply for ${Math.round(now - since)} ms)`);
    }
  }
  for (const line of dropSummary(node.dropLog, now)) log(o, 'warn', line);
  const c = rscCtx(o);
  if (node.cfg.pingTargets.length > 0) {
    fsm.rscPingChanged(node.rsc, c, pingUpCount(node), peerAlive(node.peer) ? node.peer.pingUp : null, node.cfg.pingTargets.length);
  }
  fsm.rscTick(node.rsc, c);
  // Whichever way the takeover was deferred (the peer died while we were cut off, or just after the link came back),
  // it is retried the moment the link has worked for the peer's dead time, not at the next keepalive; so is a stable
  // report held back after a partition (linkWait).
  const linkOkAt = node.linkUpSince === null ? null : node.linkUpSince + node.peer.dtMs;
  const waiting = (node.rsc.takeoverDeferred && node.peer.status === 'dead') || node.rsc.linkWait;
  node.linkCheckAt = waiting && linkOkAt !== null && now < linkOkAt ? linkOkAt : null;
}

/** When the shell must call `tick` next (ms, same clock as events). */
export function nextDeadline(node: HaNode): number {
  if (node.stopped) return Infinity;
  let t = Math.min(node.nextStatusAt, peerDeadline(node), fsm.rscNextDeadline(node.rsc, node.cfg));
  if (!node.commUp && node.reqnodesAt !== null) t = Math.min(t, node.reqnodesAt);
  if (node.linkCheckAt !== null) t = Math.min(t, node.linkCheckAt);
  if (node.dropLog.summaryAt !== null) t = Math.min(t, node.dropLog.summaryAt);
  if (peerAlive(node.peer)) for (const at of node.peer.seq.missing.values()) t = Math.min(t, at);
  for (const p of node.ping.values()) if (p.up) t = Math.min(t, (p.lastReply ?? node.startedAt) + node.cfg.deadpingMs);
  return t;
}
