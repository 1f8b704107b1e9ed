// An HTTP/2 client that opens its window to nothing and never raises it (a slow-read attack: every stream keeps a
// backend connection and buffered response), against `tsbal run` as shipped, under Node and under Bun: the stalled
// stream is reset once idle_timeout (2 s) passed without progress, as a stalled HTTP/1.1 reader is cut, and the
// connection, idle then, is closed with GOAWAY after idle_timeout more.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect } from 'node:net';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProcHandle } from '../../harness/proc.ts';
import { freePort } from '../../harness/ports.ts';
import { namedBackend, RUNTIMES, startTsbal, stopTsbal, type NamedBackend } from './daemon.ts';
import { block, frame, settingsPayload, type Frame } from './wire-kit.ts';
import { FrameType as FRAME, SettingId as SETTING } from '../../../src/proxy/h2/frame-writer.ts';


let be: NamedBackend;
let dir: string;

beforeAll(async () => {
  be = await namedBackend('be1');
  dir = mkdtempSync(join(tmpdir(), 'tsbal-h2-stall-'));
});
afterAll(async () => {
  await be?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(RUNTIMES)('HTTP/2 client that never opens its window, tsbal under %p', (rt) => {
  let port: number;
  let proc: ProcHandle | undefined;

  beforeAll(async () => {
    port = await freePort();
    const conf = join(dir, `stall-${rt.name}.conf`);
    writeFileSync(conf, `CREATE POOL p
  POOL p ADD 127.0.0.1:${be.port}
CREATE SERVICE h2c
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
  SET http2_cleartext = on
  SET idle_timeout = 2
ENABLE h2c
`);
    proc = await startTsbal(rt, conf, [port], 'stall');
  }, 40_000);
  afterAll(() => stopTsbal(proc));

  test('a stream whose window stays 0 is reset after idle_timeout; the idle connection then gets GOAWAY and is closed', async () => {
    const t0 = performance.now();
    const seen: Array<{ frame: Frame; at: number }> = [];
    const socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 15_000);
      socket.on('connect', () => socket.write(Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
        frame(FRAME.SETTINGS, 0, 0, settingsPayload([SETTING.INITIAL_WINDOW_SIZE, 0])),
        frame(FRAME.SETTINGS, 1, 0),
        frame(FRAME.HEADERS, 5, 1, block([':method', 'GET', ':scheme', 'http', ':authority', 'h2.test', ':path', '/bytes/1000000'])),
      ])));
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
          const len = buf.readUIntBE(0, 3);
          seen.push({ frame: { type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5), payload: buf.subarray(9, 9 + len) }, at: performance.now() - t0 });
          buf = buf.subarray(9 + len);
        }
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    socket.destroy();
    const rst = seen.find((s) => s.frame.type === FRAME.RST_STREAM && s.frame.stream === 1);
    const goaway = seen.find((s) => s.frame.type === FRAME.GOAWAY);
    expect({ answered: seen.some((s) => s.frame.type === FRAME.HEADERS && s.frame.stream === 1), rst: rst !== undefined, goaway: goaway?.frame.payload.readUInt32BE(4) ?? null }).toEqual({ answered: true, rst: true, goaway: 0 });
    // Reset once idle_timeout (2 s, checked every 0.1 s) passed without progress; GOAWAY idle_timeout after that.
    expect(rst!.at).toBeGreaterThan(1_800);
    expect(rst!.at).toBeLessThan(5_000);
    expect(goaway!.at - rst!.at).toBeGreaterThan(1_500);
    expect(goaway!.at).toBeLessThan(10_000);
  }, 30_000);
});
