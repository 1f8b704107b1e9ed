import { defineCommand } from 'citty';
import type { PerlbalConfig } from '../config/model.ts';
import { startDemoBackend } from '../demo/backends.ts';
import { log } from '../log.ts';
import { startProxy } from '../proxy/index.ts';
import { applyLogArgs, guarded, logArgs, UsageError } from './common.ts';

/** The tutorial's reverse_proxy (persist_client, persist_backend, verify_backend) over the two demo backends. */
export function demoConfig(backendPorts: number[], port: number): PerlbalConfig {
  const loc = { file: '(demo)', line: 0 };
  return {
    file: '(demo)',
    files: [],
    pools: [
      {
        name: 'demo',
        nodes: backendPorts.map((p) => ({ host: '127.0.0.1', port: p })),
        // Round-robin so that consecutive requests visibly alternate between the backends.
        balance_method: 'roundrobin',
        nodefile: null,
        options: {},
        loc,
      },
    ],
    services: [
      {
        name: 'balancer',
        role: 'reverse_proxy',
        enabled: true,
        listen: { host: '127.0.0.1', port },
        pool: 'demo',
        options: { persist_client: true, persist_backend: true, verify_backend: true },
        headers: [],
        plugins: [],
        vhosts: [],
        vpaths: [],
        extra: {},
        loc,
      },
    ],
    server: {},
    loadedPlugins: [],
    access: {},
    redirects: {},
    warnings: [],
  };
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
      let stop: () => Promise<void>;
      try {
        const proxy = await startProxy(demoConfig(backends.map((b) => b.port), port), { log: log.withTag('proxy') });
        bound = proxy.listeners()[0]!.port;
        stop = () => proxy.close({ graceful: true, timeoutMs: 5000 });
      } catch (error) {
        // The message names the service and the address already.
        throw new UsageError(`${(error as Error).message} (try --port 0)`);
      }
      console.log(`tsbal demo: open http://127.0.0.1:${bound}/  (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      demo.info('stopping');
      await stop();
      process.exit(0);
    }),
});
