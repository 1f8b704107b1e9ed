// Forged, replayed, truncated and misaddressed packets are dropped and counted, never acted on; lost packets are
// recovered with byte-identical retransmissions.
import { describe, test, expect } from 'bun:test';
import { Buffer } from 'node:buffer';
import { Sim, KEY } from './sim.ts';
import { decodePacket, encodePacket } from '../../src/ha/wire.ts';
import { messageFields, parseMessage, type Body, type Message } from '../../src/ha/messages.ts';

function settled(): Sim {
  const sim = new Sim();
  sim.start('lb1');
  sim.start('lb2');
  sim.until(() => sim.holder().join() === 'lb1' && sim.report('lb2').resources.stable, 3000);
  sim.run(300);
  return sim;
}

function forge(body: Body, src: string, seq: number | null, hg: number, key = KEY): Uint8Array {
  return encodePacket(messageFields(body, { src, seq, hg, ts: 0x6b000000, ld: null, ttl: 3 }), key, { innerAuth: true });
}

/** Decodes and parses bytes we produced ourselves; anything else is a test bug. */
function msgOf(bytes: Uint8Array): Message {
  const p = decodePacket(bytes);
  if (!p.ok) throw new Error(p.error);
  const m = parseMessage(p.fields);
  if ('error' in m) throw new Error(m.error);
  return m;
}

const SHUTDONE: Body = { t: 'shutdone', st: 'dead' };
const DEAD: Body = { t: 'status', st: 'dead', dt: 500, protocol: '1', pingUp: null };

describe('forged packets', () => {
  test('a shutdone or dead status signed with the wrong key is dropped as badAuth and changes nothing', () => {
    const sim = settled();
    const gen = sim.get('lb1').node.cfg.generation;
    const wrongKey = { ...KEY, key: 'guess' };
    sim.inject('lb2', forge(SHUTDONE, 'lb1', 100_000, gen, wrongKey));
    sim.inject('lb2', forge(DEAD, 'lb1', 100_001, gen, wrongKey));
    sim.inject('lb2', forge(SHUTDONE, 'lb1', 100_002, gen, { index: 1, method: 'md5', key: 'LabSecret42' }));
    sim.run(2000);
    expect(sim.report('lb2').counters.dropped.badAuth).toBe(3);
    expect(sim.holder()).toEqual(['lb1']);
    expect(sim.report('lb2').counters.deaths).toBe(0);
  });

  test('a flipped bit in a genuine packet is dropped', () => {
    const sim = settled();
    const genuine = sim.get('lb1').sent.at(-1)!.bytes;
    const forged = Uint8Array.from(genuine);
    forged[20] = forged[20]! ^ 0x20;
    sim.inject('lb2', forged);
    expect(sim.report('lb2').counters.dropped.badAuth + sim.report('lb2').counters.dropped.malformed).toBe(1);
  });

  test('a correctly signed packet from a node not in ha.cf is dropped as unknownNode', () => {
    const sim = settled();
    sim.inject('lb2', forge(SHUTDONE, 'lb3', 1, 1));
    expect(sim.report('lb2').counters.dropped.unknownNode).toBe(1);
    expect(sim.holder()).toEqual(['lb1']);
  });

  test('a packet under our own name from another generation is flagged as an impostor', () => {
    const sim = settled();
    const actions = sim.inject('lb2', forge(SHUTDONE, 'lb2', 5, 42));
    expect(sim.report('lb2').counters.dropped.impostor).toBe(1);
    expect(actions.some((a) => a.kind === 'log' && a.msg.startsWith('another node at 198.18.0.250 sends as lb2'))).toBe(true);
  });
});

describe('truncated packets', () => {
  test('every truncation of a real packet is dropped as malformed', () => {
    const sim = settled();
    const genuine = sim.get('lb1').sent.find((s) => s.type === 'status')!.bytes;
    for (let n = 0; n < genuine.length; n++) sim.inject('lb2', genuine.subarray(0, n));
    expect(sim.report('lb2').counters.dropped.malformed).toBe(genuine.length);
    expect(sim.holder()).toEqual(['lb1']);
  });
});

describe('replayed packets', () => {
  test('replaying the dead holder’s old heartbeats does not keep it alive: failover still happens at deadtime', () => {
    const sim = settled();
    const old = sim.get('lb1').sent.filter((s) => s.type === 'status' || s.type === 'NS_ackmsg').map((s) => s.bytes);
    sim.kill('lb1');
    let i = 0;
    const replay = (): void => {
      sim.inject('lb2', old[i++ % old.length]!);
      sim.at(sim.now + 20, replay);
    };
    replay();
    const t = sim.until(() => sim.holder().join() === 'lb2', 2000);
    expect(t).toBeLessThanOrEqual(520);
    const dropped = sim.report('lb2').counters.dropped;
    expect(dropped.oldSeq + dropped.duplicate).toBeGreaterThan(10);
  });

  test('a shutdone from a previous generation is dropped as staleGeneration', () => {
    const sim = settled();
    sim.command('lb1', 'shutdown');
    sim.until(() => sim.holder().join() === 'lb2', 1000);
    const oldShutdone = sim.get('lb1').sent.find((s) => s.type === 'shutdone')!.bytes;
    sim.start('lb1');
    sim.until(() => sim.holder().join() === 'lb1', 3000);
    sim.inject('lb2', oldShutdone);
    sim.run(1000);
    expect(sim.report('lb2').counters.dropped.staleGeneration).toBe(1);
    expect(sim.holder()).toEqual(['lb1']);
  });

  test('a replayed in-generation packet is dropped as oldSeq', () => {
    const sim = settled();
    const first = sim.get('lb1').sent.find((s) => s.type === 'starting')!.bytes;
    sim.inject('lb2', first);
    expect(sim.report('lb2').counters.dropped.oldSeq).toBe(1);
  });
});

describe('retransmission', () => {
  test('a lost packet is requested with NS_rexmit (decimal seq) and re-sent byte for byte', () => {
    const sim = settled();
    let dropSeq: number | null = null;
    sim.link = (from, _to, bytes) => {
      const p = decodePacket(bytes);
      if (!p.ok || from !== 'lb1') return true;
      const m = parseMessage(p.fields);
      if ('error' in m || m.env.seq === null) return true;
      if (dropSeq === null && m.body.t === 'status') dropSeq = m.env.seq;
      return m.env.seq !== dropSeq || sim.get('lb1').sent.filter((s) => s.type === 'rexmit').length > 0;
    };
    sim.run(1000);
    expect(dropSeq).not.toBeNull();
    const lb2Req = sim.get('lb2').sent.find((s) => s.type === 'NS_rexmit')!;
    expect(msgOf(lb2Req.bytes).body).toEqual({ t: 'NS_rexmit', dest: 'lb1', firstseq: dropSeq!, lastseq: dropSeq! });
    const original = sim.get('lb1').sent.find((s) => {
      return s.type === 'status' && msgOf(s.bytes).env.seq === dropSeq;
    })!;
    const resent = sim.get('lb1').sent.find((s) => s.type === 'rexmit')!;
    expect(Buffer.from(resent.bytes).equals(Buffer.from(original.bytes))).toBe(true);
    expect(sim.report('lb2').counters.lost).toBe(1);
    expect(sim.get('lb2').node.peer.seq.missing.size).toBe(0);
  });

  test('a request for a packet no longer kept is answered with NS_nak_rexmit (hex seq)', () => {
    const sim = settled();
    const gen = sim.get('lb2').node.cfg.generation;
    const actions = sim.inject('lb1', forge({ t: 'NS_rexmit', dest: 'lb1', firstseq: 99999, lastseq: 99999 }, 'lb2', null, gen));
    const sent = actions.flatMap((a) => (a.kind === 'send' ? [a] : []));
    expect(sent.map((a) => a.type)).toEqual(['NS_nak_rexmit']);
    expect(msgOf(sent[0]!.bytes).body).toEqual({ t: 'NS_nak_rexmit', dest: 'lb2', firstseq: 99999, info: 'seqno not found' });
    expect(Buffer.from(sent[0]!.bytes).toString('latin1')).toContain('firstseq=1869f');
  });

  test('packets addressed to another node still advance seq tracking but are not acted on', () => {
    const sim = settled();
    const gen = sim.get('lb1').node.cfg.generation;
    const last = sim.get('lb2').node.peer.seq.lastSeq!;
    sim.inject('lb2', forge({ t: 'reqnodes', dest: 'lb9' }, 'lb1', last + 1, gen));
    expect(sim.report('lb2').counters.dropped.notForUs).toBe(1);
    expect(sim.get('lb2').node.peer.seq.lastSeq).toBe(last + 1);
  });
});
