// sendNow/sendHeld/sendAll (src/runtime/socket-writes.ts) over real loopback sockets: on Node 22 straight to the
// handle, with TSBAL_SOCKET_WRITES=stream (and on Bun, this test process) through the stream. Either way: held
// writes leave at the end of the turn in order, the stream's own writes and its FIN never overtake them, a write the
// kernel cannot take backs the socket up until 'drain', a close after such a write loses nothing, and a reset peer
// destroys the socket with a write error. Each scenario runs over plain TCP and over TLS (TLSWrap: one write in
// flight at a time, every write completing on a later turn).
import { afterEach, describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE22 } from '../harness/dist.ts';
import { REPO_ROOT } from '../harness/cli.ts';
import { DIRECT_WRITES_AVAILABLE, flushHeld, newWriteBatch, sendAll, sendHeld, sendNow, writesPending } from '../../src/runtime/socket-writes.ts';

/**
 * The scenarios, as a module both sides run: `ours` is the accepted socket written with the module, `peer` the
 * client that reads. Each returns what it observed; the test compares.
 */
const SCENARIOS = (modulePath: string, tlsFiles: { key: string; cert: string } | null) => `
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import { DIRECT_WRITES_AVAILABLE, flushHeld, newWriteBatch, sendAll, sendHeld, sendNow, writesPending } from ${JSON.stringify(modulePath)};

const TLS = ${JSON.stringify(tlsFiles)};
async function pair() {
  const server = TLS === null ? net.createServer() : tls.createServer({ key: fs.readFileSync(TLS.key), cert: fs.readFileSync(TLS.cert) });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise((r) => server.once(TLS === null ? 'connection' : 'secureConnection', r));
  // Over TLS the client runs on a TCP socket of its own, so that the peer can reset it.
  const raw = net.connect(server.address().port, '127.0.0.1');
  const peer = TLS === null ? raw : tls.connect({ socket: raw, rejectUnauthorized: false });
  const ours = await accepted;
  server.close();
  const reads = [];
  let ended = false;
  peer.on('data', (b) => reads.push(b));
  peer.on('end', () => (ended = true));
  peer.on('error', () => {});
  return { ours, peer, raw, reads, isEnded: () => ended, text: () => Buffer.concat(reads).toString('latin1') };
}
const turn = () => new Promise((r) => setImmediate(r));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond, ms = 10000) {
  const until = performance.now() + ms;
  while (!cond()) { if (performance.now() > until) return false; await sleep(5); }
  return true;
}

export async function heldInOrder() {
  const batch = newWriteBatch();
  const p = await pair();
  const ok1 = sendHeld(batch, p.ours, Buffer.from('one,'));
  const ok2 = sendHeld(batch, p.ours, Buffer.from('two,'));
  // The stream's own write in the same turn: it must not overtake the held bytes.
  p.ours.write('three,');
  sendHeld(batch, p.ours, Buffer.from('four,'));
  sendNow(p.ours, Buffer.from('five,'));
  sendAll(p.ours, [Buffer.from('six,'), Buffer.from('seven')]);
  const beforeTurn = p.reads.length;
  await turn();
  await waitFor(() => p.text().length >= 33);
  const r = { ok: ok1 && ok2, beforeTurn, text: p.text() };
  p.ours.destroy(); p.peer.destroy();
  return r;
}

export async function heldThenEnd() {
  const batch = newWriteBatch();
  const p = await pair();
  sendHeld(batch, p.ours, Buffer.from('response'));
  p.ours.end();
  await waitFor(p.isEnded);
  const r = { text: p.text(), ended: p.isEnded() };
  p.ours.destroy(); p.peer.destroy();
  return r;
}

export async function heldThenFlush() {
  const batch = newWriteBatch();
  const p = await pair();
  sendHeld(batch, p.ours, Buffer.from('now'));
  const pendingBefore = writesPending(p.ours) > 0;
  flushHeld(p.ours);
  const pendingAfter = writesPending(p.ours);
  // As the proxy closes (closeAfterFin): destroy when nothing is pending, else end and let it finish.
  if (pendingAfter === 0) p.ours.destroy();
  else p.ours.end();
  await waitFor(p.isEnded);
  return { pendingBefore, pendingAfter, text: p.text() };
}

export async function backpressure() {
  const p = await pair();
  p.peer.pause();
  const block = Buffer.alloc(1 << 20);
  let blocks = 0;
  let ok = true;
  while (ok && blocks < 256) {
    block.fill(blocks & 0xff);
    ok = sendNow(p.ours, Buffer.from(block));
    blocks++;
  }
  const pendingWhenFull = writesPending(p.ours) > 0;
  let drained = false;
  p.ours.once('drain', () => (drained = true));
  // (The kernel may still grow the peer's receive buffer meanwhile and drain early: only the order is pinned.)
  await sleep(200);
  p.peer.resume();
  const gotDrain = await waitFor(() => drained);
  const total = blocks << 20;
  await waitFor(() => p.reads.reduce((n, b) => n + b.length, 0) >= total);
  const all = Buffer.concat(p.reads);
  let inOrder = all.length === total;
  for (let i = 0; inOrder && i < blocks; i++) inOrder = all[i << 20] === (i & 0xff) && all[((i + 1) << 20) - 1] === (i & 0xff);
  const r = { backedUp: !ok, blocksUnder256: blocks < 256, pendingWhenFull, gotDrain, pendingAfter: writesPending(p.ours), inOrder };
  p.ours.destroy(); p.peer.destroy();
  return r;
}

export async function endAfterPendingWrite() {
  const p = await pair();
  p.peer.pause();
  const body = Buffer.alloc(32 << 20, 0x61);
  const ok = sendNow(p.ours, body);
  let finished = false;
  p.ours.on('finish', () => (finished = true));
  p.ours.end();
  await sleep(100);
  const finishedEarly = finished;
  p.peer.resume();
  await waitFor(p.isEnded, 20000);
  const r = { backedUp: !ok, finishedEarly, bytes: p.reads.reduce((n, b) => n + b.length, 0), ended: p.isEnded() };
  p.ours.destroy(); p.peer.destroy();
  return r;
}

export async function peerReset() {
  const p = await pair();
  p.peer.pause();
  let error = null;
  let closed = false;
  p.ours.on('error', (e) => (error = { code: e.code, syscall: e.syscall }));
  p.ours.on('close', () => (closed = true));
  sendNow(p.ours, Buffer.alloc(32 << 20));
  p.raw.resetAndDestroy();
  await waitFor(() => closed);
  // Writes after the reset: refused quietly, as the stream refuses writes to a destroyed socket.
  const okAfter = sendNow(p.ours, Buffer.from('late'));
  return { error, closed, okAfter };
}

export async function run() {
  return {
    direct: DIRECT_WRITES_AVAILABLE,
    heldInOrder: await heldInOrder(),
    heldThenEnd: await heldThenEnd(),
    heldThenFlush: await heldThenFlush(),
    backpressure: await backpressure(),
    endAfterPendingWrite: await endAfterPendingWrite(),
    peerReset: await peerReset(),
  };
}
`;

type Results = Record<string, unknown> & { direct: boolean };

function runOnNode(env: Record<string, string>, overTls = false): Results {
  const dir = mkdtempSync(join(tmpdir(), 'tsbal-socket-writes-'));
  try {
    let tlsFiles: { key: string; cert: string } | null = null;
    if (overTls) {
      tlsFiles = { key: join(dir, 'key.pem'), cert: join(dir, 'cert.pem') };
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tlsFiles.key, '-out', tlsFiles.cert, '-subj', '/CN=localhost', '-days', '1'], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`);
    }
    writeFileSync(join(dir, 'scenarios.ts'), SCENARIOS(join(REPO_ROOT, 'src/runtime/socket-writes.ts'), tlsFiles));
    writeFileSync(join(dir, 'main.ts'), `import { run } from './scenarios.ts';\nconsole.log(JSON.stringify(await run()));\nprocess.exit(0);\n`);
    const r = spawnSync(NODE22, ['--experimental-strip-types', '--no-warnings', join(dir, 'main.ts')], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, ...env },
    });
    if (r.status !== 0) throw new Error(`node side exited ${r.status ?? r.signal}: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What every path must observe, direct or stream. */
function expectSameBehaviour(r: Results, overTls = false): void {
  expect(r.heldInOrder).toEqual({ ok: true, beforeTurn: 0, text: 'one,two,three,four,five,six,seven' });
  expect(r.heldThenEnd).toEqual({ text: 'response', ended: true });
  // TLS completes every write on a later turn (TLSWrap), so one write is still pending right after the flush.
  expect(r.heldThenFlush).toEqual({ pendingBefore: true, pendingAfter: overTls ? expect.any(Number) : 0, text: 'now' });
  if (overTls) expect((r.heldThenFlush as { pendingAfter: number }).pendingAfter).toBeGreaterThan(0);
  expect(r.backpressure).toEqual({
    backedUp: true,
    blocksUnder256: true,
    pendingWhenFull: true,
    gotDrain: true,
    pendingAfter: 0,
    inOrder: true,
  });
  expect(r.endAfterPendingWrite).toEqual({ backedUp: true, finishedEarly: false, bytes: 32 << 20, ended: true });
  const reset = r.peerReset as { error: { code: string; syscall: string } | null; closed: boolean; okAfter: boolean };
  expect(reset.closed).toBe(true);
  expect(reset.okAfter).toBe(false);
  expect(['EPIPE', 'ECONNRESET']).toContain(reset.error?.code ?? 'none');
  // Seen on the write in flight or on the read the socket also has going: the same destroy either way.
  expect(['read', 'write']).toContain(reset.error?.syscall ?? 'none');
}

describe('socket writes on Node 22', () => {
  test('straight to the handle: held writes in order at the end of the turn, back-pressure, close and reset as the stream', () => {
    const r = runOnNode({});
    expect(r.direct).toBe(true);
    expectSameBehaviour(r);
  }, 90_000);

  test('TSBAL_SOCKET_WRITES=stream takes the stream path and behaves the same', () => {
    const r = runOnNode({ TSBAL_SOCKET_WRITES: 'stream' });
    expect(r.direct).toBe(false);
    expectSameBehaviour(r);
  }, 90_000);

  test('TLS straight to the TLSWrap, one write at a time: in order, back-pressure, close_notify after a pending write, reset', () => {
    const r = runOnNode({}, true);
    expect(r.direct).toBe(true);
    expectSameBehaviour(r, true);
  }, 90_000);

  test('TLS with TSBAL_SOCKET_WRITES=stream behaves the same', () => {
    const r = runOnNode({ TSBAL_SOCKET_WRITES: 'stream' }, true);
    expect(r.direct).toBe(false);
    expectSameBehaviour(r, true);
  }, 90_000);
});

describe('socket writes on Bun', () => {
  let cleanup: (() => void) | null = null;
  afterEach(() => {
    cleanup?.();
    cleanup = null;
  });

  test('falls back to the stream: held writes still leave together at the end of the turn, in order', async () => {
    expect(DIRECT_WRITES_AVAILABLE).toBe(false);
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const ours = await accepted;
    const reads: Buffer[] = [];
    peer.on('data', (b: Buffer) => reads.push(b));
    cleanup = () => {
      ours.destroy();
      peer.destroy();
      server.close();
    };
    const batch = newWriteBatch();
    sendHeld(batch, ours, Buffer.from('one,'));
    sendHeld(batch, ours, Buffer.from('two,'));
    sendAll(ours, [Buffer.from('three,'), Buffer.from('four')]);
    // Still in the stream (corked), not yet handed to the kernel.
    expect(writesPending(ours)).toBeGreaterThan(0);
    await new Promise((r) => setImmediate(r));
    expect(ours.writableCorked).toBe(0);
    for (let i = 0; i < 200 && Buffer.concat(reads).length < 18; i++) await new Promise((r) => setTimeout(r, 5));
    expect(Buffer.concat(reads).toString()).toBe('one,two,three,four');
    sendNow(ours, Buffer.from(',five'));
    flushHeld(ours);
    for (let i = 0; i < 200 && Buffer.concat(reads).length < 23; i++) await new Promise((r) => setTimeout(r, 5));
    expect(Buffer.concat(reads).toString()).toBe('one,two,three,four,five');
  });
});
