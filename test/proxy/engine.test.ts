import { afterEach, describe, expect, test } from 'bun:test';
import net from 'node:net';
import { holdWrites, newEngine } from '../../src/proxy/engine.ts';
import { log } from '../../src/log.ts';

/** A connected pair on 127.0.0.1: `ours` (the side that writes) and `peer`, which records what it reads. */
async function socketPair(): Promise<{ ours: net.Socket; peer: net.Socket; reads: Buffer[]; ended: Promise<void>; close(): void }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const peer = net.connect(port, '127.0.0.1');
  const ours = await accepted;
  const reads: Buffer[] = [];
  peer.on('data', (b: Buffer) => reads.push(b));
  const ended = new Promise<void>((resolve) => peer.once('end', resolve));
  return {
    ours,
    peer,
    reads,
    ended,
    close() {
      ours.destroy();
      peer.destroy();
      server.close();
    },
  };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const waitFor = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('holdWrites', () => {
  let cleanup: (() => void) | null = null;
  afterEach(() => {
    cleanup?.();
    cleanup = null;
  });

  test('keeps the writes of one event-loop turn back until its end, then sends them in order in one go', async () => {
    const engine = newEngine(log.withTag('test'));
    const pair = await socketPair();
    cleanup = pair.close;
    holdWrites(engine, pair.ours);
    pair.ours.write('one,');
    holdWrites(engine, pair.ours);
    pair.ours.write('two,');
    pair.ours.write('three');
    // Still buffered in the socket, not yet handed to the kernel.
    expect(pair.ours.writableLength).toBe(13);
    await turn();
    expect(pair.ours.writableCorked).toBe(0);
    await waitFor(() => Buffer.concat(pair.reads).length >= 13);
    expect(Buffer.concat(pair.reads).toString()).toBe('one,two,three');
    expect(pair.reads.length).toBe(1);
  });

  test('a close (end) in the same turn still sends the held bytes before the FIN', async () => {
    const engine = newEngine(log.withTag('test'));
    const pair = await socketPair();
    cleanup = pair.close;
    holdWrites(engine, pair.ours);
    pair.ours.write('response');
    pair.ours.end();
    await pair.ended;
    expect(Buffer.concat(pair.reads).toString()).toBe('response');
  });
});
