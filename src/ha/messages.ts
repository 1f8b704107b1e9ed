// Heartbeat message types as typed records, and their field lists in the order heartbeat writes them.
// Numbers are hex on the wire except NS_rexmit's firstseq/lastseq, which are decimal (heartbeat.md 5.2, 5.5).
import type { WireField } from './wire.ts';

export type RscHold = 'none' | 'local' | 'foreign' | 'all';
export const RSC_HOLDS: readonly RscHold[] = ['none', 'local', 'foreign', 'all'];

/** Resource bits as heartbeat encodes them: bit 1 = local, bit 2 = foreign. */
export const rscBits = (h: RscHold): number => RSC_HOLDS.indexOf(h);
export const rscFromBits = (bits: number): RscHold => RSC_HOLDS[bits & 3]!;

export type Body =
  | { t: 'status'; st: string; dt: number | null; protocol: string | null; pingUp: number | null }
  | { t: 'reqnodes'; dest: string }
  | { t: 'repnodes'; dest: string; nodelist: string[]; delnodelist: string[] }
  | { t: 'starting' }
  | { t: 'resource'; rsc_hold: RscHold; full: boolean; isstable: boolean | null; info: string | null }
  | { t: 'ask_resources'; rsc_hold: RscHold; info: string }
  | { t: 'shutdone'; st: string }
  | { t: 'hb_takeover'; rsc_hold: string }
  | { t: 'stonith'; node: string; result: string }
  | { t: 'ip-request'; ipaddr: string }
  | { t: 'ip-request-resp'; dest: string; ipaddr: string; weown: string; ok: string }
  | { t: 'NS_ackmsg'; dest: string; ackseq: number }
  | { t: 'NS_rexmit'; dest: string; firstseq: number; lastseq: number }
  | { t: 'NS_nak_rexmit'; dest: string; firstseq: number; info: string }
  | { t: 'other'; type: string };

/** The fields heartbeat appends to every message (add_control_msg_fields). */
export interface Envelope {
  src: string;
  dest: string | null;
  /** Absent on NS_ types. */
  seq: number | null;
  /** A missing hg counts as generation 0, as in heartbeat. */
  hg: number;
  ts: number;
}

export interface Message {
  env: Envelope;
  body: Body;
}

const HEX = /^[0-9a-f]{1,16}$/i;
const DEC = /^[0-9]{1,16}$/;

function hex(v: string | undefined): number | null {
  return v !== undefined && HEX.test(v) ? parseInt(v, 16) : null;
}

function str(fields: readonly WireField[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of fields) if (f.type === 0 && !m.has(f.name)) m.set(f.name, f.value);
  return m;
}

const hold = (v: string | undefined): RscHold | null => (RSC_HOLDS.includes(v as RscHold) ? (v as RscHold) : null);

/** Turns decoded fields into a typed message, or a reason why it is malformed. */
export function parseMessage(fields: readonly WireField[]): Message | { error: string } {
  const f = str(fields);
  const t = f.get('t');
  const src = f.get('src');
  if (!t) return { error: 'message without t' };
  if (!src) return { error: `${t} message without src` };
  const seqText = f.get('seq');
  const seq = seqText === undefined ? null : hex(seqText);
  if (seqText !== undefined && seq === null) return { error: `${t} from ${src}: bad seq ${JSON.stringify(seqText)}` };
  if (seq === null && !t.startsWith('NS_')) return { error: `${t} from ${src} without seq` };
  const env: Envelope = {
    src: src.toLowerCase(),
    dest: f.get('dest')?.toLowerCase() ?? null,
    seq,
    hg: hex(f.get('hg')) ?? 0,
    ts: hex(f.get('ts')) ?? 0,
  };
  const need = (name: string): string | { error: string } => f.get(name) ?? { error: `${t} from ${src} without ${name}` };
  const dest = env.dest ?? '';
  let body: Body;
  switch (t) {
    case 'status': {
      const st = need('st');
      if (typeof st !== 'string') return st;
      const pingText = f.get('tsbal_ping');
      body = {
        t,
        st,
        dt: hex(f.get('dt')),
        protocol: f.get('protocol') ?? null,
        pingUp: pingText !== undefined && DEC.test(pingText) ? Number(pingText) : null,
      };
      break;
    }
    case 'reqnodes':
      body = { t, dest };
      break;
    case 'repnodes': {
      const list = need('nodelist');
      if (typeof list !== 'string') return list;
      const split = (s: string): string[] => s.split(' ').filter(Boolean).map((n) => n.toLowerCase());
      body = { t, dest, nodelist: split(list), delnodelist: split(f.get('delnodelist') ?? '') };
      break;
    }
    case 'starting':
      body = { t };
      break;
    case 'resource': {
      const h = hold(f.get('rsc_hold'));
      if (!h) return { error: `resource from ${src}: bad rsc_hold ${JSON.stringify(f.get('rsc_hold'))}` };
      const stable = f.get('isstable');
      body = {
        t,
        rsc_hold: h,
        full: f.get('rtype') === 'full',
        isstable: stable === undefined ? null : stable === '1',
        info: f.get('info') ?? null,
      };
      break;
    }
    case 'ask_resources': {
      const info = need('info');
      if (typeof info !== 'string') return info;
      // A missing rsc_hold means all (ask_for_resources).
      body = { t, rsc_hold: hold(f.get('rsc_hold')) ?? 'all', info };
      break;
    }
    case 'shutdone':
      body = { t, st: f.get('st') ?? 'dead' };
      break;
    case 'hb_takeover':
      body = { t, rsc_hold: f.get('rsc_hold') ?? 'all' };
      break;
    case 'stonith':
      body = { t, node: (f.get('node') ?? '').toLowerCase(), result: f.get('result') ?? '' };
      break;
    case 'ip-request':
      body = { t, ipaddr: f.get('ipaddr') ?? '' };
      break;
    case 'ip-request-resp':
      body = { t, dest, ipaddr: f.get('ipaddr') ?? '', weown: f.get('weown') ?? '', ok: f.get('ok') ?? '' };
      break;
    case 'NS_ackmsg': {
      const ackseq = hex(f.get('ackseq'));
      if (ackseq === null) return { error: `NS_ackmsg from ${src} without a hex ackseq` };
      body = { t, dest, ackseq };
      break;
    }
    case 'NS_rexmit': {
      const first = f.get('firstseq');
      const last = f.get('lastseq');
      if (!first || !last || !DEC.test(first) || !DEC.test(last)) {
        return { error: `NS_rexmit from ${src} without decimal firstseq/lastseq` };
      }
      body = { t, dest, firstseq: Number(first), lastseq: Number(last) };
      break;
    }
    case 'NS_nak_rexmit': {
      const first = hex(f.get('firstseq'));
      if (first === null) return { error: `NS_nak_rexmit from ${src} without a hex firstseq` };
      body = { t, dest, firstseq: first, info: f.get('info') ?? '' };
      break;
    }
    default:
      body = { t: 'other', type: t };
  }
  return { env, body };
}

const h = (n: number): string => n.toString(16);

/** The type-specific fields of a body, in heartbeat's order. */
export function bodyFields(body: Body): Array<[string, string]> {
  switch (body.t) {
    case 'status': {
      const out: Array<[string, string]> = [['t', 'status'], ['st', body.st]];
      if (body.dt !== null) out.push(['dt', h(body.dt)]);
      if (body.protocol !== null) out.push(['protocol', body.protocol]);
      // tsbal addition: how many ping nodes/groups this node reaches (heartbeat ignores unknown fields).
      if (body.pingUp !== null) out.push(['tsbal_ping', String(body.pingUp)]);
      return out;
    }
    case 'reqnodes':
      return [['t', 'reqnodes'], ['dest', body.dest]];
    case 'repnodes':
      return [
        ['dest', body.dest],
        ['t', 'repnodes'],
        ['nodelist', body.nodelist.map((n) => `${n} `).join('')],
        ['delnodelist', body.delnodelist.length ? body.delnodelist.map((n) => `${n} `).join('') : ' '],
      ];
    case 'starting':
      return [['t', 'starting']];
    case 'resource': {
      const out: Array<[string, string]> = [['t', 'resource'], ['rsc_hold', body.rsc_hold]];
      if (body.full) out.push(['rtype', 'full']);
      if (body.isstable !== null) out.push(['isstable', body.isstable ? '1' : '0']);
      if (body.info !== null) out.push(['info', body.info]);
      return out;
    }
    case 'ask_resources':
      return [['t', 'ask_resources'], ['rsc_hold', body.rsc_hold], ['info', body.info]];
    case 'shutdone':
      return [['t', 'shutdone'], ['st', body.st]];
    case 'hb_takeover':
      return [['t', 'hb_takeover'], ['rsc_hold', body.rsc_hold]];
    case 'stonith':
      return [['t', 'stonith'], ['node', body.node], ['result', body.result]];
    case 'ip-request':
      return [['t', 'ip-request'], ['ipaddr', body.ipaddr]];
    case 'ip-request-resp':
      return [['t', 'ip-request-resp'], ['dest', body.dest], ['ipaddr', body.ipaddr], ['weown', body.weown], ['ok', body.ok]];
    case 'NS_ackmsg':
      return [['t', 'NS_ackmsg'], ['dest', body.dest], ['ackseq', h(body.ackseq)]];
    case 'NS_rexmit':
      return [['t', 'NS_rexmit'], ['dest', body.dest], ['firstseq', String(body.firstseq)], ['lastseq', String(body.lastseq)]];
    case 'NS_nak_rexmit':
      return [['t', 'NS_nak_rexmit'], ['firstseq', h(body.firstseq)], ['dest', body.dest], ['info', body.info]];
    case 'other':
      return [['t', body.type]];
  }
}

export const isUnsequenced = (body: Body): boolean => body.t.startsWith('NS_');

export interface ControlFields {
  src: string;
  seq: number | null;
  hg: number;
  /** Seconds since the epoch (heartbeat's time(NULL)). */
  ts: number;
  /** First line of /proc/loadavg; omitted on NS_ messages, like heartbeat. */
  ld: string | null;
  /** hopfudge (1) + node count. */
  ttl: number;
}

/** Body fields then heartbeat's control fields, ready for encodePacket (which adds the inner auth). */
export function messageFields(body: Body, ctl: ControlFields): WireField[] {
  const out: WireField[] = bodyFields(body).map(([name, value]) => ({ type: 0, name, value }));
  const add = (name: string, value: string): void => void out.push({ type: 0, name, value });
  add('src', ctl.src);
  if (ctl.seq !== null) add('seq', h(ctl.seq));
  add('hg', h(ctl.hg));
  add('ts', h(ctl.ts));
  if (ctl.ld !== null && !isUnsequenced(body)) add('ld', ctl.ld);
  add('ttl', String(ctl.ttl));
  return out;
}
