// tsbal only: a client that goes away in the middle of a reproxied body costs nothing lasting: the file descriptor
// or the URL target's connection is let go, and the service keeps answering; a large reproxied file arrives whole.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOOPBACK, establishedTo, sleep } from '../harness/ports.ts';
import { connectRaw, describeOutcome } from '../harness/rawclient.ts';
import type { RecordedRequest, Reply } from '../harness/rawbackend.ts';
import { type Rig, startRigWithConf, TSBAL_RUNS } from './diffkit.ts';

const BIG = 8 * 1024 * 1024;
let dir = '';
let file = '';
/** 32 MiB: more than the socket buffers hold, so a client that does not read holds tsbal mid-body. */
let huge = '';
let targetPort = 0;
let rig: Rig | null = null;
const big = Buffer.alloc(BIG, 0x61);

function app(req: RecordedRequest): Reply {
  const common = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n';
  if (req.target === '/huge') return { bytes: `${common}X-Reproxy-File: ${huge}\r\n\r\n` };
  if (req.target === '/file') return { bytes: `${common}X-Reproxy-File: ${file}\r\n\r\n` };
  const to = req.target === '/hugeurl' || req.target === '/stall' ? req.target : '/big';
  return { bytes: `${common}X-Reproxy-URL: http://${LOOPBACK}:${targetPort}${to}\r\n\r\n` };
}
const hugeBody = Buffer.alloc(32 * 1024 * 1024, 0x63);
const target = (req: RecordedRequest): Reply => {
  // Head and part of the body, then nothing (the connection stays open).
  if (req.target === '/stall') return { bytes: 'HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\nonly this much' };
  const body = req.target === '/hugeurl' ? hugeBody : big;
  return { bytes: Buffer.concat([Buffer.from(`HTTP/1.0 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]), close: true };
};

/** Descriptors open on the huge file in the tsbal daemon's process group (the harness's pid is the group's). */
function openOnFile(pgid: number): number {
  let n = 0;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'latin1');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
      for (const fd of readdirSync(`/proc/${p}/fd`)) if (readlinkSync(`/proc/${p}/fd/${fd}`) === huge) n++;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}

beforeAll(async () => {
  if (!TSBAL_RUNS) return;
  dir = mkdtempSync(join(tmpdir(), 'tsbal-reproxy-abort-'));
  file = join(dir, 'big.bin');
  writeFileSync(file, big);
  huge = join(dir, 'huge.bin');
  writeFileSync(huge, Buffer.alloc(32 * 1024 * 1024, 0x62));
  rig = await startRigWithConf(
    'tsbal',
    (port, [appPort, tPort]) => {
      targetPort = tPort!;
      return (
        `CREATE POOL p\n  POOL p ADD ${LOOPBACK}:${appPort}\nCREATE SERVICE s\n  SET listen = ${LOOPBACK}:${port}\n  SET role = reverse_proxy\n` +
        '  SET pool = p\n  SET persist_client = on\n  SET persist_backend = on\n  SET enable_reproxy = on\n  SET idle_timeout = 2\nENABLE s\n'
      );
    },
    [{ name: 'app', reply: app }, { name: 'target', reply: target }],
  );
});
afterAll(async () => {
  await rig?.stop();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!TSBAL_RUNS)('reproxy and a client that leaves', () => {
  test('an 8 MiB reproxied file and URL body arrive whole, then the connection serves again', async () => {
    const conn = await connectRaw(rig!.proxy.port);
    try {
      for (const path of ['/file', '/url', '/file']) {
        conn.send(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
        const o = await conn.read({ timeoutMs: 15_000 });
        expect(o.kind, describeOutcome(o)).toBe('response');
        if (o.kind === 'response') expect(o.response.body.equals(big), `${path}: body of ${o.response.body.length} bytes`).toBe(true);
      }
    } finally {
      conn.close();
    }
  }, 30_000);

  test('closing mid-body releases the file and the target connection; the service still answers', async () => {
    const pid = rig!.proxy.pid;
    for (const path of ['/huge', '/hugeurl']) {
      const socket = connect({ host: LOOPBACK, port: rig!.proxy.port });
      await new Promise((r) => socket.once('connect', r));
      socket.pause();
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await sleep(300);
      // The client reads nothing: tsbal is held mid-body, the file open (so the check below can fail).
      if (path === '/huge') expect(openOnFile(pid), 'the reproxied file is open while it is being sent').toBe(1);
      else expect(establishedTo(targetPort), 'the URL target connection is open while its body is relayed').toBe(1);
      socket.destroy();
    }
    let left = -1;
    for (let i = 0; i < 40; i++) {
      left = openOnFile(pid);
      if (left === 0) break;
      await sleep(50);
    }
    expect(left, 'descriptors still open on the reproxied file').toBe(0);
    for (let i = 0; i < 40 && establishedTo(targetPort) > 0; i++) await sleep(50);
    expect(establishedTo(targetPort), 'connections to the URL target left open').toBe(0);
    expect(rig!.proxy.exitStatus(), rig!.proxy.output()).toBeNull();
    const conn = await connectRaw(rig!.proxy.port);
    try {
      conn.send('GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n');
      const o = await conn.read();
      expect(o.kind === 'response' ? o.response.status : describeOutcome(o)).toBe(206);
    } finally {
      conn.close();
    }
  });

  test('a URL target that stalls mid-body: the client is cut after idle_timeout, never left hanging', async () => {
    const conn = await connectRaw(rig!.proxy.port);
    try {
      const t0 = Date.now();
      conn.send('GET /stall HTTP/1.1\r\nHost: x\r\n\r\n');
      const o = await conn.read({ timeoutMs: 8000 });
      expect(o.kind, describeOutcome(o)).toBe('closed');
      if (o.kind === 'closed') expect(o.received.toString('latin1')).toContain('only this much');
      expect(Date.now() - t0, 'cut by idle_timeout (2 s), not at once').toBeGreaterThanOrEqual(1500);
    } finally {
      conn.close();
    }
  }, 15_000);
});
