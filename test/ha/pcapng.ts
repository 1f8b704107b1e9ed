// A tiny pcapng reader for the golden captures: Ethernet/IPv4/UDP only, which is all the lab recorded.
import { readFileSync } from 'node:fs';

export interface UdpFrame {
  /** 1-based frame number, as tshark counts. */
  frame: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export interface RawFrame {
  frame: number;
  data: Uint8Array;
}

export function readFrames(path: string): RawFrame[] {
  const buf = readFileSync(path);
  const frames: RawFrame[] = [];
  let little = true;
  let off = 0;
  let frame = 0;
  while (off + 12 <= buf.length) {
    const typeLE = buf.readUInt32LE(off);
    if (typeLE === 0x0a0d0d0a) little = buf.readUInt32LE(off + 8) === 0x1a2b3c4d;
    const u32 = (at: number): number => (little ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
    const type = u32(off);
    const len = u32(off + 4);
    if (len < 12 || off + len > buf.length) throw new Error(`${path}: bad block length ${len} at ${off}`);
    if (type === 6) {
      const captured = u32(off + 20);
      frames.push({ frame: ++frame, data: buf.subarray(off + 28, off + 28 + captured) });
    } else if (type === 3) {
      const captured = Math.min(u32(off + 8), len - 16);
      frames.push({ frame: ++frame, data: buf.subarray(off + 12, off + 12 + captured) });
    }
    off += len;
  }
  return frames;
}

const ip = (b: Uint8Array, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** UDP datagrams to or from `port`, with their frame numbers. */
export function readUdp(path: string, port = 694): UdpFrame[] {
  const out: UdpFrame[] = [];
  for (const { frame, data } of readFrames(path)) {
    if (data.length < 42 || data[12] !== 0x08 || data[13] !== 0x00) continue;
    const ihl = (data[14]! & 0x0f) * 4;
    if (data[23] !== 17) continue;
    const u = 14 + ihl;
    const srcPort = (data[u]! << 8) | data[u + 1]!;
    const dstPort = (data[u + 2]! << 8) | data[u + 3]!;
    const udpLen = (data[u + 4]! << 8) | data[u + 5]!;
    if (srcPort !== port && dstPort !== port) continue;
    out.push({
      frame,
      src: ip(data, 26),
      dst: ip(data, 30),
      srcPort,
      dstPort,
      payload: data.subarray(u + 8, u + udpLen),
    });
  }
  return out;
}
