// A release directory served over HTTP on 127.0.0.1 (free port), as install.sh meets it on a real server: a copy
// of dist/ (hard links, so it is cheap) that a test may damage, and a log of the paths requested.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface ReleaseServer {
  url: string;
  dir: string;
  requests: string[];
  /** Serve only the first half of `name`, then cut the connection (a download that breaks off). */
  truncate(name: string): void;
  close(): Promise<void>;
}

/** Hard-links (or copies) the release files of `distDir` into `dir`. */
export function copyRelease(distDir: string, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const name of fs.readdirSync(distDir)) {
    if (name.startsWith('.')) continue;
    try {
      fs.linkSync(path.join(distDir, name), path.join(dir, name));
    } catch {
      fs.copyFileSync(path.join(distDir, name), path.join(dir, name));
    }
  }
}

/** Replaces `name` in the release with a copy whose last byte is flipped (the link to dist/ is broken first). */
export function corrupt(dir: string, name: string): void {
  const file = path.join(dir, name);
  const data = fs.readFileSync(file);
  data[data.length - 1] = (data[data.length - 1] ?? 0) ^ 0xff;
  fs.rmSync(file);
  fs.writeFileSync(file, data, { mode: 0o755 });
}

export async function serveRelease(dir: string): Promise<ReleaseServer> {
  const requests: string[] = [];
  const truncated = new Set<string>();
  const server = http.createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').split('?')[0]!.slice(1));
    requests.push(`/${name}`);
    const file = path.join(dir, name);
    if (name.includes('/') || name.startsWith('.') || !fs.existsSync(file)) {
      res.writeHead(404).end('not found\n');
      return;
    }
    const size = fs.statSync(file).size;
    res.writeHead(200, { 'Content-Length': size, 'Content-Type': 'application/octet-stream' });
    if (truncated.has(name)) {
      const stream = fs.createReadStream(file, { end: Math.floor(size / 2) });
      stream.on('data', (chunk) => res.write(chunk));
      stream.on('end', () => res.destroy());
      return;
    }
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    dir,
    requests,
    truncate: (name) => truncated.add(name),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
