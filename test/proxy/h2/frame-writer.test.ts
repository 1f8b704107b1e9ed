// Frame writing: exact bytes of each control frame, HEADERS split into CONTINUATION at the peer's max frame size with
// END_STREAM / END_HEADERS where RFC 9113 puts them (copying and in place), read back through the frame reader.
import { describe, expect, test } from 'bun:test';
import { feedFrames, newFrameReader } from '../../../src/proxy/h2/frame-reader.ts';
import {
  ErrorCode,
  FrameFlag,
  FrameType,
  SettingId,
  dataFrameHeader,
  frameHeadersInPlace,
  goawayFrame,
  headersFramesSize,
  pingAckFrame,
  rstStreamFrame,
  settingsAckFrame,
  settingsFrame,
  windowUpdateFrame,
  writeDataHeader,
  writeHeadersFrames,
} from '../../../src/proxy/h2/frame-writer.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function readBack(bytes: Buffer): Array<{ type: number; flags: number; streamId: number; payload: Buffer }> {
  const frames: Array<{ type: number; flags: number; streamId: number; payload: Buffer }> = [];
  const r = newFrameReader(1 << 24);
  expect(feedFrames(r, bytes, { frame: (type, flags, streamId, p, s, e) => (frames.push({ type, flags, streamId, payload: Buffer.from(p.subarray(s, e)) }), true) })).toBe(0);
  return frames;
}

describe('control frames, byte for byte', () => {
  test('SETTINGS with a list, and SETTINGS ACK', () => {
    expect(hex(settingsFrame([SettingId.MAX_CONCURRENT_STREAMS, 100, SettingId.INITIAL_WINDOW_SIZE, 0x7fffffff]))).toBe(
      '00000c040000000000' + '000300000064' + '00047fffffff',
    );
    expect(hex(settingsFrame([]))).toBe('000000040000000000');
    expect(hex(settingsAckFrame())).toBe('000000040100000000');
  });
  test('PING ACK copies the 8 octets at the given offset', () => {
    const received = Buffer.from('ffff0102030405060708ff', 'hex');
    expect(hex(pingAckFrame(received, 2))).toBe('000008060100000000' + '0102030405060708');
  });
  test('GOAWAY with and without debug text', () => {
    expect(hex(goawayFrame(7, ErrorCode.NO_ERROR))).toBe('000008070000000000' + '00000007' + '00000000');
    expect(hex(goawayFrame(0x7fffffff, ErrorCode.COMPRESSION_ERROR, 'hpack'))).toBe('00000d070000000000' + '7fffffff' + '00000009' + Buffer.from('hpack').toString('hex'));
  });
  test('RST_STREAM and WINDOW_UPDATE', () => {
    expect(hex(rstStreamFrame(3, ErrorCode.CANCEL))).toBe('000004030000000003' + '00000008');
    expect(hex(windowUpdateFrame(0, 0x7fffffff))).toBe('000004080000000000' + '7fffffff');
    expect(hex(windowUpdateFrame(5, 65535))).toBe('000004080000000005' + '0000ffff');
  });
  test('DATA frame header, with and without END_STREAM, as a Buffer and into a buffer', () => {
    expect(hex(dataFrameHeader(16384, 1, true))).toBe('004000000100000001');
    const out = Buffer.alloc(12, 0xee);
    expect(writeDataHeader(out, 2, 0x123456, 0x01020304, false)).toBe(11);
    expect(hex(out)).toBe('eeee123456000001020304ee');
  });
});

describe('HEADERS + CONTINUATION', () => {
  const block = Buffer.alloc(250);
  for (let i = 0; i < block.length; i++) block[i] = i;

  function check(bytes: Buffer, maxFrameSize: number, endStream: boolean, length: number): void {
    const frames = readBack(bytes);
    const count = Math.max(1, Math.ceil(length / maxFrameSize));
    expect(frames.length).toBe(count);
    frames.forEach((f, k) => {
      expect(f.type).toBe(k === 0 ? FrameType.HEADERS : FrameType.CONTINUATION);
      expect(f.streamId).toBe(9);
      const last = k === count - 1;
      const expected = (k === 0 && endStream ? FrameFlag.END_STREAM : 0) | (last ? FrameFlag.END_HEADERS : 0);
      expect(f.flags).toBe(expected);
      expect(f.payload.length).toBeLessThanOrEqual(maxFrameSize);
    });
    expect(Buffer.concat(frames.map((f) => f.payload))).toEqual(block.subarray(0, length));
  }

  for (const [length, maxFrameSize] of [[250, 16384], [250, 100], [200, 100], [0, 100], [1, 1], [250, 7]] as const) {
    for (const endStream of [true, false]) {
      test(`a ${length}-octet block at max frame size ${maxFrameSize}, END_STREAM ${endStream}: copying writer`, () => {
        const out = Buffer.alloc(headersFramesSize(length, maxFrameSize) + 3, 0xee);
        const end = writeHeadersFrames(out, 3, 9, block, 0, length, endStream, maxFrameSize);
        expect(end).toBe(out.length);
        check(out.subarray(3), maxFrameSize, endStream, length);
      });
      test(`a ${length}-octet block at max frame size ${maxFrameSize}, END_STREAM ${endStream}: in place`, () => {
        const out = Buffer.alloc(headersFramesSize(length, maxFrameSize) + 3, 0xee);
        block.copy(out, 3 + 9, 0, length);
        const end = frameHeadersInPlace(out, 3, length, 9, endStream, maxFrameSize);
        expect(end).toBe(out.length);
        check(out.subarray(3), maxFrameSize, endStream, length);
      });
    }
  }
  test('-1 when the buffer cannot hold the frames', () => {
    expect(writeHeadersFrames(Buffer.alloc(250 + 9), 0, 1, block, 0, 250, true, 100)).toBe(-1);
    const out = Buffer.alloc(250 + 9 + 9);
    block.copy(out, 9);
    expect(frameHeadersInPlace(out, 0, 250, 1, true, 100)).toBe(-1);
    expect(headersFramesSize(250, 100)).toBe(250 + 27);
  });
});
