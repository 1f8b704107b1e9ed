// The typed message layer rebuilds every captured heartbeat message with the same fields in the same order.
import { describe, test, expect } from 'bun:test';
import { readdirSync } from 'node:fs';
import { decodePacket, fieldValue, type WireField } from '../../src/ha/wire.ts';
import { messageFields, parseMessage } from '../../src/ha/messages.ts';
import { readUdp } from './pcapng.ts';

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;
const captures = readdirSync(FIXTURES).filter((f) => f.endsWith('.pcapng'));

const comparable = (fields: readonly WireField[]): Array<[string, string]> =>
  fields.filter((f) => f.type === 0 && f.name !== 'auth').map((f) => [f.name, (f as { value: string }).value]);

describe('typed messages against the captures', () => {
  test('every captured message parses and rebuilds to the same field list (uuids aside)', () => {
    const types = new Set<string>();
    let count = 0;
    for (const file of captures) {
      for (const frame of readUdp(FIXTURES + file)) {
        if (frame.dstPort !== 694 || frame.dst === '198.18.0.1') continue;
        const packet = decodePacket(frame.payload);
        if (!packet.ok) throw new Error(`${file} #${frame.frame}: ${packet.error}`);
        const msg = parseMessage(packet.fields);
        if ('error' in msg) throw new Error(`${file} #${frame.frame}: ${msg.error}`);
        types.add(msg.body.t === 'other' ? `other:${msg.body.type}` : msg.body.t);
        const ttl = fieldValue(packet.fields, 'ttl');
        const rebuilt = messageFields(msg.body, {
          src: msg.env.src,
          seq: msg.env.seq,
          hg: msg.env.hg,
          ts: msg.env.ts,
          ld: fieldValue(packet.fields, 'ld') ?? null,
          ttl: ttl === undefined ? 3 : Number(ttl),
        });
        const expected = comparable(packet.fields).filter(([n]) => ttl !== undefined || n !== 'ttl');
        const got = comparable(rebuilt).filter(([n]) => ttl !== undefined || n !== 'ttl');
        expect({ where: `${file} #${frame.frame}`, fields: got }).toEqual({ where: `${file} #${frame.frame}`, fields: expected });
        count++;
      }
    }
    expect(count).toBeGreaterThan(500);
    // Everything a 2-node haresources cluster sends appears in the captures.
    for (const t of ['status', 'reqnodes', 'repnodes', 'starting', 'resource', 'ask_resources', 'shutdone', 'stonith',
      'ip-request-resp', 'NS_ackmsg', 'NS_rexmit']) {
      expect({ t, seen: types.has(t) }).toEqual({ t, seen: true });
    }
  });

  test('NS_rexmit sequence numbers are decimal while everything else is hex', () => {
    const frame = readUdp(FIXTURES + 'cap_rexmit.pcapng').find((f) => f.frame === 111)!;
    const p = decodePacket(frame.payload);
    if (!p.ok) throw new Error(p.error);
    const msg = parseMessage(p.fields);
    expect('body' in msg && msg.body).toEqual({ t: 'NS_rexmit', dest: 'node1', firstseq: 45, lastseq: 45 });
    expect('env' in msg && msg.env.hg).toBe(0x6b073a36);
  });

  test('malformed messages are reported, not guessed', () => {
    const f = (pairs: Array<[string, string]>): WireField[] => pairs.map(([name, value]) => ({ type: 0, name, value }));
    expect(parseMessage(f([['src', 'a'], ['seq', '1']]))).toEqual({ error: 'message without t' });
    expect(parseMessage(f([['t', 'status'], ['seq', '1']]))).toEqual({ error: 'status message without src' });
    expect(parseMessage(f([['t', 'status'], ['src', 'a']]))).toEqual({ error: 'status from a without seq' });
    expect(parseMessage(f([['t', 'status'], ['src', 'a'], ['seq', 'zz']]))).toEqual({ error: 'status from a: bad seq "zz"' });
    expect(parseMessage(f([['t', 'resource'], ['rsc_hold', 'most'], ['src', 'a'], ['seq', '1']]))).toEqual({
      error: 'resource from a: bad rsc_hold "most"',
    });
    expect(parseMessage(f([['t', 'NS_rexmit'], ['firstseq', '1a'], ['lastseq', '1a'], ['src', 'a']]))).toEqual({
      error: 'NS_rexmit from a without decimal firstseq/lastseq',
    });
  });
});
