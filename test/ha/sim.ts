// A deterministic two-node cluster in memory: virtual clock, a wire that can drop or tap packets, and a shell that
// completes resource operations after a fixed delay. Drives the pure node exactly as cluster.ts does.
import type { AuthKey, ResourceGroup } from '../../src/config/model.ts';
import { createNode, handle, nextDeadline, type HaNode } from '../../src/ha/node.ts';
import { statusReport } from '../../src/ha/status.ts';
import type { EngineConfig, HaAction, HaEvent } from '../../src/ha/types.ts';

export const KEY: AuthKey = { index: 1, method: 'sha1', key: 'LabSecret42' };
export const VIP_GROUP: ResourceGroup = {
  node: 'lb1',
  key: 'IPaddr::198.18.0.99/24/eth0',
  resources: [{ kind: 'ip', agent: 'IPaddr', ip: '198.18.0.99', cidr: 24, iface: 'eth0', label: null, broadcast: null, raw: 'IPaddr::198.18.0.99/24/eth0' }],
  loc: { file: 'haresources', line: 1 },
};

export function engineConfig(me: string, over: Partial<EngineConfig> = {}): EngineConfig {
  return {
    me,
    nodes: ['lb1', 'lb2'],
    keepaliveMs: 100,
    deadtimeMs: 500,
    warntimeMs: 250,
    initdeadMs: 1000,
    deadpingMs: 500,
    autoFailback: 'on',
    authKey: KEY,
    keys: [KEY],
    innerAuth: true,
    groups: [VIP_GROUP],
    pingTargets: [],
    pingIntervalMs: 100,
    generation: me === 'lb1' ? 1000 : 2000,
    maxRexmitDelayMs: 250,
    rqstDelayMs: 10_000,
    shutdownWaitMs: 5000,
    retryFailedMs: 2000,
    seed: me === 'lb1' ? 7 : 11,
    ...over,
  };
}

export interface SimNode {
  name: string;
  node: HaNode;
  alive: boolean;
  /** Group keys the fake shell has "up" (the VIP, in effect). */
  up: Set<string>;
  /** Groups whose acquire fails (e.g. the proxy cannot listen on the VIP). */
  failAcquire: Set<string>;
  logs: Array<{ at: number; level: string; msg: string }>;
  sent: Array<{ at: number; type: string; bytes: Uint8Array }>;
  replies: Array<{ ok: boolean; msg: string }>;
  /** Every acquire/release the node started, when, and why. */
  ops: Array<{ at: number; kind: 'acquire' | 'release'; reason: string }>;
  /** Every gratuitous ARP re-announcement the node asked for. */
  announces: Array<{ at: number; groups: string[]; reason: string }>;
  exited: boolean;
  exitedAt: number | null;
}

type Pending = { at: number; seq: number; run: () => void };

export class Sim {
  now = 1_000_000;
  nodes = new Map<string, SimNode>();
  /** Return false to drop a packet between two nodes. */
  link: (from: string, to: string, bytes: Uint8Array) => boolean = () => true;
  /** Latency of the wire and of resource operations (ms). */
  wireMs = 1;
  opMs = 5;
  /** Per-node resource operation time, e.g. a real heartbeat's 1–1.7 s of resource scripts. */
  opMsOf = new Map<string, number>();
  pingTargets = new Map<string, boolean>();
  private queue: Pending[] = [];
  private seq = 0;
  private timers = new Map<string, Pending>();

  add(name: string, over: Partial<EngineConfig> = {}): SimNode {
    const n: SimNode = {
      name,
      node: createNode(engineConfig(name, over)),
      alive: true,
      up: new Set(),
      failAcquire: new Set(),
      logs: [],
      sent: [],
      replies: [],
      ops: [],
      announces: [],
      exited: false,
      exitedAt: null,
    };
    this.nodes.set(name, n);
    return n;
  }

  get(name: string): SimNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no sim node ${name}`);
    return n;
  }

  start(name: string, over: Partial<EngineConfig> = {}): SimNode {
    const prev = this.nodes.get(name);
    const gen = prev ? prev.node.cfg.generation + 1 : undefined;
    const n = this.add(name, gen === undefined ? over : { generation: gen, ...over });
    this.feed(n, { kind: 'start', now: this.now, wall: this.now });
    return n;
  }

  /** kill -9: the node stops sending and processing; its VIP is gone with it (as the lab's crash test does). */
  kill(name: string): void {
    const n = this.get(name);
    n.alive = false;
    n.up.clear();
    this.timers.delete(name);
  }

  command(name: string, command: 'standby' | 'takeover' | 'shutdown', which = ''): void {
    this.feed(this.get(name), { kind: 'command', command, which, requestId: 1, now: this.now, wall: this.now });
  }

  /** Deliver raw bytes to a node as if they came off the wire. */
  inject(name: string, bytes: Uint8Array): HaAction[] {
    return this.feed(this.get(name), { kind: 'packet', bytes, from: '198.18.0.250', now: this.now, wall: this.now });
  }

  feed(n: SimNode, ev: HaEvent): HaAction[] {
    if (!n.alive || n.exited) return [];
    const actions = handle(n.node, ev);
    for (const a of actions) this.perform(n, a);
    this.schedule(n);
    return actions;
  }

  private perform(n: SimNode, a: HaAction): void {
    switch (a.kind) {
      case 'send':
        n.sent.push({ at: this.now, type: a.type, bytes: a.bytes });
        for (const other of this.nodes.values()) {
          if (other === n || !this.link(n.name, other.name, a.bytes)) continue;
          const target = other;
          this.at(this.now + this.wireMs, () => {
            if (this.nodes.get(target.name) === target) {
              this.feed(target, { kind: 'packet', bytes: a.bytes, from: n.name, now: this.now, wall: this.now });
            }
          });
        }
        break;
      case 'acquire':
      case 'release':
        n.ops.push({ at: this.now, kind: a.kind, reason: a.reason });
        this.at(this.now + (this.opMsOf.get(n.name) ?? this.opMs), () => {
          if (!n.alive) return;
          const failed: string[] = [];
          for (const g of a.groups) {
            if (a.kind === 'acquire' && n.failAcquire.has(g.key)) failed.push(g.key);
            else if (a.kind === 'acquire') n.up.add(g.key);
            else n.up.delete(g.key);
          }
          this.feed(n, { kind: 'opDone', opId: a.opId, failed, errors: [], now: this.now, wall: this.now });
        });
        break;
      case 'announce':
        n.announces.push({ at: this.now, groups: a.groups.map((g) => g.key), reason: a.reason });
        break;
      case 'log':
        n.logs.push({ at: this.now, level: a.level, msg: a.msg });
        break;
      case 'reply':
        n.replies.push({ ok: a.ok, msg: a.msg });
        break;
      case 'exit':
        n.exited = true;
        n.exitedAt = this.now;
        break;
    }
  }

  private schedule(n: SimNode): void {
    const t = nextDeadline(n.node);
    if (!Number.isFinite(t)) return this.timers.delete(n.name) as unknown as void;
    // Already armed for that moment (a flood of injected packets must not grow the queue by one timer each).
    if (this.timers.get(n.name)?.at === Math.max(t, this.now)) return;
    const p: Pending = { at: Math.max(t, this.now), seq: this.seq++, run: () => {} };
    p.run = () => {
      if (this.timers.get(n.name) !== p) return;
      this.timers.delete(n.name);
      this.feed(n, { kind: 'tick', now: this.now, wall: this.now });
    };
    this.timers.set(n.name, p);
    this.queue.push(p);
  }

  at(at: number, fn: () => void): void {
    this.queue.push({ at, seq: this.seq++, run: fn });
  }

  /** Advance virtual time, running everything due, in order. */
  run(ms: number): void {
    const end = this.now + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      this.queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.queue[0];
      if (!next || next.at > end) break;
      this.queue.shift();
      this.now = Math.max(this.now, next.at);
      next.run();
    }
    this.now = end;
  }

  /** Run until cond() holds; returns the elapsed virtual ms, or throws after `limit`. */
  until(cond: () => boolean, limit: number, step = 1): number {
    const start = this.now;
    while (!cond()) {
      if (this.now - start > limit) throw new Error(`condition not met within ${limit} ms`);
      this.run(step);
    }
    return this.now - start;
  }

  holder(): string[] {
    return [...this.nodes.values()].filter((n) => n.alive && n.up.has(VIP_GROUP.key)).map((n) => n.name);
  }

  report(name: string): ReturnType<typeof statusReport> {
    return statusReport(this.get(name).node, this.now);
  }
}

export const PING_TARGET = '198.18.0.254';
export const WITH_PING = { pingTargets: [{ name: PING_TARGET, members: [PING_TARGET] }] };

/**
 * A ping node answering every 100 ms the nodes in `reach` that are set to true. `afterReplies` runs right after
 * each round of replies (to cut a link at the worst moment).
 */
/** lb1 and lb2 with one ping node both reach (flip `reach` to cut a side off), started; nothing run yet. */
export function pingPair(over: Partial<EngineConfig> = {}): { sim: Sim; reach: Map<string, boolean> } {
  const sim = new Sim();
  sim.start('lb1', { ...WITH_PING, ...over });
  sim.start('lb2', { ...WITH_PING, ...over });
  const reach = new Map([['lb1', true], ['lb2', true]]);
  pingNode(sim, reach);
  return { sim, reach };
}

export function pingNode(sim: Sim, reach: Map<string, boolean>, afterReplies: () => void = () => undefined): void {
  const round = (): void => {
    for (const [name, ok] of reach) if (ok) sim.feed(sim.get(name), { kind: 'pingReply', target: PING_TARGET, now: sim.now, wall: sim.now });
    afterReplies();
    sim.at(sim.now + 100, round);
  };
  round();
}
