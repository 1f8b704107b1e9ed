// `tsbal demo` on a port that is taken: one clear line (the port named once, the way out), exit 1.
import { expect, test } from 'bun:test';
import { createServer, type AddressInfo } from 'node:net';
import { runTsbal } from '../harness/cli.ts';

test('demo on a busy port says so once, names the port and suggests --port 0', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (taken.address() as AddressInfo).port;
    const r = await runTsbal(['demo', '--port', String(port)]);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('tsbal:'));
    expect({ code: r.code, lines }).toEqual({
      code: 1,
      lines: [`tsbal: service balancer: cannot listen on 127.0.0.1:${port}: EADDRINUSE (listen EADDRINUSE: address already in use 127.0.0.1:${port}) (try --port 0)`],
    });
  } finally {
    await new Promise<void>((r) => taken.close(() => r()));
  }
});
