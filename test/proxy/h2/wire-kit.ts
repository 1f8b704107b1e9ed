// HTTP/2 frames by hand for the tests (RFC 9113 4.1): building what a client sends, any type, flags, stream or
// SETTINGS values, and reading back what the server wrote. HPACK blocks are literals without indexing with new names
// and no Huffman, which any decoder must take.
import { FrameFlag as FLAG, FrameType as FRAME } from '../../../src/proxy/h2/frame-writer.ts';

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** SETTINGS payload from flat id,value pairs. */
export function settingsPayload(pairs: number[]): Buffer {
  const b = Buffer.alloc(pairs.length * 3);
  for (let i = 0; i < pairs.length; i += 2) {
    b.writeUInt16BE(pairs[i]!, i * 3);
    b.writeUInt32BE(pairs[i + 1]!, i * 3 + 2);
  }
  return b;
}

export const settings = (pairs: number[]): Buffer => frame(FRAME.SETTINGS, 0, 0, settingsPayload(pairs));

/** A header block of literals without indexing, new names, no Huffman. */
export function block(fields: string[]): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const name = Buffer.from(fields[i]!, 'latin1');
    const value = Buffer.from(fields[i + 1]!, 'latin1');
    if (name.length > 126 || value.length > 126) throw new Error('block: short strings only');
    parts.push(Buffer.from([0x00, name.length]), name, Buffer.from([value.length]), value);
  }
  return Buffer.concat(parts);
}

export const GET = (path = '/'): string[] => [':method', 'GET', ':scheme', 'https', ':authority', 'a.test', ':path', path];
export const POST = (length: number): string[] => [':method', 'POST', ':scheme', 'https', ':authority', 'a.test', ':path', '/up', 'content-length', String(length)];
export const headers = (id: number, fields: string[], flags: number = FLAG.END_HEADERS | FLAG.END_STREAM): Buffer => frame(FRAME.HEADERS, flags, id, block(fields));

export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** The frames in what the server wrote (whole frames only). */
export function parseFrames(buf: Buffer | null): Frame[] {
  const frames: Frame[] = [];
  if (buf === null) return frames;
  for (let at = 0; at < buf.length;) {
    const len = buf.readUIntBE(at, 3);
    frames.push({ type: buf[at + 3]!, flags: buf[at + 4]!, stream: buf.readUInt32BE(at + 5) & 0x7fffffff, payload: buf.subarray(at + 9, at + 9 + len) });
    at += 9 + len;
  }
  return frames;
}

/** The error code of the first GOAWAY, or null. */
export const goawayCode = (frames: Frame[]): number | null => {
  const g = frames.find((f) => f.type === FRAME.GOAWAY);
  return g === undefined ? null : g.payload.readUInt32BE(4);
};

/** The error code of stream `id`'s RST_STREAM, or null. */
export const rst = (frames: Frame[], id: number): number | null => {
  const f = frames.find((x) => x.type === FRAME.RST_STREAM && x.stream === id);
  return f === undefined ? null : f.payload.readUInt32BE(0);
};
