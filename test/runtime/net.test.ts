// The accept-path helpers of src/runtime/net.ts, on real sockets under the runtime that runs the tests (Bun).
import { afterEach, describe, expect, test } from 'bun:test';
import net from 'node:net';
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
