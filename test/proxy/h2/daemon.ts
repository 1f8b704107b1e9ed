// For the HTTP/2 tests: `tsbal run` as shipped, under Node (the dist bundle) and under Bun (the dist/tsbal-bun
// binary, or Bun running the same bundle where the binary is not built), and node:http backends that record what
// they receive and answer with their own name.
import { existsSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawnProc, type ProcHandle } from '../../harness/proc.ts';
import { waitForPorts } from '../../harness/ports.ts';
import { BUN, dist } from '../../harness/dist.ts';
import { DIST_BUNDLE } from '../../harness/tsbal.ts';

export interface Runtime {
  name: 'node' | 'bun';
  argv: string[];
}

export const RUNTIMES: Runtime[] = [
  { name: 'node', argv: ['node', DIST_BUNDLE] },
  { name: 'bun', argv: existsSync(dist.bun) ? [dist.bun] : [BUN, DIST_BUNDLE] },
];

/** Starts `tsbal run -c conf [extra]` and waits for its ports. */
export async function startTsbal(rt: Runtime, conf: string, ports: number[], label: string, extra: string[] = []): Promise<ProcHandle> {
  const proc = spawnProc([...rt.argv, 'run', '-c', conf, ...extra], { label: `tsbal-${rt.name}-${label}` });
  try {
    await waitForPorts(ports, 20_000, () => (proc.exit() === null ? null : `tsbal (${rt.name}) exited: ${proc.stderr()}${proc.stdout()}`));
  } catch (error) {
    proc.kill('SIGKILL');
    throw error;
  }
  return proc;
}

export async function stopTsbal(proc: ProcHandle | undefined): Promise<void> {
  if (proc === undefined) return;
  if (proc.exit() === null) proc.kill('SIGKILL');
  await proc.exited;
}

export interface Seen {
  method: string;
  url: string;
  /** Raw header pairs as received, names as spelled on the wire. */
  raw: string[];
  headers: IncomingHttpHeaders;
}

export interface NamedBackend {
  name: string;
  port: number;
  seen: Seen[];
  /** Requests being answered right now, and the most at once. */
  inFlight: number;
  maxInFlight: number;
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 backend answering `<name> <url>\n`. `/slow/...` takes `slowMs`; `/page.html` and `/app.js` serve a
 * small web page whose script writes the protocol each resource came over into the DOM (for a browser).
 */
export async function namedBackend(name: string, slowMs = 300): Promise<NamedBackend> {
  const b: NamedBackend = { name, port: 0, seen: [], inFlight: 0, maxInFlight: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    b.seen.push({ method: req.method ?? '', url: req.url ?? '', raw: req.rawHeaders, headers: req.headers });
    b.inFlight++;
    b.maxInFlight = Math.max(b.maxInFlight, b.inFlight);
    const answer = (type: string, body: string): void => {
      b.inFlight--;
      res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'x-backend': name });
      res.end(body);
    };
    req.resume();
    req.on('end', () => {
      const url = req.url ?? '';
      if (url === '/page.html') answer('text/html', PAGE);
      else if (url === '/app.js') answer('application/javascript', APP_JS);
      else if (url.startsWith('/slow/')) setTimeout(() => answer('text/plain', `${name} ${url}\n`), slowMs);
      else if (url.startsWith('/bytes/')) {
        // /bytes/N: N bytes of a repeating pattern, written in 64 KiB pieces honouring backpressure.
        b.inFlight--;
        const size = Number(url.slice('/bytes/'.length));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, 'x-backend': name });
        const piece = Buffer.alloc(65_536, 'abcdefghijklmnopqrstuvwxyz0123456789\n');
        let sent = 0;
        const pump = (): void => {
          while (sent < size) {
            const n = Math.min(piece.length, size - sent);
            sent += n;
            if (!res.write(n === piece.length ? piece : piece.subarray(0, n))) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      }
      else answer('text/plain', `${name} ${url}\n`);
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  b.port = (server.address() as AddressInfo).port;
  b.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return b;
}

// The page loads one script (a second request on the same connection); once it ran, the DOM holds the protocol
// of the page and of the script as the browser's Resource Timing saw them (`h2` or `http/1.1`).
const PAGE = `<!doctype html><html><head><title>h2</title><script src="/app.js"></script></head>
<body><h1 id="t">hello over h2</h1><p id="proto"></p></body></html>
`;
const APP_JS = `document.addEventListener('DOMContentLoaded', () => {
  const page = performance.getEntriesByType('navigation')[0];
  const script = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/app.js'));
  document.getElementById('proto').textContent = 'page=' + (page && page.nextHopProtocol) + ' script=' + (script && script.nextHopProtocol);
});
`;

