import { defineCommand } from 'citty';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { applyLogArgs, guarded, logArgs, UsageError } from './common.ts';
import { startDemoBackend } from '../demo/backends.ts';
import { log } from '../log.ts';

// Placeholder until the proxy engine lands: a connection-level round-robin TCP forwarder.
function startSimpleBalancer(ports: number[], host: string, port: number): Promise<number> {
  let next = 0;
  const server = createServer((client: Socket) => {
    const target = ports[next++ % ports.length]!;
    const upstream = connect(target, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

export default defineCommand({
  meta: { name: 'demo', description: 'Run two built-in backends and a balancer on 127.0.0.1 until Ctrl-C' },
  args: {
    ...logArgs,
    port: { type: 'string', description: 'balancer port (0 picks a free one)', default: '8080' },
  },
  run: ({ args }) =>
    guarded(async () => {
      applyLogArgs(args);
      const port = Number(args.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`bad --port '${args.port}'`);
      const demo = log.withTag('demo');
      const backends = await Promise.all([startDemoBackend('backend1'), startDemoBackend('backend2')]);
      for (const b of backends) demo.info(`backend ${b.name} on 127.0.0.1:${b.port}`);
      let bound: number;
      try {
        bound = await startSimpleBalancer(backends.map((b) => b.port), '127.0.0.1', port);
      } catch (error) {
        throw new UsageError(`cannot listen on 127.0.0.1:${port}: ${(error as Error).message} (try --port 0)`);
      }
      console.log(`tsbal demo: open http://127.0.0.1:${bound}/  (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      demo.info('stopping');
      process.exit(0);
    }),
});
