// Highpri reorders the max_conns queue for real, through `tsbal run`: with max_conns 1 and a slow backend, a request
// Highpri marks (URI or Host pattern) that arrives behind several waiting normal ones is served next; normal ones
// keep their FIFO order; the console's `queues` shows it in the highpri line while it waits. Perlbal's own
// high_priority_cookie rule (no plugin) does the same for a client whose cookie carries the contents.
import { afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test';
import http from 'node:http';
import { consoleLine, labBackend, labProxy, waitFor, type LabBackend, type LabProxy } from './live-lab.ts';

setDefaultTimeout(40_000);
let proxy: LabProxy | null = null;
let backends: LabBackend[] = [];

afterEach(async () => {
  await proxy?.stop();
  proxy = null;
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

/** GET on a fresh connection; pushes `label` to `done` when the answer is complete (the order the backend served). */
function getInOrder(port: number, path: string, host: string, label: string, done: string[], cookie?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = cookie === undefined ? { host } : { host, cookie };
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => {
        done.push(label);
        resolve(res.statusCode!);
      });
    });
    req.setTimeout(15_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
  });
}

const queueCounts = async (mgmt: number): Promise<string[]> =>
  (await consoleLine(mgmt, 'queues')).filter((l) => l.endsWith('.count') || /\.count \d+$/.test(l));

const queuedNormal = (mgmt: number, n: number): Promise<number> =>
  waitFor(`${n} normal request(s) queued`, async () => (await queueCounts(mgmt)).includes(`web-normal.count ${n}`), 3000);

describe('Highpri and the max_conns queue', () => {
  for (const [what, path, host] of [
    ['URI pattern', '/vip/cart', 'shop.example'],
    ['Host pattern', '/', 'vip.example'],
  ] as const) {
    test(`a request matching the ${what} that arrives behind 3 waiting normal ones is served next`, async () => {
      backends = [await labBackend('slow', 300)];
      const [slow] = backends as [LabBackend];
      proxy = await labProxy(
        `POOL p ADD ${slow.key}\nSET max_conns = 1\nSET queue_timeout = 20s\nLOAD Highpri`,
        `  SET plugins = highpri\n  SET web.highpri.uri_pattern = ^/vip/\n  SET web.highpri.host_pattern = ^vip\\.\n`,
      );
      const done: string[] = [];
      const answers: Promise<number>[] = [getInOrder(proxy.port, '/n0', 'shop.example', 'n0', done)];
      // n0 holds the only slot; n1..n3 queue behind it, in that order.
      await waitFor('n0 at the backend', () => slow.inFlight === 1, 5000);
      // Each one queued before the next is sent, so the FIFO order is known.
      for (const [i, n] of ['n1', 'n2', 'n3'].entries()) {
        answers.push(getInOrder(proxy.port, `/${n}`, 'shop.example', n, done));
        await queuedNormal(proxy.mgmt, i + 1);
      }
      expect(done).toEqual([]);
      answers.push(getInOrder(proxy.port, path, host, 'high', done));
      await waitFor('the high-priority request queued', async () => (await queueCounts(proxy!.mgmt)).includes('web-highpri.count 1'), 3000);
      expect(await Promise.all(answers)).toEqual([200, 200, 200, 200, 200]);
      expect(done).toEqual(['n0', 'high', 'n1', 'n2', 'n3']);
      expect(slow.maxInFlight).toBe(1);
    });
  }

  test('without Highpri the same requests are served strictly first come, first served', async () => {
    backends = [await labBackend('slow', 200)];
    const [slow] = backends as [LabBackend];
    proxy = await labProxy(`POOL p ADD ${slow.key}\nSET max_conns = 1\nSET queue_timeout = 20s`);
    const done: string[] = [];
    const answers: Promise<number>[] = [getInOrder(proxy.port, '/n0', 'shop.example', 'n0', done)];
    await waitFor('n0 at the backend', () => slow.inFlight === 1, 5000);
    for (const [i, n] of ['n1', 'n2'].entries()) {
      answers.push(getInOrder(proxy.port, `/${n}`, 'shop.example', n, done));
      await queuedNormal(proxy.mgmt, i + 1);
    }
    answers.push(getInOrder(proxy.port, '/vip/cart', 'vip.example', 'vip', done));
    await queuedNormal(proxy.mgmt, 3);
    expect(await Promise.all(answers)).toEqual([200, 200, 200, 200]);
    expect(done).toEqual(['n0', 'n1', 'n2', 'vip']);
  });

  test('high_priority_cookie (no plugin): a client whose cookie contains the contents goes ahead; others wait in order', async () => {
    backends = [await labBackend('slow', 300)];
    const [slow] = backends as [LabBackend];
    proxy = await labProxy(
      `POOL p ADD ${slow.key}\nSET max_conns = 1\nSET queue_timeout = 20s`,
      '  SET high_priority_cookie = tier\n  SET high_priority_cookie_contents = gold\n',
    );
    const done: string[] = [];
    const answers: Promise<number>[] = [getInOrder(proxy.port, '/n0', 'shop.example', 'n0', done)];
    await waitFor('n0 at the backend', () => slow.inFlight === 1, 5000);
    answers.push(getInOrder(proxy.port, '/n1', 'shop.example', 'n1', done, 'tier=silver'));
    await queuedNormal(proxy.mgmt, 1);
    answers.push(getInOrder(proxy.port, '/n2', 'shop.example', 'n2', done));
    await queuedNormal(proxy.mgmt, 2);
    answers.push(getInOrder(proxy.port, '/', 'shop.example', 'gold', done, 'session=abc; tier=gold-2026'));
    await waitFor('the gold client queued', async () => (await queueCounts(proxy!.mgmt)).includes('web-highpri.count 1'), 3000);
    expect(await Promise.all(answers)).toEqual([200, 200, 200, 200]);
    expect(done).toEqual(['n0', 'gold', 'n1', 'n2']);
    // No "not implemented yet" warning for it any more.
    expect(proxy.daemon.output()).not.toContain('high_priority_cookie');
  });
});
