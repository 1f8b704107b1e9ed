// readInto (src/runtime/socket-reads.ts): an accepted socket reads into a buffer of ours on Node, with pause/resume
// and 'end' as before; on Bun (this test process) it declines and 'data' events go on. The Node side runs in a Node 22
// child (the runtime the SEA binary ships), over real loopback sockets.
import { describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE22 } from '../harness/dist.ts';
import { REPO_ROOT } from '../harness/cli.ts';
import { readInto } from '../../src/runtime/socket-reads.ts';

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
  const taken = readInto(s, shared, function (n, buf) {
    events.push({ kind: 'read', text: buf.toString('latin1', 0, n), same: buf === shared, self: this === s, at: at() });
    if (first) {
      first = false;
      s.pause();
      setTimeout(() => { events.push({ kind: 'resume', at: at() }); s.resume(); }, 200);
    }
  });
  events.push({ kind: 'taken', taken });
  s.on('data', () => events.push({ kind: 'data-event' }));
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

describe('readInto', () => {
  test('on Node 22 an accepted socket reads into the given buffer (no data events), pause holds reads until resume, end still comes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbal-socket-reads-'));
    try {
      const script = join(dir, 'node-side.ts');
      writeFileSync(script, NODE_SIDE);
      const r = spawnSync(NODE22, ['--experimental-strip-types', '--no-warnings', script], { encoding: 'utf8', timeout: 15_000 });
      expect(r.status).toBe(0);
      const { events } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { events: Array<Record<string, unknown>> };
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
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('on Bun it declines, and the socket keeps its data events', async () => {
    const got = await new Promise<{ taken: boolean; text: string }>((resolve, reject) => {
      const server = createServer((s: Socket) => {
        const taken = readInto(s, Buffer.alloc(16), () => reject(new Error('callback called on Bun')));
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
});
