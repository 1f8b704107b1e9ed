// An HTTP/2 client that half-closes (FIN after its last frames, as `printf ... | nc -N` does) against `tsbal run`
// as shipped, under Node and under Bun, over h2c and over TLS: the streams it finished sending are answered, one
// whose body was still coming is reset, one whose response outgrows the client's window (which can no longer be
// raised) is reset once it stalls, and the connection closes right after (as HAProxy 2.6 does), not when
// idle_timeout (30 s here) runs out.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePki, type Leaf, type TestPki } from '../../harness/certs.ts';
import type { ProcHandle } from '../../harness/proc.ts';
import { freePort } from '../../harness/ports.ts';
import { namedBackend, RUNTIMES, startTsbal, stopTsbal, type NamedBackend } from './daemon.ts';
import { block, frame, settingsPayload, u32, type Frame } from './wire-kit.ts';
import { ErrorCode as ERR, FrameFlag as FLAG, FrameType as FRAME } from '../../../src/proxy/h2/frame-writer.ts';


let pki: TestPki;
let leaf: Leaf;
let be: NamedBackend;

beforeAll(async () => {
  pki = makePki();
  leaf = pki.issue('site', ['h2.test']);
  be = await namedBackend('be1', 400);
});
afterAll(async () => {
  await be?.close();
  pki?.cleanup();
});

const req = (method: string, path: string, extra: string[] = []) => block([':method', method, ':scheme', 'http', ':authority', 'h2.test', ':path', path, ...extra]);

/** Everything the client sends before its FIN: two finished GETs (one slow) and a POST whose body stops short. */
function script(): Buffer {
  return Buffer.concat([
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    frame(FRAME.SETTINGS, 0, 0, settingsPayload([])),
    frame(FRAME.SETTINGS, 1, 0),
    // The connection window raised far enough for everything: only the download's stream window (64 KiB) is short.
    frame(FRAME.WINDOW_UPDATE, 0, 0, u32(16 << 20)),
    frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, req('GET', '/slow/one')),
    frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, req('GET', '/two')),
    frame(FRAME.HEADERS, FLAG.END_HEADERS, 5, req('POST', '/upload', ['content-length', '10'])),
    frame(FRAME.DATA, 0, 5, Buffer.from('abc')),
    // A response past the client's 64 KiB window: the WINDOW_UPDATE it needs can no longer come.
    frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 7, req('GET', '/bytes/1000000')),
  ]);
}

interface Outcome {
  ms: number;
  ended: boolean;
  frames: Frame[];
}

/** Sends the script, half-closes, and reads until the server closes (or 20 s). */
function halfClose(socket: Socket, ready: string): Promise<Outcome> {
  const t0 = performance.now();
  let buf = Buffer.alloc(0);
  let ended = false;
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      const frames: Frame[] = [];
      for (let at = 0; at + 9 <= buf.length;) {
        const len = buf.readUIntBE(at, 3);
        frames.push({ type: buf[at + 3]!, flags: buf[at + 4]!, stream: buf.readUInt32BE(at + 5) & 0x7fffffff, payload: buf.subarray(at + 9, at + 9 + len) });
        at += 9 + len;
      }
      socket.destroy();
      resolve({ ms: performance.now() - t0, ended, frames });
    };
    const timer = setTimeout(done, 20_000);
    socket.once(ready, () => socket.end(script()));
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
    });
    socket.on('end', () => {
      ended = true;
    });
    socket.on('error', () => {});
    socket.on('close', done);
  });
}

/** What each stream got: `200 <body>` for an answer, `rst <code>` for a reset; and the GOAWAY. */
function summary(o: Outcome): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of o.frames) {
    const key = f.type === FRAME.GOAWAY ? 'goaway' : `stream ${f.stream}`;
    if (f.type === FRAME.HEADERS) out[key] = 'answered';
    else if (f.type === FRAME.DATA) out[key] = `${out[key] ?? ''} ${f.payload.toString().trim()}${(f.flags & FLAG.END_STREAM) !== 0 ? ' (end)' : ''}`.trim();
    else if (f.type === FRAME.RST_STREAM) out[key] = `rst ${f.payload.readUInt32BE(0)}`;
    else if (f.type === FRAME.GOAWAY) out[key] = `last ${f.payload.readUInt32BE(0)} code ${f.payload.readUInt32BE(4)}`;
  }
  return out;
}

const EXPECTED = {
  'stream 1': 'answered be1 /slow/one (end)',
  'stream 3': 'answered be1 /two (end)',
  'stream 5': `rst ${ERR.CANCEL}`,
  'stream 7': `rst ${ERR.CANCEL}`,
  goaway: 'last 7 code 0',
};

describe.each(RUNTIMES)('HTTP/2 client that half-closes, tsbal under %p', (rt) => {
  let plain: number;
  let tls: number;
  let proc: ProcHandle | undefined;

  beforeAll(async () => {
    [plain, tls] = [await freePort(), await freePort()];
    const conf = join(pki.dir, `half-close-${rt.name}.conf`);
    writeFileSync(conf, `CREATE POOL p
  POOL p ADD 127.0.0.1:${be.port}
CREATE SERVICE h2c
  SET listen = 127.0.0.1:${plain}
  SET role = reverse_proxy
  SET pool = p
  SET http2_cleartext = on
  SET idle_timeout = 30
ENABLE h2c
CREATE SERVICE tls
  SET listen = 127.0.0.1:${tls}
  SET role = reverse_proxy
  SET pool = p
  SET enable_ssl = on
  SET ssl_cert_file = ${leaf.crt}
  SET ssl_key_file = ${leaf.key}
  SET idle_timeout = 30
ENABLE tls
`);
    proc = await startTsbal(rt, conf, [plain, tls], 'half-close');
  }, 40_000);
  afterAll(() => stopTsbal(proc));

  test('h2c: the finished streams are answered, the unfinished upload and the stalled download reset (CANCEL), GOAWAY, and the connection closes at once, not after idle_timeout', async () => {
    const o = await halfClose(netConnect(plain, '127.0.0.1'), 'connect');
    expect({ ...summary(o), ended: o.ended }).toEqual({ ...EXPECTED, ended: true });
    // The slow answer takes 400 ms; idle_timeout is 30 s.
    expect(o.ms).toBeLessThan(5_000);
  }, 30_000);

  test('over TLS (close_notify, then FIN): the same', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: tls, servername: 'h2.test', ALPNProtocols: ['h2'], rejectUnauthorized: false });
    const o = await halfClose(socket, 'secureConnect');
    expect({ ...summary(o), ended: o.ended }).toEqual({ ...EXPECTED, ended: true });
    expect(o.ms).toBeLessThan(5_000);
  }, 30_000);
});
