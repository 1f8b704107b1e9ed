// A small lab for the weights/limits/draining tests: `tsbal run` from source as a daemon on a perlbal.conf the test
// writes (with a management port), node:http backends that count what they see (requests, concurrency, open
// sockets) and can be slowed down, a bounded keep-alive load loop, and a console client.
import fs from 'node:fs';
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { CLI_ENTRY } from '../../harness/cli.ts';
import { type Daemon, makeTempDir, startDaemon, startWithFreshPorts } from '../../harness/procs.ts';

export interface LabBackend {
  name: string;
  port: number;
  key: string;
  requests: number;
  inFlight: number;
  maxInFlight: number;
  openSockets: number;
  /** Answer after this many ms. */
  delayMs: number;
  close(): Promise<void>;
}

export async function labBackend(name: string, delayMs = 0): Promise<LabBackend> {
  const sockets = new Set<Socket>();
  const b: LabBackend = {
    name, port: 0, key: '', requests: 0, inFlight: 0, maxInFlight: 0, openSockets: 0, delayMs,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
  const server = http.createServer((req, res) => {
    b.requests++;
    b.inFlight++;
    b.maxInFlight = Math.max(b.maxInFlight, b.inFlight);
    req.resume();
    const answer = (): void => {
      b.inFlight--;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(name.length) });
      res.end(name);
    };
    if (b.delayMs > 0) setTimeout(answer, b.delayMs);
    else answer();
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    sockets.add(s);
    b.openSockets++;
    s.on('close', () => {
      sockets.delete(s);
      b.openSockets--;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  b.port = (server.address() as { port: number }).port;
  b.key = `127.0.0.1:${b.port}`;
  return b;
}

export interface LabProxy {
  daemon: Daemon;
  port: number;
  mgmt: number;
  dir: string;
  confPath: string;
  /** Rewrites perlbal.conf (for a SIGHUP reload). */
  writeConf(poolLines: string): void;
  stop(): Promise<void>;
}

/**
 * `tsbal run` on a config with pool `p` (the given pool lines: POOL p ADD ..., SET nodefile, SET max_conns ...), a
 * reverse_proxy `web` with keep-alive both ways, and a management service.
 */
export async function labProxy(poolLines: string, serviceLines = ''): Promise<LabProxy> {
  return startWithFreshPorts(2, async ([port, mgmt]) => {
    const dir = makeTempDir('weights');
    const confPath = path.join(dir, 'perlbal.conf');
    const writeConf = (lines: string): void =>
      fs.writeFileSync(
        confPath,
        `CREATE POOL p\n${lines}\n` +
          `CREATE SERVICE web\n  SET role = reverse_proxy\n  SET listen = 127.0.0.1:${port}\n  SET pool = p\n` +
          `  SET persist_client = on\n  SET persist_backend = on\n${serviceLines}ENABLE web\n` +
          `CREATE SERVICE mgmt\n  SET role = management\n  SET listen = 127.0.0.1:${mgmt}\nENABLE mgmt\n`,
      );
    writeConf(poolLines);
    // One process (TSBAL_WORKERS=1): these cases count requests in flight against a pool's max_conns, also set live on
    // the console, a limit each worker of SERVER workers would hold on its own (docs/compat.md).
    const env = { ...process.env, TSBAL_WORKERS: '1' };
    const daemon = await startDaemon({ name: 'tsbal', command: process.execPath, args: [CLI_ENTRY, 'run', '-c', confPath], env, dir, ports: [port!, mgmt!], readyTimeoutMs: 15_000 });
    return { daemon, port: port!, mgmt: mgmt!, dir, confPath, writeConf, stop: () => daemon.stop() };
  });
}

/** One console line; resolves with the answer lines (up to `OK`, `ERROR: ...` or the closing `.`). */
export function consoleLine(mgmt: number, line: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = connect(mgmt, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`console: no answer to '${line}' (got ${JSON.stringify(buf)})`));
    }, 5000);
    s.on('data', (d) => {
      buf += d.toString('latin1');
      const lines = buf.split(/\r?\n/);
      if (lines.some((l) => l === 'OK' || l === '.' || l.startsWith('ERROR'))) {
        clearTimeout(timer);
        s.end();
        resolve(lines.filter((l) => l !== ''));
      }
    });
    s.on('error', reject);
    s.write(`${line}\r\n`);
  });
}

export interface LoadResult {
  ok: number;
  failed: number;
  /** The first few failures: status or error code. */
  failures: string[];
  /** Answers per backend name. */
  byBody: Map<string, number>;
}

/**
 * `concurrency` keep-alive clients sending GETs back to back until `stop()` says so, `maxRequests` are done or
 * `maxMs` passed (bounded in count and time).
 */
export async function loadLoop(port: number, opts: { concurrency: number; maxRequests: number; maxMs: number; stop?: () => boolean }): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const result: LoadResult = { ok: 0, failed: 0, failures: [], byBody: new Map() };
  const deadline = Date.now() + opts.maxMs;
  let started = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          if (res.statusCode === 200) {
            result.ok++;
            result.byBody.set(body, (result.byBody.get(body) ?? 0) + 1);
          } else {
            result.failed++;
            if (result.failures.length < 10) result.failures.push(`${res.statusCode} ${body.trim()}`);
          }
          resolve();
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => {
        result.failed++;
        if (result.failures.length < 10) result.failures.push(e.code ?? e.message);
        resolve();
      });
    });
  const worker = async (): Promise<void> => {
    while (started < opts.maxRequests && Date.now() < deadline && !(opts.stop?.() ?? false)) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  agent.destroy();
  return result;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 20 ms; resolves with the ms it took, or throws after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
  return Date.now() - t0;
}
