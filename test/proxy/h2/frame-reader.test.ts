// Frame splitting: any split of the input gives the same frames (byte by byte, random cuts, one chunk), the client
// preface is checked across splits, an oversized frame is a FRAME_SIZE_ERROR, a sink can stop the reader.
import { describe, expect, test } from 'bun:test';
import {
  CLIENT_PREFACE,
  FEED_BAD_PREFACE,
  FEED_FRAME_SIZE_ERROR,
  FEED_OK,
  FEED_STOPPED,
  feedFrames,
  newFrameReader,
  setReaderMaxFrameSize,
  type FrameSink,
} from '../../../src/proxy/h2/frame-reader.ts';
import { FrameType, goawayFrame, settingsAckFrame, settingsFrame, windowUpdateFrame, writeFrameHeader } from '../../../src/proxy/h2/frame-writer.ts';

interface Seen {
  type: number;
  flags: number;
  streamId: number;
  payload: string;
}

/** A sink recording frames (copying payloads: they are only valid during the call). */
function recorder(stopAfter = Infinity): FrameSink & { frames: Seen[] } {
  const frames: Seen[] = [];
  return {
    frames,
    frame(type, flags, streamId, payload, start, end) {
      frames.push({ type, flags, streamId, payload: payload.subarray(start, end).toString('hex') });
      return frames.length < stopAfter;
    },
  };
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const out = Buffer.alloc(9 + payload.length);
  writeFrameHeader(out, 0, payload.length, type, flags, streamId);
  payload.copy(out, 9);
  return out;
}

const STREAM = Buffer.concat([
  CLIENT_PREFACE,
  settingsFrame([1, 4096, 4, 65535]),
  settingsAckFrame(),
  windowUpdateFrame(0, 1 << 20),
  frame(FrameType.HEADERS, 0x5, 1, Buffer.from('82868441', 'hex')),
  frame(FrameType.DATA, 0x1, 0x7fffffff, Buffer.alloc(16384, 0x61)),
  frame(FrameType.DATA, 0x0, 3, Buffer.alloc(0)),
  frame(FrameType.HEADERS, 0x4, 5, Buffer.alloc(300, 0x62)),
  goawayFrame(5, 0, 'bye'),
]);

function feedInPieces(cuts: number[]): { rc: number; frames: Seen[] } {
  const r = newFrameReader(16384, { expectPreface: true });
  const sink = recorder();
  let at = 0;
  let rc = FEED_OK;
  for (const cut of [...cuts, STREAM.length]) {
    rc = feedFrames(r, STREAM.subarray(at, cut), sink);
    expect(rc).toBe(FEED_OK);
    at = cut;
  }
  return { rc, frames: sink.frames };
}

describe('splitting', () => {
  const whole = feedInPieces([]);
  test('one chunk gives every frame with its fields (R bit of the stream id cleared)', () => {
    expect(whole.frames.map((f) => [f.type, f.flags, f.streamId, f.payload.length / 2])).toEqual([
      [4, 0, 0, 12], [4, 1, 0, 0], [8, 0, 0, 4], [1, 5, 1, 4], [0, 1, 0x7fffffff, 16384], [0, 0, 3, 0], [1, 4, 5, 300], [7, 0, 0, 11],
    ]);
  });
  test('byte-by-byte feeding gives the same frames as one chunk', () => {
    const cuts: number[] = [];
    for (let i = 1; i < STREAM.length; i++) cuts.push(i);
    expect(feedInPieces(cuts).frames).toEqual(whole.frames);
  });
  test('200 random splits give the same frames as one chunk', () => {
    let seed = 42;
    for (let round = 0; round < 200; round++) {
      const cuts = new Set<number>();
      const count = 1 + (round % 30);
      for (let i = 0; i < count; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        cuts.add(1 + (seed % (STREAM.length - 1)));
      }
      expect(feedInPieces([...cuts].sort((a, b) => a - b)).frames).toEqual(whole.frames);
    }
  });
  test('the R bit of a stream id is ignored', () => {
    const r = newFrameReader();
    const sink = recorder();
    const f = frame(FrameType.HEADERS, 0, 1, Buffer.alloc(0));
    f[5] = 0x80;
    expect(feedFrames(r, f, sink)).toBe(FEED_OK);
    expect(sink.frames[0]!.streamId).toBe(1);
  });
});

describe('frame size', () => {
  test('a frame longer than the max frame size is FRAME_SIZE_ERROR, and the reader stays failed', () => {
    const r = newFrameReader(16384);
    const sink = recorder();
    expect(feedFrames(r, frame(FrameType.DATA, 0, 1, Buffer.alloc(16384)), sink)).toBe(FEED_OK);
    // The header alone is enough to refuse it.
    expect(feedFrames(r, frame(FrameType.DATA, 0, 1, Buffer.alloc(16385)).subarray(0, 9), sink)).toBe(FEED_FRAME_SIZE_ERROR);
    expect(feedFrames(r, frame(FrameType.DATA, 0, 1, Buffer.alloc(1)), sink)).toBe(FEED_FRAME_SIZE_ERROR);
    expect(sink.frames.length).toBe(1);
  });
  test('a raised max frame size accepts bigger frames, reassembled across chunks', () => {
    const r = newFrameReader(16384);
    setReaderMaxFrameSize(r, 100000);
    const sink = recorder();
    const big = frame(FrameType.DATA, 0, 1, Buffer.alloc(70000, 7));
    expect(feedFrames(r, big.subarray(0, 5000), sink)).toBe(FEED_OK);
    expect(feedFrames(r, big.subarray(5000), sink)).toBe(FEED_OK);
    expect(sink.frames[0]!.payload).toBe(Buffer.alloc(70000, 7).toString('hex'));
  });
});

describe('client preface', () => {
  test('a good preface split anywhere is consumed and frames follow', () => {
    for (let cut = 1; cut < 24; cut++) {
      const r = newFrameReader(16384, { expectPreface: true });
      const sink = recorder();
      const input = Buffer.concat([CLIENT_PREFACE, settingsFrame([])]);
      expect(feedFrames(r, input.subarray(0, cut), sink)).toBe(FEED_OK);
      expect(feedFrames(r, input.subarray(cut), sink)).toBe(FEED_OK);
      expect(sink.frames).toEqual([{ type: 4, flags: 0, streamId: 0, payload: '' }]);
    }
  });
  test('a bad preface is refused as soon as a byte differs (an HTTP/1.1 request, a TLS record)', () => {
    for (const input of ['GET / HTTP/1.1\r\n\r\n', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r!', '\x16\x03\x01']) {
      const r = newFrameReader(16384, { expectPreface: true });
      expect(feedFrames(r, Buffer.from(input, 'latin1'), recorder())).toBe(FEED_BAD_PREFACE);
      expect(feedFrames(r, CLIENT_PREFACE, recorder())).toBe(FEED_BAD_PREFACE);
    }
    const r = newFrameReader(16384, { expectPreface: true });
    expect(feedFrames(r, CLIENT_PREFACE.subarray(0, 10), recorder())).toBe(FEED_OK);
    expect(feedFrames(r, Buffer.from('X'), recorder())).toBe(FEED_BAD_PREFACE);
  });
  test('without expectPreface the preface bytes are read as a frame header (the server side of a client)', () => {
    const r = newFrameReader(16384);
    expect(feedFrames(r, CLIENT_PREFACE, recorder())).toBe(FEED_FRAME_SIZE_ERROR); // "PRI" = a 5 MB length
  });
});

describe('stopping', () => {
  test('a sink returning false stops the feed; later feeds deliver nothing', () => {
    const r = newFrameReader(16384, { expectPreface: true });
    const sink = recorder(2);
    expect(feedFrames(r, STREAM, sink)).toBe(FEED_STOPPED);
    expect(sink.frames.length).toBe(2);
    expect(feedFrames(r, settingsAckFrame(), sink)).toBe(FEED_STOPPED);
    expect(sink.frames.length).toBe(2);
  });
  test('a stop on a reassembled frame is reported too', () => {
    const r = newFrameReader(16384);
    const sink = recorder(1);
    const f = frame(FrameType.DATA, 0, 1, Buffer.alloc(10));
    expect(feedFrames(r, f.subarray(0, 12), sink)).toBe(FEED_OK);
    expect(feedFrames(r, f.subarray(12), sink)).toBe(FEED_STOPPED);
  });
});

describe('payload views', () => {
  test('a frame whole in the chunk is a view of the chunk (no copy)', () => {
    const r = newFrameReader();
    const input = frame(FrameType.DATA, 0, 1, Buffer.from('abc'));
    let seen: Buffer | null = null;
    let range: [number, number] = [0, 0];
    feedFrames(r, input, { frame: (_t, _f, _s, payload, start, end) => ((seen = payload), (range = [start, end]), true) });
    expect(seen === input).toBe(true);
    expect(range).toEqual([9, 12]);
  });
});
