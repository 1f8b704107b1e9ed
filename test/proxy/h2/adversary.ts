// A raw HTTP/2 client over TLS for the adversarial tests: it sends whatever frames a test builds (any type, flags,
// stream, SETTINGS values), records every frame the server sends, and can stop reading (a client that never reads
// its responses). HPACK: static-table indexes and literals only.
import { connect, type TLSSocket } from 'node:tls';
import { block, frame, settingsPayload, type Frame } from './wire-kit.ts';

export { block, frame, settingsPayload, type Frame };

export const request = (method: string, path: string, extra: string[] = []) =>
  [':method', method, ':scheme', 'https', ':authority', 'h2.test', ':path', path, ...extra];

export interface Adversary {
  socket: TLSSocket;
  frames: Frame[];
  send(data: Buffer): boolean;
  until(pred: (frames: Frame[]) => boolean, timeoutMs: number): Promise<void>;
  close(): void;
}

/** Connects (ALPN h2), sends the preface and SETTINGS(`settings`), ACKs the server's SETTINGS, waits for its ACK. */
export async function adversary(port: number, settings: number[] = [], opts: { ackSettings?: boolean } = {}): Promise<Adversary> {
  const socket = connect({ host: '127.0.0.1', port, servername: 'h2.test', ALPNProtocols: ['h2'], rejectUnauthorized: false });
  const frames: Frame[] = [];
  let buf: Buffer = Buffer.alloc(0);
  const waiters: Array<() => void> = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const f: Frame = { type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) };
      buf = buf.subarray(9 + len);
      frames.push(f);
      if (f.type === 4 && (f.flags & 1) === 0 && opts.ackSettings !== false) socket.write(frame(4, 1, 0));
    }
    wake();
  });
  socket.on('error', () => {});
  socket.on('close', wake);
  const a: Adversary = {
    socket,
    frames,
    send: (data) => socket.write(data),
    until(pred, timeoutMs) {
      return new Promise((resolve, reject) => {
        const seen = () => JSON.stringify(frames.slice(-20).map((f) => [f.type, f.flags, f.stream]));
        const timer = setTimeout(() => reject(new Error(`adversary: condition not met in ${timeoutMs} ms; last frames: ${seen()}`)), timeoutMs);
        const check = (): void => {
          if (pred(frames)) {
            clearTimeout(timer);
            resolve();
          } else if (socket.destroyed) {
            clearTimeout(timer);
            reject(new Error(`adversary: connection closed; last frames: ${seen()}`));
          } else waiters.push(check);
        };
        check();
      });
    },
    close: () => socket.destroy(),
  };
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, settingsPayload(settings))]));
  await a.until((fs) => fs.some((f) => f.type === 4 && (f.flags & 1) !== 0), 5_000);
  return a;
}

export const goawayCode = (frames: Frame[]): number | null => {
  const g = frames.find((f) => f.type === 7);
  return g === undefined ? null : g.payload.readUInt32BE(4);
};

export const rstCode = (frames: Frame[], id: number): number | null => {
  const f = frames.find((x) => x.type === 3 && x.stream === id);
  return f === undefined ? null : f.payload.readUInt32BE(0);
};
