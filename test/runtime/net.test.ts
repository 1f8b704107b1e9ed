// The accept-path helpers of src/runtime/net.ts, on real sockets under the runtime that runs the tests (Bun).
import { afterEach, describe, expect, test } from 'bun:test';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../harness/cli.ts';
import { NODE22 } from '../harness/dist.ts';
import { ASK_NO_DELAY, peerAddress } from '../../src/runtime/net.ts';

describe('peerAddress', () => {
  let server: net.Server | null = null;
  let client: net.Socket | null = null;
  afterEach(() => {
    client?.destroy();
    server?.close();
    [server, client] = [null, null];
  });

  function acceptOne(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      server = net.createServer({ allowHalfOpen: true, noDelay: ASK_NO_DELAY }, resolve);
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const a = server!.address() as net.AddressInfo;
        client = net.connect(a.port, '127.0.0.1');
      });
    });
  }

  test('gives the address the client connects from, as socket.remoteAddress does', async () => {
    const accepted = await acceptOne();
    expect(peerAddress(accepted)).toBe('127.0.0.1');
    expect(accepted.remoteAddress).toBe('127.0.0.1');
    accepted.destroy();
  });

  test('a stand-in socket without a native handle (TLS, HTTP/2 streams) answers with its own remoteAddress', () => {
    const standIn = { remoteAddress: '198.18.0.7' } as unknown as net.Socket;
    expect(peerAddress(standIn)).toBe('198.18.0.7');
  });
});

/** Runs in Node 22: peerAddress of an accepted plain socket, of a stand-in without a handle, and after a failure. */
const NODE_SIDE = `
import { createServer, connect } from 'node:net';
import { peerAddress } from ${JSON.stringify(join(REPO_ROOT, 'src/runtime/net.ts'))};
const timer = setTimeout(() => { console.log(JSON.stringify({ error: 'timed out' })); process.exit(1); }, 5000);
const server = createServer((s) => {
  const out = { first: peerAddress(s), second: peerAddress(s) };
  // Through the handle: the socket's own getter (which caches its answer in _peername) was not used.
  out.viaHandle = s._peername === undefined;
  out.remoteAddress = s.remoteAddress;
  out.standIn = peerAddress({ remoteAddress: '198.18.0.7' });
  // A handle whose getpeername fails (the peer gone): the socket's own answer, not a stale address.
  out.failing = peerAddress({ _handle: { getpeername: () => -107 }, remoteAddress: undefined }) ?? 'none';
  s.destroy();
  server.close();
  clearTimeout(timer);
  console.log(JSON.stringify(out));
});
server.listen(0, '127.0.0.1', () => {
  const c = connect(server.address().port, '127.0.0.1');
  c.on('error', () => {});
  c.on('close', () => {});
});
`;

describe('peerAddress on Node 22 (the runtime of the SEA binary)', () => {
  test('reads the address through the handle into one shared object, and falls back to remoteAddress without one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbal-net-'));
    try {
      const script = join(dir, 'node-side.ts');
      writeFileSync(script, NODE_SIDE);
      const r = spawnSync(NODE22, ['--experimental-strip-types', '--no-warnings', script], { encoding: 'utf8', timeout: 15_000 });
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout.trim())).toEqual({
        first: '127.0.0.1',
        second: '127.0.0.1',
        viaHandle: true,
        remoteAddress: '127.0.0.1',
        standIn: '198.18.0.7',
        failing: 'none',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
