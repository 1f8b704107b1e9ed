// `tsbal ha status|standby|takeover` talk to the running engine over a unix socket in the state dir
// (<state-dir>/ha.sock, mode 0600): one JSON request line, one JSON answer line. The socket doubles as the
// single-instance lock: a second engine on the same state dir refuses to start.
import { createConnection, createServer, type Server } from 'node:net';
import { chmodSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

export const SOCKET_NAME = 'ha.sock';
export const socketPath = (stateDir: string): string => join(stateDir, SOCKET_NAME);

export type ControlRequest = { cmd: 'status' } | { cmd: 'standby' | 'takeover'; which: string };
export type ControlAnswer = { ok: true; status: unknown } | { ok: boolean; msg: string };

export interface ControlServer {
  close(): Promise<void>;
}

/** Sends one request to the engine; rejects with a message a sysadmin can act on. */
export function request(stateDir: string, req: ControlRequest, timeoutMs = 5000): Promise<ControlAnswer> {
  return requestJson<ControlAnswer>(socketPath(stateDir), req, 'the HA engine', '--state-dir', timeoutMs);
}

/**
 * One JSON request line to a unix socket, one JSON answer line back (the HA control socket, tsbal run's status
 * socket). `who` names the answering side in errors; `hint` is the flag that chooses the socket's directory.
 */
export function requestJson<A>(path: string, req: unknown, who: string, hint: string, timeoutMs = 5000): Promise<A> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer from ${who} on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as A);
      } catch {
        reject(new Error(`bad answer from ${who}: ${buf.slice(0, 200)}`));
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? `is tsbal running with this ${hint}?` : e.message;
      reject(new Error(`cannot reach ${who} at ${path}: ${why}`));
    });
  });
}

/** Does a process answer on the unix socket `path`? */
export async function inUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export async function serveControl(stateDir: string, answer: (req: ControlRequest) => Promise<ControlAnswer>): Promise<ControlServer> {
  const path = socketPath(stateDir);
  if (await inUse(path)) throw new Error(`another tsbal HA engine is running with state dir ${stateDir} (${path} answers)`);
  return serveJson(path, answer);
}

/** Serves one-line JSON requests on the unix socket `path` (mode 0600), replacing a stale socket file there. */
export async function serveJson<Q, A>(path: string, answer: (req: Q) => Promise<A>): Promise<ControlServer> {
  try {
    unlinkSync(path);
  } catch {
    // no stale socket
  }
  const server: Server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 4096) sock.destroy();
        return;
      }
      let req: Q;
      try {
        req = JSON.parse(buf.slice(0, nl)) as Q;
      } catch {
        sock.end(`${JSON.stringify({ ok: false, msg: 'bad request' })}\n`);
        return;
      }
      answer(req).then(
        (a) => sock.end(`${JSON.stringify(a)}\n`),
        (e: Error) => sock.end(`${JSON.stringify({ ok: false, msg: e.message })}\n`),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }),
  };
}
