// tsbal's own HTTP/2 server connection as a state machine, no sockets: client frames in, server frames out
// (connection.ts, output.ts), checked against RFC 9113.
import { describe, expect, test } from 'bun:test';
import {
  CLIENT_PREFACE, feedConnection, goAway, newConnection, startConnection, takeOutput, type H2Connection, type H2Handler, type H2Stream,
} from '../../../src/proxy/h2/connection.ts';
import { flushData, respond, resetStream, sendData } from '../../../src/proxy/h2/output.ts';
import { ErrorCode as ERR, FrameFlag as FLAG, FrameType as FRAME, SettingId as SETTING } from '../../../src/proxy/h2/frame-writer.ts';
import { block, frame, type Frame, GET, goawayCode, headers, parseFrames, rst, settings, u32 } from './wire-kit.ts';

interface Recorder {
  conn: H2Connection;
  events: string[];
  streams: Map<number, H2Stream>;
  body: Map<number, string>;
  /** Feeds bytes, then returns the frames the server queued (moving pending DATA first, as the glue's flush does). */
  feed(...bufs: Buffer[]): Frame[];
  out(): Frame[];
}

function server(opts: { maxStreams?: number; maxList?: number; streamWindow?: number } = {}): Recorder {
  const events: string[] = [];
  const streams = new Map<number, H2Stream>();
  const body = new Map<number, string>();
  const handler: H2Handler = {
    request: (_c, st, fields, end) => {
      streams.set(st.id, st);
      // As the glue does (session.ts): the announced length, which the connection then holds DATA to.
      const cl = fields === null ? -1 : fields.indexOf('content-length');
      if (cl !== -1 && cl % 2 === 0) st.bodyLeft = Number(fields![cl + 1]);
      events.push(`request ${st.id} ${fields === null ? 'too-large' : fields.filter((_, i) => i % 2 === 1 && fields[i - 1] === ':path').join('')}${end ? ' end' : ''}`);
    },
    data: (_c, st, buf, s, e, end) => {
      body.set(st.id, (body.get(st.id) ?? '') + buf.toString('latin1', s, e));
      events.push(`data ${st.id} ${e - s}${end ? ' end' : ''}`);
    },
    trailers: (_c, st, fields) => events.push(`trailers ${st.id} ${fields.join(',')}`),
    closed: (_c, st, code, byPeer) => events.push(`closed ${st.id} ${code}${byPeer ? ' by peer' : ''}`),
    drain: (_c, st) => events.push(`drain ${st.id}`),
    wantFlush: () => {},
  };
  const conn = newConnection({ maxConcurrentStreams: opts.maxStreams ?? 100, maxHeaderListSize: opts.maxList ?? 8192, streamWindow: opts.streamWindow ?? 1 << 20, connectionWindow: 16 << 20 }, handler);
  startConnection(conn);
  const r: Recorder = {
    conn, events, streams, body,
    feed: (...bufs) => {
      for (const b of bufs) feedConnection(conn, b);
      return r.out();
    },
    out: () => {
      flushData(conn);
      return parseFrames(takeOutput(conn));
    },
  };
  return r;
}

/** A server past the preface and SETTINGS exchange. */
function opened(opts: Parameters<typeof server>[0] = {}, clientSettings: number[] = []): Recorder {
  const r = server(opts);
  r.feed(CLIENT_PREFACE, settings(clientSettings), frame(FRAME.SETTINGS, FLAG.ACK, 0));
  return r;
}

const kinds = (frames: Frame[]) => frames.map((f) => `${f.type}:${f.stream}`);

describe('preface and SETTINGS', () => {
  test('the server sends its SETTINGS (push off, the limits, a 1 MiB stream window) and a connection WINDOW_UPDATE, then ACKs the client\'s', () => {
    const r = server({ maxStreams: 7, maxList: 4096 });
    const first = r.out();
    expect(kinds(first)).toEqual([`${FRAME.SETTINGS}:0`, `${FRAME.WINDOW_UPDATE}:0`]);
    const s = first[0]!.payload;
    const pairs: number[] = [];
    for (let i = 0; i < s.length; i += 6) pairs.push(s.readUInt16BE(i), s.readUInt32BE(i + 2));
    expect(pairs).toEqual([SETTING.ENABLE_PUSH, 0, SETTING.MAX_CONCURRENT_STREAMS, 7, SETTING.MAX_HEADER_LIST_SIZE, 4096, SETTING.INITIAL_WINDOW_SIZE, 1 << 20]);
    expect(first[1]!.payload.readUInt32BE(0)).toBe((16 << 20) - 65_535);
    const after = r.feed(CLIENT_PREFACE, settings([SETTING.MAX_FRAME_SIZE, 32_768]));
    expect(after).toEqual([{ type: FRAME.SETTINGS, flags: FLAG.ACK, stream: 0, payload: Buffer.alloc(0) }]);
    expect(r.conn.peerMaxFrame).toBe(32_768);
  });

  test('the preface and the SETTINGS that end it may arrive a byte at a time; a wrong preface is a PROTOCOL_ERROR GOAWAY', () => {
    const r = server();
    r.out();
    for (const byte of CLIENT_PREFACE) r.feed(Buffer.from([byte]));
    // Open once the client's SETTINGS, the end of its preface (RFC 9113 3.4), is in: a byte at a time too.
    expect(r.conn.phase).toBe('preface');
    for (const byte of settings([])) r.feed(Buffer.from([byte]));
    expect(r.conn.phase).toBe('open');
    const bad = server();
    bad.out();
    expect(goawayCode(bad.feed(Buffer.from('GET / HTTP/1.1\r\n\r\n')))).toBe(ERR.PROTOCOL_ERROR);
  });

  test('PING is answered with an ACK carrying the same 8 bytes; a PING ACK is not answered', () => {
    const r = opened();
    const data = Buffer.from('abcdefgh');
    expect(r.feed(frame(FRAME.PING, 0, 0, data))).toEqual([{ type: FRAME.PING, flags: FLAG.ACK, stream: 0, payload: data }]);
    expect(r.feed(frame(FRAME.PING, FLAG.ACK, 0, data))).toEqual([]);
  });

  test('SETTINGS_ENABLE_PUSH 2 and a SETTINGS frame on a stream are connection errors', () => {
    expect(goawayCode(opened().feed(settings([SETTING.ENABLE_PUSH, 2])))).toBe(ERR.PROTOCOL_ERROR);
    expect(goawayCode(opened().feed(frame(FRAME.SETTINGS, 0, 1)))).toBe(ERR.PROTOCOL_ERROR);
  });
});

describe('streams', () => {
  test('a GET is reported with its fields; HEADERS and DATA of the response go out, the stream closes', () => {
    const r = opened();
    r.feed(headers(1, GET('/x')));
    expect(r.events).toEqual(['request 1 /x end']);
    const st = r.streams.get(1)!;
    respond(r.conn, st, [':status', '200', 'content-type', 'text/plain'], false);
    sendData(r.conn, st, Buffer.from('hello'), true);
    const out = r.out();
    expect(kinds(out)).toEqual([`${FRAME.HEADERS}:1`, `${FRAME.DATA}:1`]);
    expect(out[1]!.flags).toBe(FLAG.END_STREAM);
    expect(out[1]!.payload.toString()).toBe('hello');
    expect(r.events).toEqual(['request 1 /x end', 'closed 1 -1']);
    expect(r.conn.streams.size).toBe(0);
  });

  test('HEADERS split over CONTINUATION frames make one request', () => {
    const r = opened();
    const b = block(GET('/cont'));
    r.feed(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, b.subarray(0, 10)), frame(FRAME.CONTINUATION, 0, 1, b.subarray(10, 20)), frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, b.subarray(20)));
    expect(r.events).toEqual(['request 1 /cont end']);
  });

  test('a frame of another kind between HEADERS and its CONTINUATION is a PROTOCOL_ERROR', () => {
    const r = opened();
    const b = block(GET('/cont'));
    const out = r.feed(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, b.subarray(0, 10)), frame(FRAME.PING, 0, 0, Buffer.alloc(8)));
    expect(goawayCode(out)).toBe(ERR.PROTOCOL_ERROR);
    expect(r.events).toEqual([]);
  });

  test('a stream id lower than one already used, or even, is a PROTOCOL_ERROR', () => {
    const r = opened();
    expect(goawayCode(r.feed(headers(5, GET()), headers(3, GET())))).toBe(ERR.PROTOCOL_ERROR);
    expect(r.events).toEqual(['request 5 / end']);
    expect(goawayCode(opened().feed(headers(2, GET())))).toBe(ERR.PROTOCOL_ERROR);
  });

  test('PUSH_PROMISE from a client is a PROTOCOL_ERROR', () => {
    expect(goawayCode(opened().feed(frame(FRAME.PUSH_PROMISE, FLAG.END_HEADERS, 1, Buffer.alloc(4))))).toBe(ERR.PROTOCOL_ERROR);
  });

  test('streams past MAX_CONCURRENT_STREAMS are refused (REFUSED_STREAM); a closed stream makes room again', () => {
    const r = opened({ maxStreams: 2 });
    const out = r.feed(headers(1, GET('/1')), headers(3, GET('/3')), headers(5, GET('/5')));
    expect(rst(out, 5)).toBe(ERR.REFUSED_STREAM);
    expect(r.events).toEqual(['request 1 /1 end', 'request 3 /3 end']);
    resetStream(r.conn, r.streams.get(1)!, ERR.CANCEL);
    r.feed(headers(7, GET('/7')));
    expect(r.events.at(-1)).toBe('request 7 /7 end');
    expect(goawayCode(r.out())).toBeNull();
  });

  test('before the client acknowledged our SETTINGS, streams past our limit are still taken (up to 100)', () => {
    const r = server({ maxStreams: 2 });
    r.out();
    const out = r.feed(CLIENT_PREFACE, settings([]), headers(1, GET('/1')), headers(3, GET('/3')), headers(5, GET('/5')));
    expect(rst(out, 5)).toBeNull();
    expect(r.events).toEqual(['request 1 /1 end', 'request 3 /3 end', 'request 5 /5 end']);
    r.feed(frame(FRAME.SETTINGS, FLAG.ACK, 0));
    expect(rst(r.feed(headers(7, GET('/7'))), 7)).toBe(ERR.REFUSED_STREAM);
  });

  test('a header list over the limit is reported as too large (the table stays in sync: the next request decodes)', () => {
    const r = opened({ maxList: 200 });
    r.feed(headers(1, [...GET('/big'), 'x-big', 'a'.repeat(120), 'x-big2', 'b'.repeat(120)]), headers(3, GET('/next')));
    expect(r.events).toEqual(['request 1 too-large end', 'request 3 /next end']);
  });

  test('RST_STREAM from the client mid-response closes the stream (by peer); what the response still writes is dropped', () => {
    const r = opened();
    r.feed(headers(1, GET('/long')));
    const st = r.streams.get(1)!;
    respond(r.conn, st, [':status', '200'], false);
    sendData(r.conn, st, Buffer.alloc(100), false);
    r.out();
    r.feed(frame(FRAME.RST_STREAM, 0, 1, u32(ERR.CANCEL)));
    expect(r.events).toEqual(['request 1 /long end', `closed 1 ${ERR.CANCEL} by peer`]);
    sendData(r.conn, st, Buffer.alloc(100), true);
    expect(r.out()).toEqual([]);
    // Frames the client sent before it saw its own reset land on a closed stream: ignored.
    expect(r.feed(frame(FRAME.WINDOW_UPDATE, 0, 1, u32(10)))).toEqual([]);
  });

  test('a request body arrives as data events; padding is removed; trailers end the stream', () => {
    const r = opened();
    r.feed(headers(1, [...GET('/up'), 'content-length', '8'], FLAG.END_HEADERS));
    const padded = Buffer.concat([Buffer.from([3]), Buffer.from('abcd'), Buffer.alloc(3)]);
    r.feed(frame(FRAME.DATA, FLAG.PADDED, 1, padded), frame(FRAME.DATA, 0, 1, Buffer.from('efgh')), headers(1, ['x-sum', '1']));
    expect(r.events).toEqual(['request 1 /up', 'data 1 4', 'data 1 4', 'trailers 1 x-sum,1']);
    expect(r.body.get(1)).toBe('abcdefgh');
    expect(r.streams.get(1)!.state).toBe('half-closed-remote');
  });

  test('DATA beyond content-length, or END_STREAM short of it, is a stream PROTOCOL_ERROR', () => {
    const r = opened();
    r.feed(headers(1, [...GET('/up'), 'content-length', '3'], FLAG.END_HEADERS));
    expect(rst(r.feed(frame(FRAME.DATA, 0, 1, Buffer.from('abcd'))), 1)).toBe(ERR.PROTOCOL_ERROR);
    r.feed(headers(3, [...GET('/up'), 'content-length', '3'], FLAG.END_HEADERS));
    expect(rst(r.feed(frame(FRAME.DATA, FLAG.END_STREAM, 3, Buffer.from('ab'))), 3)).toBe(ERR.PROTOCOL_ERROR);
    expect(goawayCode(r.out())).toBeNull();
  });

  test('DATA on a half-closed (remote) stream is STREAM_CLOSED; DATA on an idle stream is a connection error', () => {
    const r = opened();
    r.feed(headers(1, GET()));
    expect(rst(r.feed(frame(FRAME.DATA, 0, 1, Buffer.from('x'))), 1)).toBe(ERR.STREAM_CLOSED);
    expect(goawayCode(r.feed(frame(FRAME.DATA, 0, 9, Buffer.from('x'))))).toBe(ERR.PROTOCOL_ERROR);
  });

  test('after GOAWAY, streams already open are answered and the connection reports when the last one ends', () => {
    const r = opened();
    r.feed(headers(1, GET('/a')));
    goAway(r.conn, ERR.NO_ERROR);
    const out = r.feed(headers(3, GET('/late')));
    expect(out.filter((f) => f.type === FRAME.GOAWAY).map((f) => [f.payload.readUInt32BE(0), f.payload.readUInt32BE(4)])).toEqual([[1, ERR.NO_ERROR]]);
    expect(r.events).toEqual(['request 1 /a end']);
    respond(r.conn, r.streams.get(1)!, [':status', '204'], true);
    expect(kinds(r.out())).toEqual([`${FRAME.HEADERS}:1`]);
    expect(r.conn.streams.size).toBe(0);
  });
});

describe('flow control', () => {
  test('response DATA stops at the client\'s stream window and resumes on its WINDOW_UPDATE; drain follows', () => {
    const r = opened({}, [SETTING.INITIAL_WINDOW_SIZE, 10]);
    r.feed(headers(1, GET('/big')));
    const st = r.streams.get(1)!;
    respond(r.conn, st, [':status', '200'], false);
    const body = Buffer.alloc(70_000, 'x');
    expect(sendData(r.conn, st, body, true)).toBe(false);
    let out = r.out();
    expect(out.filter((f) => f.type === FRAME.DATA).map((f) => f.payload.length)).toEqual([10]);
    expect(r.out()).toEqual([]);
    out = r.feed(frame(FRAME.WINDOW_UPDATE, 0, 1, u32(40_000)));
    expect(out.filter((f) => f.type === FRAME.DATA).map((f) => f.payload.length)).toEqual([16_384, 16_384, 7_232]);
    expect(r.events).toContain('drain 1');
    out = r.feed(frame(FRAME.WINDOW_UPDATE, 0, 1, u32(100_000)));
    // The connection window (65535) is the limit now: 65535 - 40010 more bytes.
    const sent = out.filter((f) => f.type === FRAME.DATA).reduce((n, f) => n + f.payload.length, 0);
    expect(sent).toBe(65_535 - 40_010);
    out = r.feed(frame(FRAME.WINDOW_UPDATE, 0, 0, u32(100_000)));
    const data = out.filter((f) => f.type === FRAME.DATA);
    expect(data.reduce((n, f) => n + f.payload.length, 0)).toBe(70_000 - 65_535);
    expect(data.at(-1)!.flags & FLAG.END_STREAM).toBe(FLAG.END_STREAM);
    expect(r.conn.streams.size).toBe(0);
  });

  test('a SETTINGS_INITIAL_WINDOW_SIZE change moves the windows of open streams (RFC 9113 6.9.2)', () => {
    const r = opened({}, [SETTING.INITIAL_WINDOW_SIZE, 0]);
    r.feed(headers(1, GET()));
    const st = r.streams.get(1)!;
    respond(r.conn, st, [':status', '200'], false);
    sendData(r.conn, st, Buffer.from('abc'), true);
    expect(r.out().filter((f) => f.type === FRAME.DATA)).toEqual([]);
    const out = r.feed(settings([SETTING.INITIAL_WINDOW_SIZE, 2]));
    expect(out.filter((f) => f.type === FRAME.DATA).map((f) => f.payload.toString())).toEqual(['ab']);
  });

  test('a WINDOW_UPDATE past 2^31-1 is FLOW_CONTROL_ERROR: for the connection a GOAWAY, for a stream a RST_STREAM', () => {
    expect(goawayCode(opened().feed(frame(FRAME.WINDOW_UPDATE, 0, 0, u32(0x7fffffff))))).toBe(ERR.FLOW_CONTROL_ERROR);
    const r = opened();
    r.feed(headers(1, GET()));
    const out = r.feed(frame(FRAME.WINDOW_UPDATE, 0, 1, u32(0x7fffffff)));
    expect(rst(out, 1)).toBe(ERR.FLOW_CONTROL_ERROR);
    expect(goawayCode(out)).toBeNull();
  });

  test('a client sending past our stream window gets FLOW_CONTROL_ERROR on that stream', () => {
    const r = opened({ streamWindow: 16 });
    r.feed(headers(1, GET('/up'), FLAG.END_HEADERS));
    expect(rst(r.feed(frame(FRAME.DATA, 0, 1, Buffer.alloc(17))), 1)).toBe(ERR.FLOW_CONTROL_ERROR);
  });

  test('a body as big as the window gets WINDOW_UPDATEs as it is consumed (stream and connection)', async () => {
    const { consumed } = await import('../../../src/proxy/h2/connection.ts');
    const r = opened({ streamWindow: 65_536 });
    r.feed(headers(1, GET('/up'), FLAG.END_HEADERS));
    r.feed(frame(FRAME.DATA, 0, 1, Buffer.alloc(16_384)));
    consumed(r.conn, r.streams.get(1)!, 16_384);
    const out = r.out();
    expect(out.filter((f) => f.type === FRAME.WINDOW_UPDATE).map((f) => [f.stream, f.payload.readUInt32BE(0)])).toEqual([[1, 16_384]]);
  });

  test('response bodies are cut at the client\'s max frame size', () => {
    const r = opened({}, [SETTING.INITIAL_WINDOW_SIZE, 1 << 20]);
    r.feed(frame(FRAME.WINDOW_UPDATE, 0, 0, u32(1 << 20)));
    r.feed(headers(1, GET()));
    const st = r.streams.get(1)!;
    respond(r.conn, st, [':status', '200'], false);
    sendData(r.conn, st, Buffer.alloc(40_000), true);
    expect(r.out().filter((f) => f.type === FRAME.DATA).map((f) => f.payload.length)).toEqual([16_384, 16_384, 7_232]);
  });
});
