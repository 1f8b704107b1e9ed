// A backend that comes back after a short outage must get traffic again soon, whatever happened while it was
// away. Raw backends, so the outage is exact: the listener closes (connects refused) and reopens on the port.
import { afterEach, describe, expect, test } from 'bun:test';
import { runKeepAliveLoad } from '../harness/load.ts';
import { TUTORIAL_OPTIONS } from '../harness/perlbalconf.ts';
import { type PerlbalConfProxy } from '../harness/perlbal.ts';
import { sleep } from '../harness/ports.ts';
import { type RawBackend, startRawBackend } from '../harness/rawbackend.ts';
import { startTsbal } from '../harness/tsbal.ts';

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanup.map((f) => f()));
  cleanup = [];
});

describe('tsbal: a backend back from an outage', () => {
  // Connects refused at once by the same outage must not escalate the backoff (it once reached 30 s in the
  // same second); only a failed trial after the backoff doubles it.
  test('gets requests again within 3 s after a 1.5 s outage under load from 32 keep-alive clients', async () => {
    const b2 = await startRawBackend({ name: 'b2' });
    let b1: RawBackend = await startRawBackend({ name: 'b1' });
    const proxy: PerlbalConfProxy = await startTsbal({ backends: [b1.port, b2.port], set: TUTORIAL_OPTIONS });
    cleanup.push(() => proxy.stop(), () => b1.close(), () => b2.close());
    const port = b1.port;
    let backAt = 0;
    const outage = (async () => {
      await sleep(1000);
      await b1.close();
      await sleep(1500);
      b1 = await startRawBackend({ name: 'b1', port });
      backAt = Date.now();
    })();
    const load = await runKeepAliveLoad({
      port: proxy.port,
      clients: 32,
      requestsPerClient: 1_000_000,
      path: '/',
      requestTimeoutMs: 3000,
      deadlineMs: 2500 + 3000,
    });
    await outage;
    expect(load.failures.length, JSON.stringify(load.byStatus)).toBe(0);
    const first = b1.proxied()[0];
    expect(first, `requests to b1 in the ${Date.now() - backAt} ms since it came back`).toBeDefined();
  }, 20_000);
});
