// tsbal's HTTP/2 server connection (connection.ts, output.ts, stream-socket.ts) against what a hostile or broken
// client sends, as h2spec and the published HTTP/2 attacks do: pure, no sockets. Each test pins the RFC 9113 answer
// (the error code, RST_STREAM or GOAWAY) or the bound that keeps the server's memory and windows finite.
import { describe, expect, test } from 'bun:test';
import {
  CLIENT_PREFACE, feedConnection, goAway, newConnection, startConnection, takeOutput, type H2Connection, type H2Handler, type H2Stream,
} from '../../../src/proxy/h2/connection.ts';
import { flushData, respond, sendData } from '../../../src/proxy/h2/output.ts';
import { StreamSocket } from '../../../src/proxy/h2/stream-socket.ts';
import { requestHeadFromList } from '../../../src/proxy/h2/translate.ts';
import { ErrorCode as ERR, FrameFlag as FLAG, FrameType as FRAME, SettingId as SETTING } from '../../../src/proxy/h2/frame-writer.ts';
import { block, frame, type Frame, GET, goawayCode, headers, parseFrames, POST, rst, settings, u32 } from './wire-kit.ts';

interface Recorder {
  conn: H2Connection;
  events: string[];
  streams: Map<number, H2Stream>;
  feed(...bufs: Buffer[]): Frame[];
  out(): Frame[];
}

function opened(clientSettings: number[] = [], opts: { onRequest?: (conn: H2Connection, st: H2Stream) => void } = {}): Recorder {
  const events: string[] = [];
  const streams = new Map<number, H2Stream>();
  const handler: H2Handler = {
    request: (c, st, fields) => {
      streams.set(st.id, st);
      const cl = fields === null ? -1 : fields.indexOf('content-length');
      if (cl !== -1 && cl % 2 === 0) st.bodyLeft = Number(fields![cl + 1]);
      events.push(`request ${st.id}`);
      opts.onRequest?.(c, st);
    },
    data: (_c, st, _b, s, e, end) => events.push(`data ${st.id} ${e - s}${end ? ' end' : ''}`),
    trailers: (_c, st, fields) => events.push(`trailers ${st.id} ${fields.join(',')}`),
    closed: (_c, st, code, byPeer) => events.push(`closed ${st.id} ${code}${byPeer ? ' by peer' : ''}`),
    drain: (_c, st) => events.push(`drain ${st.id}`),
    wantFlush: () => {},
  };
  const conn = newConnection({ maxConcurrentStreams: 100, maxHeaderListSize: 8192, streamWindow: 1 << 20, connectionWindow: 16 << 20 }, handler);
  startConnection(conn);
  const r: Recorder = {
    conn, events, streams,
    feed: (...bufs) => {
      for (const b of bufs) feedConnection(conn, b);
      return r.out();
    },
    out: () => {
      flushData(conn);
      return parseFrames(takeOutput(conn));
    },
  };
  r.feed(CLIENT_PREFACE, settings(clientSettings), frame(FRAME.SETTINGS, FLAG.ACK, 0));
  return r;
}

describe('flow control windows the client drives negative (RFC 9113 6.9.2)', () => {
  test('a response whose end waits while SETTINGS_INITIAL_WINDOW_SIZE made the stream window negative ends with an empty END_STREAM DATA, no throw', () => {
    const r = opened([SETTING.INITIAL_WINDOW_SIZE, 100]);
    r.feed(headers(1, GET()));
    const st = r.streams.get(1)!;
    respond(r.conn, st, [':status', '200'], false);
    sendData(r.conn, st, Buffer.from('hello'), false); // 5 of the 100 bytes: the stream window is now 95
    r.out();
    // The client lowers the initial window: 95 + (0 - 100) = -5 (6.9.2 allows a negative window).
    r.feed(settings([SETTING.INITIAL_WINDOW_SIZE, 0]));
    expect(st.sendWindow).toBe(-5);
    // The backend's body ends now: a zero-length END_STREAM needs no window (6.9.1 counts DATA payload only).
    sendData(r.conn, st, Buffer.alloc(0), true);
    const out = r.out();
    const data = out.filter((f) => f.type === FRAME.DATA && f.stream === 1);
    expect(data.map((f) => [f.payload.length, f.flags & FLAG.END_STREAM])).toEqual([[0, FLAG.END_STREAM]]);
    expect(st.state).toBe('closed');
    expect(st.pendingBytes).toBe(0);
  });

  test('pending bytes of a stream with a negative window wait for WINDOW_UPDATE to make it positive, then go out with END_STREAM', () => {
    const r = opened([SETTING.INITIAL_WINDOW_SIZE, 10]);
    r.feed(headers(1, GET()));
    const st = r.streams.get(1)!;
    respond(r.conn, st, [':status', '200'], false);
    sendData(r.conn, st, Buffer.alloc(10, 0x61), false);
    r.feed(settings([SETTING.INITIAL_WINDOW_SIZE, 0])); // window -10
    sendData(r.conn, st, Buffer.alloc(4, 0x62), true);
    expect(r.out().filter((f) => f.type === FRAME.DATA)).toEqual([]);
    expect(r.feed(frame(FRAME.WINDOW_UPDATE, 0, 1, u32(10))).filter((f) => f.type === FRAME.DATA)).toEqual([]); // window 0
    const out = r.feed(frame(FRAME.WINDOW_UPDATE, 0, 1, u32(4))).filter((f) => f.type === FRAME.DATA);
    expect(out.map((f) => [f.payload.toString(), f.flags & FLAG.END_STREAM])).toEqual([['bbbb', FLAG.END_STREAM]]);
  });
});

describe('header blocks that never end (CONTINUATION flood, CVE-2024-27316 class)', () => {
  test('empty CONTINUATION frames without END_HEADERS are bounded in number: GOAWAY ENHANCE_YOUR_CALM, the block is dropped', () => {
    const r = opened();
    const first = frame(FRAME.HEADERS, FLAG.END_STREAM, 1, block(GET()).subarray(0, 4));
    const empty = frame(FRAME.CONTINUATION, 0, 1);
    // 100 000 frames are 900 kB on the wire: a client sends that in milliseconds. Before the fix each one held a
    // Buffer in the pending block and the connection never objected.
    let out = r.feed(first);
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => empty));
    for (let i = 0; i < 100 && goawayCode(out) === null; i++) out = r.feed(batch);
    expect(goawayCode(out)).toBe(ERR.ENHANCE_YOUR_CALM);
    expect(r.conn.error).toBe(ERR.ENHANCE_YOUR_CALM);
    expect(r.events).toEqual([]);
  });

  test('a header block split over a few dozen CONTINUATION frames is still taken', () => {
    const r = opened();
    const b = block(GET('/split'));
    const parts: Buffer[] = [frame(FRAME.HEADERS, FLAG.END_STREAM, 1, b.subarray(0, 1))];
    for (let at = 1; at < b.length; at++) parts.push(frame(FRAME.CONTINUATION, at === b.length - 1 ? FLAG.END_HEADERS : 0, 1, b.subarray(at, at + 1)));
    expect(parts.length).toBeGreaterThan(30);
    r.feed(...parts);
    expect(r.events).toEqual(['request 1']);
  });
});

describe('connection window credit of request bodies nobody read', () => {
  test('a stream closed while its virtual connection was paused gives its unread body bytes back to the connection window', () => {
    let virtual: StreamSocket | null = null;
    const r = opened([], {
      onRequest: (c, st) => {
        virtual = new StreamSocket(c, st, 'POST', {});
        st.user = virtual;
        virtual.pause(); // the backend is slow: the client code stopped reading
      },
    });
    // The handler above is not the glue's: feed the body into the virtual connection as session.ts does.
    r.conn.handler.data = (_c, st, buf, s, e) => (st.user as StreamSocket).feed(Buffer.from(buf.subarray(s, e)), e - s);
    r.conn.handler.closed = (_c, st) => (st.user as StreamSocket).destroy();
    const size = 200_000;
    r.feed(headers(1, POST(size), FLAG.END_HEADERS));
    for (let at = 0; at < size; at += 16_384) r.feed(frame(FRAME.DATA, 0, 1, Buffer.alloc(Math.min(16_384, size - at))));
    const before = r.conn.recvWindow + r.conn.recvUnacked;
    expect(before).toBe((16 << 20) - size);
    // The client gives up on the upload (or the exchange broke off): the stream is over, its body never read.
    r.feed(frame(FRAME.RST_STREAM, 0, 1, u32(ERR.CANCEL)));
    expect(virtual!.destroyed).toBe(true);
    // Without the credit, every such stream shrinks the client's connection window for good: after 16 MiB worth,
    // no stream on this connection can send a body byte again (a hang for a browser uploading through it).
    expect(r.conn.recvWindow + r.conn.recvUnacked).toBe(16 << 20);
  });
});

/** HPACK size update to `n` (RFC 7541 6.3), n < 2^21. */
function sizeUpdate(n: number): Buffer {
  if (n < 31) return Buffer.from([0x20 | n]);
  const bytes = [0x3f];
  let rest = n - 31;
  while (rest >= 128) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}
const priority = (dependsOn: number) => Buffer.concat([u32(dependsOn), Buffer.from([15])]);

/** What h2spec checks, as pure cases: [name, frames after the SETTINGS exchange, the answer RFC 9113 asks for]. */
type Expect = { goaway: number } | { rst: [number, number] };
const CASES: Array<[string, () => Buffer[], Expect]> = [
  ['DATA on stream 0 (6.1)', () => [frame(FRAME.DATA, 0, 0, Buffer.from('x'))], { goaway: ERR.PROTOCOL_ERROR }],
  ['HEADERS on stream 0 (6.2)', () => [headers(0, GET())], { goaway: ERR.PROTOCOL_ERROR }],
  ['SETTINGS_ENABLE_PUSH 2 (6.5.2)', () => [settings([SETTING.ENABLE_PUSH, 2])], { goaway: ERR.PROTOCOL_ERROR }],
  ['SETTINGS_INITIAL_WINDOW_SIZE 2^31 (6.5.2)', () => [settings([SETTING.INITIAL_WINDOW_SIZE, 2 ** 31])], { goaway: ERR.FLOW_CONTROL_ERROR }],
  ['SETTINGS_MAX_FRAME_SIZE 16383 (6.5.2)', () => [settings([SETTING.MAX_FRAME_SIZE, 16_383])], { goaway: ERR.PROTOCOL_ERROR }],
  ['SETTINGS_MAX_FRAME_SIZE 2^24 (6.5.2)', () => [settings([SETTING.MAX_FRAME_SIZE, 2 ** 24])], { goaway: ERR.PROTOCOL_ERROR }],
  ['SETTINGS ACK with a payload (6.5)', () => [frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(6))], { goaway: ERR.FRAME_SIZE_ERROR }],
  ['SETTINGS of 7 octets (6.5)', () => [frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(7))], { goaway: ERR.FRAME_SIZE_ERROR }],
  ['SETTINGS on stream 1 (6.5)', () => [frame(FRAME.SETTINGS, 0, 1)], { goaway: ERR.PROTOCOL_ERROR }],
  ['PING of 7 octets (6.7)', () => [frame(FRAME.PING, 0, 0, Buffer.alloc(7))], { goaway: ERR.FRAME_SIZE_ERROR }],
  ['PING on stream 1 (6.7)', () => [frame(FRAME.PING, 0, 1, Buffer.alloc(8))], { goaway: ERR.PROTOCOL_ERROR }],
  ['GOAWAY on stream 1 (6.8)', () => [frame(FRAME.GOAWAY, 0, 1, Buffer.alloc(8))], { goaway: ERR.PROTOCOL_ERROR }],
  ['WINDOW_UPDATE of 0 on the connection (6.9)', () => [frame(FRAME.WINDOW_UPDATE, 0, 0, u32(0))], { goaway: ERR.PROTOCOL_ERROR }],
  ['WINDOW_UPDATE of 0 on an open stream (6.9)', () => [headers(1, GET(), FLAG.END_HEADERS), frame(FRAME.WINDOW_UPDATE, 0, 1, u32(0))], { rst: [1, ERR.PROTOCOL_ERROR] }],
  ['WINDOW_UPDATE of 3 octets (6.9)', () => [frame(FRAME.WINDOW_UPDATE, 0, 0, Buffer.alloc(3))], { goaway: ERR.FRAME_SIZE_ERROR }],
  ['connection window past 2^31-1 (6.9.1)', () => [frame(FRAME.WINDOW_UPDATE, 0, 0, u32(0x7fffffff))], { goaway: ERR.FLOW_CONTROL_ERROR }],
  ['stream window past 2^31-1 (6.9.1)', () => [headers(1, GET()), frame(FRAME.WINDOW_UPDATE, 0, 1, u32(0x7fffffff))], { rst: [1, ERR.FLOW_CONTROL_ERROR] }],
  ['SETTINGS_INITIAL_WINDOW_SIZE raising an open stream past 2^31-1 (6.9.2)', () => [headers(1, GET()), frame(FRAME.WINDOW_UPDATE, 0, 1, u32(0x7fffffff - 65_535)), settings([SETTING.INITIAL_WINDOW_SIZE, 65_536])], { goaway: ERR.FLOW_CONTROL_ERROR }],
  ['HEADERS on a half-closed (remote) stream (5.1)', () => [headers(1, GET()), headers(1, GET())], { rst: [1, ERR.STREAM_CLOSED] }],
  ['DATA on a half-closed (remote) stream (5.1)', () => [headers(1, GET()), frame(FRAME.DATA, 0, 1, Buffer.from('x'))], { rst: [1, ERR.STREAM_CLOSED] }],
  ['DATA on an idle stream (5.1)', () => [frame(FRAME.DATA, 0, 1, Buffer.from('x'))], { goaway: ERR.PROTOCOL_ERROR }],
  ['RST_STREAM on an idle stream (5.1)', () => [frame(FRAME.RST_STREAM, 0, 1, u32(ERR.CANCEL))], { goaway: ERR.PROTOCOL_ERROR }],
  ['WINDOW_UPDATE on an idle stream (5.1)', () => [frame(FRAME.WINDOW_UPDATE, 0, 1, u32(1))], { goaway: ERR.PROTOCOL_ERROR }],
  ['an even stream id (5.1.1)', () => [headers(2, GET())], { goaway: ERR.PROTOCOL_ERROR }],
  ['a stream id below the last one (5.1.1)', () => [headers(5, GET()), headers(3, GET())], { goaway: ERR.PROTOCOL_ERROR }],
  ['CONTINUATION without HEADERS (6.10)', () => [frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, block(GET()))], { goaway: ERR.PROTOCOL_ERROR }],
  ['a PING inside a header block (6.10)', () => [frame(FRAME.HEADERS, FLAG.END_STREAM, 1, block(GET())), frame(FRAME.PING, 0, 0, Buffer.alloc(8))], { goaway: ERR.PROTOCOL_ERROR }],
  ['CONTINUATION on another stream (6.10)', () => [frame(FRAME.HEADERS, FLAG.END_STREAM, 1, block(GET())), frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 3, Buffer.alloc(0))], { goaway: ERR.PROTOCOL_ERROR }],
  ['GOAWAY of 4 octets (6.8)', () => [frame(FRAME.GOAWAY, 0, 0, Buffer.alloc(4))], { goaway: ERR.FRAME_SIZE_ERROR }],
  ['PUSH_PROMISE from a client (8.4)', () => [frame(FRAME.PUSH_PROMISE, FLAG.END_HEADERS, 1, u32(2))], { goaway: ERR.PROTOCOL_ERROR }],
  ['DATA padding as long as the payload (6.1)', () => [headers(1, GET(), FLAG.END_HEADERS), frame(FRAME.DATA, FLAG.PADDED, 1, Buffer.from([3, 0, 0]))], { goaway: ERR.PROTOCOL_ERROR }],
  ['HEADERS padding as long as the payload (6.2)', () => [frame(FRAME.HEADERS, FLAG.PADDED | FLAG.END_HEADERS, 1, Buffer.from([5, 0x82, 0x87]))], { goaway: ERR.PROTOCOL_ERROR }],
  ['PRIORITY depending on its own stream (5.3.1)', () => [frame(FRAME.PRIORITY, 0, 1, priority(1))], { rst: [1, ERR.PROTOCOL_ERROR] }],
  ['PRIORITY of 4 octets (6.3)', () => [frame(FRAME.PRIORITY, 0, 1, u32(0))], { rst: [1, ERR.FRAME_SIZE_ERROR] }],
  ['RST_STREAM of 3 octets (6.4)', () => [headers(1, GET()), frame(FRAME.RST_STREAM, 0, 1, Buffer.alloc(3))], { goaway: ERR.FRAME_SIZE_ERROR }],
  ['a frame longer than SETTINGS_MAX_FRAME_SIZE (4.2)', () => [headers(1, GET(), FLAG.END_HEADERS), frame(FRAME.DATA, 0, 1, Buffer.alloc(16_385))], { goaway: ERR.FRAME_SIZE_ERROR }],
  ['an HPACK table size update above SETTINGS_HEADER_TABLE_SIZE (RFC 7541 6.3)', () => [frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.concat([sizeUpdate(4097), block(GET())]))], { goaway: ERR.COMPRESSION_ERROR }],
  ['an HPACK index past the tables (RFC 7541 2.3.3)', () => [frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.from([0xff, 0x7f]))], { goaway: ERR.COMPRESSION_ERROR }],
  ['a content-length DATA exceeds (8.1.1)', () => [headers(1, POST(1), FLAG.END_HEADERS), frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.from('xx'))], { rst: [1, ERR.PROTOCOL_ERROR] }],
  ['a content-length DATA falls short of (8.1.1)', () => [headers(1, POST(3), FLAG.END_HEADERS), frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.from('xx'))], { rst: [1, ERR.PROTOCOL_ERROR] }],
  ['HEADERS whose priority depends on its own stream (5.3.1)', () => [frame(FRAME.HEADERS, FLAG.PRIORITY | FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.concat([priority(1), block(GET())]))], { rst: [1, ERR.PROTOCOL_ERROR] }],
  ['HEADERS on a stream the client reset (5.1 closed)', () => [headers(1, GET(), FLAG.END_HEADERS), frame(FRAME.RST_STREAM, 0, 1, u32(ERR.CANCEL)), headers(1, GET())], { goaway: ERR.STREAM_CLOSED }],
  ['DATA on a stream id the client skipped (5.1.1)', () => [headers(5, GET()), frame(FRAME.DATA, 0, 3, Buffer.from('x'))], { goaway: ERR.PROTOCOL_ERROR }],
  ['DATA past the stream window (6.9)', () => [headers(1, POST(2 << 20), FLAG.END_HEADERS), ...Array.from({ length: 65 }, () => frame(FRAME.DATA, 0, 1, Buffer.alloc(16_384)))], { rst: [1, ERR.FLOW_CONTROL_ERROR] }],
];

function check(frames: Buffer[], want: Expect, firstFrameNotSettings = false): void {
  let out: Frame[];
  if (firstFrameNotSettings) {
    // A fresh connection whose first frame after the preface is a PING, not SETTINGS.
    const conn = newConnection(opened().conn.settings, opened().conn.handler);
    startConnection(conn);
    takeOutput(conn);
    feedConnection(conn, Buffer.concat([CLIENT_PREFACE, frame(FRAME.PING, 0, 0, Buffer.alloc(8))]));
    out = parseFrames(takeOutput(conn));
  } else out = opened().feed(...frames);
  if ('goaway' in want) expect({ goaway: goawayCode(out) }).toEqual(want);
  else expect({ rst: [want.rst[0], rst(out, want.rst[0])], goaway: goawayCode(out) }).toEqual({ rst: want.rst, goaway: null });
}

describe('RFC 9113 answers to broken frames (h2spec\'s list)', () => {
  test('a first frame other than SETTINGS after the preface (3.4): GOAWAY PROTOCOL_ERROR', () => check([], { goaway: ERR.PROTOCOL_ERROR }, true));
  for (const [name, frames, want] of CASES) test(`${name}: ${'goaway' in want ? `GOAWAY ${want.goaway}` : `RST_STREAM ${want.rst[1]}`}`, () => check(frames(), want));
});

describe('SETTINGS floods', () => {
  test('a SETTINGS frame repeating INITIAL_WINDOW_SIZE 2730 times walks the open streams once, and its last value counts', () => {
    const r = opened();
    for (let i = 0; i < 100; i++) r.feed(headers(1 + 2 * i, GET(), FLAG.END_HEADERS));
    let walks = 0;
    const streams = r.conn.streams;
    const values = streams.values.bind(streams);
    streams.values = () => {
      walks++;
      return values();
    };
    const pairs: number[] = [];
    for (let i = 0; i < 2730; i++) pairs.push(SETTING.INITIAL_WINDOW_SIZE, i % 2 === 0 ? 1_000_000 : 1000 + i);
    const out = r.feed(settings(pairs));
    expect(walks).toBe(1);
    expect(out.filter((f) => f.type === FRAME.SETTINGS).map((f) => f.flags)).toEqual([FLAG.ACK]);
    expect(r.conn.peerInitialWindow).toBe(1000 + 2729);
    expect([...streams.values()].every((st) => st.sendWindow === 1000 + 2729)).toBe(true);
  });
});

describe('frames split across reads', () => {
  /** A connection's whole life from the client: preface, SETTINGS, a POST with a body in frames of many sizes, PINGs, a GET. */
  function script(): Buffer {
    const parts: Buffer[] = [CLIENT_PREFACE, settings([SETTING.INITIAL_WINDOW_SIZE, 70_000]), frame(FRAME.SETTINGS, FLAG.ACK, 0)];
    const sizes = [0, 1, 8, 9, 10, 100, 16_383, 16_384, 5000, 3];
    const total = sizes.reduce((a, b) => a + b, 0);
    parts.push(headers(1, POST(total), FLAG.END_HEADERS));
    sizes.forEach((n, i) => {
      parts.push(frame(FRAME.DATA, i === sizes.length - 1 ? FLAG.END_STREAM : 0, 1, Buffer.alloc(n, 0x30 + i)));
      parts.push(frame(FRAME.PING, 0, 0, Buffer.alloc(8, i)));
    });
    parts.push(headers(3, GET('/second')));
    parts.push(frame(FRAME.DATA, 0, 5, Buffer.from('x'))); // DATA on an idle stream: the connection error at the end
    return Buffer.concat(parts);
  }

  const run = (pieces: (all: Buffer) => Buffer[]) => {
    const r = opened();
    // A fresh connection: `opened` did the preface already, so build one more from its settings and handler.
    const conn = newConnection(r.conn.settings, r.conn.handler);
    startConnection(conn);
    takeOutput(conn);
    r.events.length = 0;
    const out: Frame[] = [];
    for (const p of pieces(script())) {
      feedConnection(conn, p);
      flushData(conn);
      out.push(...parseFrames(takeOutput(conn)));
    }
    return { events: [...r.events], out: out.map((f) => `${f.type}:${f.flags}:${f.stream}:${f.payload.toString('hex')}`) };
  };

  test('the same events and answers whether the bytes come whole, one at a time, or in pieces of any size up to 2 frames', () => {
    const whole = run((all) => [all]);
    expect(whole.events).toContain('request 3');
    expect(whole.events.filter((e) => e.startsWith('data 1')).length).toBe(10);
    expect(whole.out.filter((f) => f.startsWith('7:')).length).toBe(1); // the GOAWAY for DATA on idle stream 5
    const split = (size: number) => (all: Buffer) => {
      const ps: Buffer[] = [];
      for (let at = 0; at < all.length; at += size) ps.push(all.subarray(at, at + size));
      return ps;
    };
    for (const size of [1, 2, 7, 8, 9, 10, 17, 24, 25, 1000, 1448, 16_392, 16_393, 16_394, 40_000]) expect({ size, ...run(split(size)) }).toEqual({ size, ...whole });
    let seed = 7;
    const random = (all: Buffer) => {
      const ps: Buffer[] = [];
      for (let at = 0; at < all.length;) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        const n = 1 + (seed % 3000);
        ps.push(all.subarray(at, at + n));
        at += n;
      }
      return ps;
    };
    for (let i = 0; i < 20; i++) expect(run(random)).toEqual(whole);
  });
});

describe('malformed requests RFC 9113 8.3.1 asks to reset (translate.ts requestHeadFromList)', () => {
  const malformed = (fields: string[]) => {
    const r = requestHeadFromList(fields, true);
    return r.ok ? 'accepted' : r.status === 0 ? 'malformed' : `answered ${r.status}`;
  };
  test('already malformed: uppercase names, connection-specific fields, te other than trailers, pseudo-header after a field, a duplicate, an unknown or response pseudo-header', () => {
    expect([
      malformed([...GET(), 'X-Upper', 'a']),
      malformed([...GET(), 'connection', 'close']),
      malformed([...GET(), 'keep-alive', '1']),
      malformed([...GET(), 'te', 'gzip']),
      malformed(['x-a', '1', ...GET()]),
      malformed([...GET(), ':path', '/again']),
      malformed([...GET(), ':status', '200']),
      malformed([...GET(), ':protocol', 'websocket']),
    ]).toEqual(['malformed', 'malformed', 'malformed', 'malformed', 'malformed', 'malformed', 'malformed', 'malformed']);
    expect(malformed([...GET(), 'te', 'trailers'])).toBe('accepted');
  });
  // A missing :method or :path is answered 400 (docs/compat.md): RFC 9113 8.1.1 lets an intermediary answer before
  // resetting. An absolute-form :path would become an HTTP/1.1 absolute-form target whose host overrides :authority.
  test('a request without :scheme, or with a :path not in origin form, is malformed; without :method or with an empty :path it is answered 400', () => {
    const without = (name: string) => {
      const f = GET();
      const i = f.indexOf(name);
      f.splice(i, 2);
      return f;
    };
    const options = (path: string) => [':method', 'OPTIONS', ':scheme', 'https', ':authority', 'a.test', ':path', path];
    expect([
      malformed(without(':scheme')),
      malformed(without(':method')),
      malformed([...without(':path'), ':path', '']),
      malformed([...without(':path'), ':path', 'http://other.test/admin']),
      malformed([...without(':path'), ':path', 'index.html']),
      malformed([...without(':path'), ':path', '*']),
      malformed(options('*')),
      malformed(options('/x')),
    ]).toEqual(['malformed', 'answered 400', 'answered 400', 'malformed', 'malformed', 'malformed', 'accepted', 'accepted']);
  });
  test('trailers holding a pseudo-header are malformed: RST_STREAM PROTOCOL_ERROR (8.1), never handed on', () => {
    const r = opened();
    r.feed(headers(1, POST(1), FLAG.END_HEADERS), frame(FRAME.DATA, 0, 1, Buffer.from('x')));
    const out = r.feed(headers(1, [':path', '/sneaky', 'x-t', '1']));
    expect({ rst: rst(out, 1), goaway: goawayCode(out) }).toEqual({ rst: ERR.PROTOCOL_ERROR, goaway: null });
    expect(r.events.filter((e) => e.startsWith('trailers'))).toEqual([]);
  });

  test('trailers with an uppercase name, a connection-specific field or a CR in a value are malformed (8.2); plain ones are handed on', () => {
    const answers = [['X-Upper', '1'], ['connection', 'close'], ['transfer-encoding', 'chunked'], ['x-t', 'a\rb'], ['x-t', '1']].map((t) => {
      const r = opened();
      r.feed(headers(1, POST(1), FLAG.END_HEADERS), frame(FRAME.DATA, 0, 1, Buffer.from('x')));
      const out = r.feed(headers(1, t));
      return [t[0], rst(out, 1), r.events.filter((e) => e.startsWith('trailers')).length];
    });
    expect(answers).toEqual([['X-Upper', ERR.PROTOCOL_ERROR, 0], ['connection', ERR.PROTOCOL_ERROR, 0], ['transfer-encoding', ERR.PROTOCOL_ERROR, 0], ['x-t', ERR.PROTOCOL_ERROR, 0], ['x-t', null, 1]]);
  });
});

describe('frames the client sent before our RST_STREAM or GOAWAY reached it (RFC 9113 5.1 closed, 6.8)', () => {
  test('trailers and DATA on a stream we reset are decoded and dropped: no GOAWAY, no second RST_STREAM, the HPACK table stays in step', () => {
    const r = opened();
    // A body longer than its content-length: we reset stream 1 at the first DATA; the rest was already on its way.
    r.feed(headers(1, POST(1), FLAG.END_HEADERS));
    expect(rst(r.feed(frame(FRAME.DATA, 0, 1, Buffer.from('xx'))), 1)).toBe(ERR.PROTOCOL_ERROR);
    // An indexed trailer (literal with incremental indexing) changes the table: the next request must still decode.
    const indexed = Buffer.from([0x40, 3, ...Buffer.from('x-t'), 1, ...Buffer.from('1')]);
    const late = r.feed(frame(FRAME.DATA, 0, 1, Buffer.from('yy')), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, indexed));
    expect(late).toEqual([]);
    r.feed(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, Buffer.concat([block(GET('/next')), Buffer.from([0xbe])])));
    expect(r.events.filter((e) => e.startsWith('request'))).toEqual(['request 1', 'request 3']);
    expect(r.conn.error).toBe(0);
  });

  test('a request whose response ended before its body (RST_STREAM NO_ERROR): its late DATA and trailers are dropped quietly', () => {
    const r = opened();
    r.feed(headers(1, POST(10), FLAG.END_HEADERS));
    const st = r.streams.get(1)!;
    respond(r.conn, st, [':status', '413'], true);
    expect(rst(r.out(), 1)).toBe(ERR.NO_ERROR);
    expect(r.feed(frame(FRAME.DATA, 0, 1, Buffer.alloc(9)), headers(1, ['x-t', '1']))).toEqual([]);
    expect(r.conn.error).toBe(0);
  });

  test('HEADERS on a stream both sides ended is not late: GOAWAY STREAM_CLOSED (5.1 closed)', () => {
    const r = opened();
    r.feed(headers(1, GET()));
    respond(r.conn, r.streams.get(1)!, [':status', '204'], true);
    r.out();
    expect(r.conn.streams.size).toBe(0);
    expect(goawayCode(r.feed(headers(1, GET())))).toBe(ERR.STREAM_CLOSED);
  });

  test('streams opened past our GOAWAY are ignored, their DATA and trailers too; the connection window is given back', () => {
    const r = opened();
    r.feed(headers(1, GET('/a')));
    goAway(r.conn, ERR.NO_ERROR);
    r.out();
    const out = r.feed(headers(3, POST(2), FLAG.END_HEADERS), frame(FRAME.DATA, 0, 3, Buffer.from('ab')), headers(3, ['x-t', '1']));
    expect(out).toEqual([]);
    expect(r.events).toEqual(['request 1']);
    expect(r.conn.recvWindow + r.conn.recvUnacked).toBe(16 << 20);
  });
});
