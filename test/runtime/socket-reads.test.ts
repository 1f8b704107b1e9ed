// readInto and readDirect (src/runtime/socket-reads.ts): on Node an accepted socket reads into a buffer of ours and a
// connected `onread` socket's reads skip Node's onStreamRead, both through our function on the handle, with
// pause/resume and 'end' as before, a TLS socket too (the decrypted bytes). With TSBAL_SOCKET_READS=stream, with a
// socket that has a setTimeout timer, and on Bun (this test process) they decline: 'data' events, or the socket's own
// onread callback, go on. The Node side runs in a Node 22 child (the runtime the SEA binary ships), over real
// loopback sockets.
import { describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE22 } from '../harness/dist.ts';
import { makePki } from '../harness/certs.ts';
import { REPO_ROOT } from '../harness/cli.ts';
import { readDirect, readInto } from '../../src/runtime/socket-reads.ts';

/** Runs in Node 22: a server that reads with readInto, pauses after the first read for 200 ms, and reports events. */
const NODE_SIDE = `
import { createServer, connect } from 'node:net';
import { readInto } from ${JSON.stringify(join(REPO_ROOT, 'src/runtime/socket-reads.ts'))};
const shared = Buffer.alloc(16);
const events = [];
const t0 = performance.now();
const at = () => Math.round(performance.now() - t0);
const timer = setTimeout(() => { console.log(JSON.stringify({ events, error: 'timed out' })); process.exit(1); }, 5000);
const server = createServer((s) => {
  let first = true;
  if (process.env.WITH_TIMEOUT === '1') s.setTimeout(60_000);
  const taken = readInto(s, shared, s, (owner, n, buf) => {
    events.push({ kind: 'read', text: buf.toString('latin1', 0, n), same: buf === shared, self: owner === s, at: at() });
    if (first) {
      first = false;
      s.pause();
      setTimeout(() => { events.push({ kind: 'resume', at: at() }); s.resume(); }, 200);
    }
  });
  events.push({ kind: 'taken', taken });
  s.on('data', (d) => events.push({ kind: 'data-event', text: d.toString('latin1') }));
  s.on('end', () => {
    events.push({ kind: 'end', at: at() });
    s.end();
    server.close();
    clearTimeout(timer);
    console.log(JSON.stringify({ events }));
  });
});
server.listen(0, '127.0.0.1', () => {
  const c = connect(server.address().port, '127.0.0.1', () => {
    c.write('hello');
    setTimeout(() => c.end('world, and more than sixteen bytes'), 50);
  });
  c.resume();
});
`;

/**
 * Runs in Node 22: a client socket made with `onread` into a 16-byte buffer, then given to readDirect; the server
 * writes 'hello', and 50 ms later the rest and its FIN. The callback pauses after the first read for 200 ms.
 */
const NODE_DIRECT_SIDE = `
import { createServer, connect } from 'node:net';
import { readDirect } from ${JSON.stringify(join(REPO_ROOT, 'src/runtime/socket-reads.ts'))};
const shared = Buffer.alloc(16);
const events = [];
const t0 = performance.now();
const at = () => Math.round(performance.now() - t0);
const timer = setTimeout(() => { console.log(JSON.stringify({ events, error: 'timed out' })); process.exit(1); }, 5000);
const server = createServer((s) => {
  s.write('hello');
  setTimeout(() => s.end('world, and more than sixteen bytes'), 50);
});
server.listen(0, '127.0.0.1', () => {
  const port = server.address().port;
  const c = connect({
    port,
    host: '127.0.0.1',
    onread: { buffer: shared, callback: (n, buf) => { events.push({ kind: 'onread-callback', text: buf.toString('latin1', 0, n) }); return true; } },
  });
  const owner = { name: 'owner' };
  let first = true;
  const taken = readDirect(c, shared, owner, (o, n, buf) => {
    events.push({ kind: 'read', text: buf.toString('latin1', 0, n), same: buf === shared, owner: o === owner, at: at() });
    if (first) {
      first = false;
      c.pause();
      setTimeout(() => { events.push({ kind: 'resume', at: at() }); c.resume(); }, 200);
    }
  });
  events.push({ kind: 'taken', taken });
  const plainSocket = connect(port, '127.0.0.1');
  plainSocket.on('error', () => {});
  const plain = readDirect(plainSocket, shared, owner, () => {});
  plainSocket.destroy();
  const otherSocket = connect({ port, host: '127.0.0.1', onread: { buffer: Buffer.alloc(16), callback: () => true } });
  otherSocket.on('error', () => {});
  const otherBuffer = readDirect(otherSocket, shared, owner, () => {});
  otherSocket.destroy();
  c.on('data', () => events.push({ kind: 'data-event' }));
  c.on('end', () => {
    events.push({ kind: 'end', at: at() });
    c.end();
    server.close();
    clearTimeout(timer);
    console.log(JSON.stringify({ events, plain, otherBuffer }));
  });
});
`;

/**
 * Runs in Node 22: a TLS server whose accepted sockets read with readInto into a 4 KiB buffer. The client sends a
 * request head in three TLS records 40 ms apart (three reads), then a 40,000-byte body in one write (three TLS
 * records of at most 16 KiB, each more than the buffer holds), then closes; the server pauses after its first read.
 */
const NODE_TLS_SIDE = (crt: string, key: string): string => `
import { createServer, connect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { readInto } from ${JSON.stringify(join(REPO_ROOT, 'src/runtime/socket-reads.ts'))};
const shared = Buffer.alloc(4096);
const events = [];
const chunks = [];
const t0 = performance.now();
const at = () => Math.round(performance.now() - t0);
const timer = setTimeout(() => { console.log(JSON.stringify({ events, error: 'timed out' })); process.exit(1); }, 8000);
const server = createServer({ cert: readFileSync(${JSON.stringify(crt)}), key: readFileSync(${JSON.stringify(key)}), allowHalfOpen: true }, (s) => {
  let first = true;
  const taken = readInto(s, shared, s, (owner, n, buf) => {
    chunks.push(Buffer.from(buf.subarray(0, n)));
    events.push({ kind: 'read', n, same: buf === shared, self: owner === s, at: at() });
    if (first) {
      first = false;
      s.pause();
      setTimeout(() => { events.push({ kind: 'resume', at: at() }); s.resume(); }, 200);
    }
  });
  events.push({ kind: 'taken', taken, encrypted: s.encrypted === true });
  s.on('data', () => events.push({ kind: 'data-event' }));
  s.on('end', () => {
    events.push({ kind: 'end', at: at() });
    s.end('bye');
  });
  s.on('close', () => {
    server.close();
    clearTimeout(timer);
    const all = Buffer.concat(chunks);
    console.log(JSON.stringify({ events, head: all.toString('latin1', 0, all.indexOf('\\r\\n\\r\\n') + 4), body: all.length - all.indexOf('\\r\\n\\r\\n') - 4, bodyOk: all.subarray(all.indexOf('\\r\\n\\r\\n') + 4).every((b, i) => b === 97 + (i % 26)) }));
  });
});
const body = Buffer.alloc(40000);
for (let i = 0; i < body.length; i++) body[i] = 97 + (i % 26);
server.listen(0, '127.0.0.1', () => {
  const c = connect({ port: server.address().port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
    const parts = ['POST /up', 'load HTTP/1.1\\r\\nHost: t\\r\\n', 'Content-Length: 40000\\r\\n\\r\\n'];
    parts.forEach((p, i) => setTimeout(() => c.write(p), 40 * i));
    setTimeout(() => c.end(body), 40 * parts.length);
  });
  c.on('data', () => {});
  c.on('error', () => {});
});
`;

describe('readInto and readDirect', () => {
  test('on Node 22 a TLS socket reads its decrypted bytes into the given buffer: a head split over three records, a body of records larger than the buffer, pause, end', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbal-socket-reads-tls-'));
    const pki = makePki();
    try {
      const leaf = pki.issue('reads', ['127.0.0.1']);
      const script = join(dir, 'node-tls-side.ts');
      writeFileSync(script, NODE_TLS_SIDE(leaf.crt, leaf.key));
      const r = spawnSync(NODE22, ['--experimental-strip-types', '--no-warnings', script], { encoding: 'utf8', timeout: 20_000 });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { events: Array<Record<string, unknown>>; head: string; body: number; bodyOk: boolean };
      expect(out.events[0]).toEqual({ kind: 'taken', taken: true, encrypted: true });
      expect(out.events.some((e) => e.kind === 'data-event')).toBe(false);
      const reads = out.events.filter((e) => e.kind === 'read');
      expect(reads.every((e) => e.same === true && e.self === true && (e.n as number) <= 4096)).toBe(true);
      // The head came in three records, so in at least three reads; the body needed at least 40000 / 4096 more.
      expect(reads.length).toBeGreaterThanOrEqual(3 + Math.ceil(40000 / 4096));
      expect(out.head).toBe('POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 40000\r\n\r\n');
      expect(out.body).toBe(40000);
      expect(out.bodyOk).toBe(true);
      // Paused after the first read (the first record, 40 ms before the next was sent): nothing until resume.
      const resume = out.events.find((e) => e.kind === 'resume')!;
      expect(reads[0]!.n).toBe('POST /up'.length);
      expect(reads.slice(1).every((e) => (e.at as number) >= (resume.at as number))).toBe(true);
      expect(out.events[out.events.length - 1]!.kind).toBe('end');
    } finally {
      pki.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** Runs a Node side in a Node 22 child with `env`; returns its last line, parsed. */
  function runNodeSide<T>(source: string, env: Record<string, string> = {}): T {
    const dir = mkdtempSync(join(tmpdir(), 'tsbal-socket-reads-'));
    try {
      const script = join(dir, 'node-side.ts');
      writeFileSync(script, source);
      const r = spawnSync(NODE22, ['--experimental-strip-types', '--no-warnings', script], {
        encoding: 'utf8',
        timeout: 15_000,
        env: { ...process.env, ...env },
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('on Node 22 an accepted socket reads into the given buffer (no data events), pause holds reads until resume, end still comes', () => {
    const { events } = runNodeSide<{ events: Array<Record<string, unknown>> }>(NODE_SIDE);
    expect(events[0]).toEqual({ kind: 'taken', taken: true });
    expect(events.some((e) => e.kind === 'data-event')).toBe(false);
    const reads = events.filter((e) => e.kind === 'read');
    expect(reads.every((e) => e.same === true && e.self === true)).toBe(true);
    // Every byte arrives, at most 16 (the buffer's size) per read, in order.
    expect(reads.map((e) => e.text).join('')).toBe('helloworld, and more than sixteen bytes');
    expect(reads.every((e) => (e.text as string).length <= 16)).toBe(true);
    // Paused after the first read: nothing more until resume, though the rest was sent 50 ms in.
    const resume = events.find((e) => e.kind === 'resume')!;
    expect(reads[0]!.text).toBe('hello');
    expect(reads.slice(1).every((e) => (e.at as number) >= (resume.at as number))).toBe(true);
    expect(events[events.length - 1]!.kind).toBe('end');
  });

  for (const [why, env] of [
    ['with TSBAL_SOCKET_READS=stream', { TSBAL_SOCKET_READS: 'stream' }],
    ['for a socket with a setTimeout timer (which only Node\'s own read callback refreshes)', { WITH_TIMEOUT: '1' }],
  ] as const) {
    test(`on Node 22 readInto declines ${why}, and every byte comes as data events, then end`, () => {
      const { events } = runNodeSide<{ events: Array<Record<string, unknown>> }>(NODE_SIDE, env);
      expect(events[0]).toEqual({ kind: 'taken', taken: false });
      expect(events.some((e) => e.kind === 'read')).toBe(false);
      const data = events.filter((e) => e.kind === 'data-event');
      expect(data.map((e) => e.text).join('')).toBe('helloworld, and more than sixteen bytes');
      expect(events[events.length - 1]!.kind).toBe('end');
    });
  }

  test('on Node 22 readDirect hands an onread socket\'s reads to the given callback (not its onread callback), with pause, resume and end', () => {
    const out = runNodeSide<{ events: Array<Record<string, unknown>>; plain: boolean; otherBuffer: boolean }>(NODE_DIRECT_SIDE);
    const events = out.events;
    expect(events[0]).toEqual({ kind: 'taken', taken: true });
    // Declined, changing nothing: a socket without onread, and an onread socket reading into another buffer.
    expect(out.plain).toBe(false);
    expect(out.otherBuffer).toBe(false);
    expect(events.some((e) => e.kind === 'onread-callback' || e.kind === 'data-event')).toBe(false);
    const reads = events.filter((e) => e.kind === 'read');
    expect(reads.every((e) => e.same === true && e.owner === true)).toBe(true);
    expect(reads.map((e) => e.text).join('')).toBe('helloworld, and more than sixteen bytes');
    expect(reads.every((e) => (e.text as string).length <= 16)).toBe(true);
    const resume = events.find((e) => e.kind === 'resume')!;
    expect(reads[0]!.text).toBe('hello');
    expect(reads.slice(1).every((e) => (e.at as number) >= (resume.at as number))).toBe(true);
    expect(events[events.length - 1]!.kind).toBe('end');
  });

  test('on Node 22 with TSBAL_SOCKET_READS=stream readDirect declines, and the onread callback gets every byte', () => {
    const { events } = runNodeSide<{ events: Array<Record<string, unknown>> }>(NODE_DIRECT_SIDE, { TSBAL_SOCKET_READS: 'stream' });
    expect(events[0]).toEqual({ kind: 'taken', taken: false });
    expect(events.some((e) => e.kind === 'read' || e.kind === 'data-event')).toBe(false);
    const reads = events.filter((e) => e.kind === 'onread-callback');
    expect(reads.map((e) => e.text).join('')).toBe('helloworld, and more than sixteen bytes');
    expect(events[events.length - 1]!.kind).toBe('end');
  });

  test('on Bun it declines, and the socket keeps its data events', async () => {
    const got = await new Promise<{ taken: boolean; text: string }>((resolve, reject) => {
      const server = createServer((s: Socket) => {
        const taken = readInto(s, Buffer.alloc(16), s, () => reject(new Error('callback called on Bun')));
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString('latin1')));
        s.on('end', () => {
          s.end();
          server.close();
          resolve({ taken, text });
        });
      });
      server.listen(0, '127.0.0.1', () => {
        const port = (server.address() as { port: number }).port;
        const c = connect(port, '127.0.0.1', () => c.end('hello'));
        c.resume();
      });
      setTimeout(() => reject(new Error('no answer in 5 s')), 5000).unref();
    });
    expect(got).toEqual({ taken: false, text: 'hello' });
  });

  test('on Bun readDirect declines, and the onread callback given to connect gets every byte', async () => {
    const got = await new Promise<{ taken: boolean; text: string }>((resolve, reject) => {
      const server = createServer((s: Socket) => s.end('hello from the server'));
      server.listen(0, '127.0.0.1', () => {
        const port = (server.address() as { port: number }).port;
        const shared = Buffer.alloc(16);
        let text = '';
        const c = connect({
          port,
          host: '127.0.0.1',
          onread: {
            buffer: shared,
            callback: (n: number, buf: Uint8Array) => {
              text += Buffer.from(buf.buffer, buf.byteOffset, n).toString('latin1');
              return true;
            },
          },
        });
        const taken = readDirect(c, shared, c, () => reject(new Error('readDirect callback called on Bun')));
        c.on('end', () => {
          c.end();
          server.close();
          resolve({ taken, text });
        });
      });
      setTimeout(() => reject(new Error('no answer in 5 s')), 5000).unref();
    });
    expect(got).toEqual({ taken: false, text: 'hello from the server' });
  });
});
