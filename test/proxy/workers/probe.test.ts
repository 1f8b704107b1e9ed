// Whether an address is taken, read from /proc/net/tcp{,6} (pure), and the probe on real sockets.
import { describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { listensThere, probeAddress } from '../../../src/proxy/workers/probe.ts';
import { listenServer } from '../../../src/proxy/listener.ts';

const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const row = (local: string, st: string): string => `   0: ${local} 00000000:0000 ${st} 00000000:00000000 00:00000000 00000000     0        0 12345 1\n`;

describe('listensThere', () => {
  test('a listener on the address, on 0.0.0.0 or on [::] takes the port; another address, port or state does not', () => {
    const tcp = HEAD + row('0100007F:1F90', '0A') + row('0200007F:1F91', '0A') + row('0100007F:1F92', '01');
    expect(listensThere(tcp, '', '127.0.0.1', 8080)).toBe(true);
    expect(listensThere(tcp, '', '127.0.0.1', 8081)).toBe(false);
    expect(listensThere(tcp, '', '127.0.0.2', 8081)).toBe(true);
    expect(listensThere(tcp, '', '127.0.0.1', 8082)).toBe(false);
    expect(listensThere(HEAD + row('00000000:1F90', '0A'), '', '10.0.0.5', 8080)).toBe(true);
    expect(listensThere('', HEAD + row(`${'0'.repeat(32)}:1F90`, '0A'), '10.0.0.5', 8080)).toBe(true);
    // A wildcard host collides with a listener on any address.
    expect(listensThere(tcp, '', '0.0.0.0', 8081)).toBe(true);
  });

  test('an IPv6 host collides with a listener on that IPv6 address, not with one on another', () => {
    const tcp6 = HEAD + row('00000000000000000000000001000000:1F90', '0A') + row('B80D0120000000000000000001000000:0050', '0A');
    expect(listensThere('', tcp6, '::1', 8080)).toBe(true);
    expect(listensThere('', tcp6, '2001:db8::1', 80)).toBe(true);
    expect(listensThere('', tcp6, '2001:db8::2', 80)).toBe(false);
    expect(listensThere('', tcp6, '::1', 80)).toBe(false);
  });

  test('[::] (bound IPv6-only) collides with IPv6 sockets only; 0.0.0.0 with IPv4 ones, [::] and IPv4-mapped ones', () => {
    const tcp = HEAD + row('0100007F:1F90', '0A');
    expect(listensThere(tcp, '', '::', 8080)).toBe(false);
    expect(listensThere(tcp, '', '::1', 8080)).toBe(false);
    expect(listensThere(HEAD + row('00000000:1F90', '0A'), '', '::1', 8080)).toBe(false);
    expect(listensThere('', HEAD + row('00000000000000000000000001000000:1F90', '0A'), '::', 8080)).toBe(true);
    expect(listensThere('', HEAD + row('00000000000000000000000001000000:1F90', '0A'), '0.0.0.0', 8080)).toBe(false);
    expect(listensThere('', HEAD + row('0000000000000000FFFF00000100007F:1F90', '0A'), '0.0.0.0', 8080)).toBe(true);
    expect(listensThere('', HEAD + row('0000000000000000FFFF00000100007F:1F90', '0A'), '127.0.0.1', 8080)).toBe(true);
    expect(listensThere('', HEAD + row(`${'0'.repeat(32)}:1F90`, '0A'), '0.0.0.0', 8080)).toBe(true);
  });
});

/** A listener in another process (the probe does not count this process's own sockets), and how to close it. */
async function listenElsewhere(host: string): Promise<{ port: number; close(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(0, '${host}', function () { console.log(this.address().port) })`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`listener exited ${code}`)));
  });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

describe('probeAddress', () => {
  test('EADDRINUSE while another process listens there; a free port passes; a foreign address is EADDRNOTAVAIL', async () => {
    const taken = await listenElsewhere('127.0.0.1');
    const port = taken.port;
    const t0 = performance.now();
    const err = await probeAddress({ host: '127.0.0.1', port }).catch((e: NodeJS.ErrnoException) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('EADDRINUSE');
    // It looked again for about a second (the sockets of a just-killed owner's workers).
    expect(performance.now() - t0).toBeGreaterThan(900);
    await taken.close();
    await probeAddress({ host: '127.0.0.1', port });
    const foreign = await probeAddress({ host: '198.18.0.250', port }).catch((e: NodeJS.ErrnoException) => e);
    expect((foreign as NodeJS.ErrnoException).code).toBe('EADDRNOTAVAIL');
  });

  test('EADDRINUSE while something listens on [::1] at the port (a second tsbal on [::1]:PORT is refused)', async () => {
    const taken = await listenElsewhere('::1');
    try {
      const err = await probeAddress({ host: '::1', port: taken.port }).catch((e: NodeJS.ErrnoException) => e);
      expect((err as NodeJS.ErrnoException | undefined)?.code).toBe('EADDRINUSE');
    } finally {
      await taken.close();
    }
    await probeAddress({ host: '::1', port: taken.port });
  });

  test("this process's own listeners do not count (one process binding [::]:P then 0.0.0.0:P, or a reload adding a service)", async () => {
    const own = createServer();
    await listenServer(own, { host: '::', port: 0 });
    try {
      const port = (own.address() as { port: number }).port;
      // [::] bound IPv6-only would collide with 0.0.0.0 in tcp6's eyes if it were another program's.
      expect(listensThere('', readFileSync('/proc/net/tcp6', 'utf8'), '0.0.0.0', port)).toBe(true);
      const t0 = performance.now();
      await probeAddress({ host: '0.0.0.0', port });
      expect(performance.now() - t0).toBeLessThan(500);
    } finally {
      await new Promise<void>((r) => own.close(() => r()));
    }
  });
});
