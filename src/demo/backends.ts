// Built-in HTTP backends for `tsbal demo`: each answers with its own name so balancing is visible.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoBackend {
  name: string;
  port: number;
  server: Server;
}

export async function startDemoBackend(name: string, host = '127.0.0.1', port = 0): Promise<DemoBackend> {
  let served = 0;
  const server = createServer((req, res) => {
    if (req.method === 'OPTIONS') {
      // The balancer's verify_backend probe: answer it (keep-alive passes) without counting it as a visit.
      res.writeHead(200, { Allow: 'GET, HEAD, OPTIONS', 'Content-Length': 0 });
      res.end();
      return;
    }
    served += 1;
    const body = `hello from ${name} (request ${served}, ${req.method} ${req.url})\n`;
    res.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'X-Backend': name,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { name, port: (server.address() as AddressInfo).port, server };
}
