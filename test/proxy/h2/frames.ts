// A raw HTTP/2 client for what well-behaved clients never do: open more streams than the server allows. It speaks
// frames over TLS by hand (RFC 9113): the preface, SETTINGS both ways, then HEADERS frames whose header block is
// HPACK with static-table indexes and literals only (no dynamic table, no Huffman), and it reports every frame the
// server sends back.
import { connect, type TLSSocket } from 'node:tls';

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7 } as const;
export const NGHTTP2_CANCEL = 0x8;
const ACK = 0x1;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** A literal header field without indexing whose name is static-table entry `nameIndex` (< 15). */
function literal(nameIndex: number, value: string): Buffer {
  const v = Buffer.from(value, 'latin1');
  if (v.length >= 127) throw new Error('literal: value too long for a one-byte length');
  return Buffer.concat([Buffer.from([nameIndex, v.length]), v]);
}

/** HEADERS (END_STREAM | END_HEADERS) for `GET https://authority/path`. */
export function getHeaders(stream: number, authority: string, path: string): Buffer {
  // 0x82 :method GET, 0x87 :scheme https (static indexes 2 and 7); :authority is entry 1, :path entry 4.
  const block = Buffer.concat([Buffer.from([0x82, 0x87]), literal(1, authority), literal(4, path)]);
  return frame(FRAME.HEADERS, 0x5, stream, block);
}

/** RST_STREAM with `code`. */
export function rstStream(stream: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code, 0);
  return frame(FRAME.RST_STREAM, 0, stream, payload);
}

export interface RawH2 {
  socket: TLSSocket;
  frames: Frame[];
  send(data: Buffer): void;
  /** Resolves once `pred` holds for the frames received so far (or, with orClosed, the connection is gone). */
  until(pred: (frames: Frame[]) => boolean, timeoutMs: number, opts?: { orClosed?: boolean }): Promise<void>;
  close(): void;
}

/**
 * Connects with ALPN h2, sends the preface and an empty SETTINGS, acknowledges the server's SETTINGS, and resolves
 * once the server acknowledged ours: from then on the server's limits are in force, so a test can break them.
 */
export async function rawH2(port: number, servername: string): Promise<RawH2> {
  const socket = connect({ host: '127.0.0.1', port, servername, ALPNProtocols: ['h2'], rejectUnauthorized: false });
  const frames: Frame[] = [];
  let buf = Buffer.alloc(0);
  const waiters: Array<() => void> = [];
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const f: Frame = { type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) };
      buf = buf.subarray(9 + len);
      frames.push(f);
      if (f.type === FRAME.SETTINGS && (f.flags & ACK) === 0) socket.write(frame(FRAME.SETTINGS, ACK, 0, Buffer.alloc(0)));
    }
    for (const w of waiters.splice(0)) w();
  });
  socket.on('error', () => {});
  const h2: RawH2 = {
    socket,
    frames,
    send: (data) => void socket.write(data),
    until(pred, timeoutMs, opts = {}) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`raw h2: condition not met in ${timeoutMs} ms; frames: ${JSON.stringify(frames.map((f) => [f.type, f.flags, f.stream]))}`)), timeoutMs);
        const check = (): void => {
          if (pred(frames) || (opts.orClosed === true && socket.destroyed)) {
            clearTimeout(timer);
            resolve();
          } else if (socket.destroyed) {
            clearTimeout(timer);
            reject(new Error(`raw h2: connection closed; frames: ${JSON.stringify(frames.map((f) => [f.type, f.flags, f.stream]))}`));
          } else waiters.push(check);
        };
        socket.once('close', () => waiters.splice(0).forEach((w) => w()));
        check();
      });
    },
    close: () => socket.destroy(),
  };
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  if (socket.alpnProtocol !== 'h2') throw new Error(`raw h2: ALPN gave ${String(socket.alpnProtocol)}`);
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]));
  await h2.until((fs) => fs.some((f) => f.type === FRAME.SETTINGS && (f.flags & ACK) !== 0), 5_000);
  return h2;
}

/** The error code of a RST_STREAM or GOAWAY frame. */
export function errorCode(f: Frame): number {
  return f.type === FRAME.GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0);
}
