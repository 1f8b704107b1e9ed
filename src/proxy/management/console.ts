// The management port on node:net (Perlbal's ClientManage): a connection whose first bytes are `GET `, `POST ` or
// `HEAD ` is HTTP (one request, then close); anything else is the line protocol, one command per line, answers
// ending in CRLF, until a line starts with `quit` or ends with `exit`. No timeouts, as in Perlbal.
import { createServer, type Server, type Socket } from 'node:net';
import { isQuit, newSession, runLine, type ManagementTarget } from './commands.ts';
import type { HttpAnswer } from './http.ts';

/** Longest line (or HTTP request head) accepted; Perlbal has no limit, a console line never needs this much. */
const MAX_LINE = 64 * 1024;

export interface ConsoleOptions {
  target: ManagementTarget;
  /** Answers an HTTP request on the management port (Perlbal's pages, `GET /metrics`). */
  http(method: string, path: string): Promise<HttpAnswer>;
  /** Run before each command (SERVER workers: the owner gathers the workers' counters first). */
  before?: () => Promise<void>;
}

export interface ManagementConsole {
  server: Server;
  sockets: Set<Socket>;
}

export function newConsole(opts: ConsoleOptions): ManagementConsole {
  const sockets = new Set<Socket>();
  const server = createServer({ noDelay: true }, (socket) => serveConnection(socket, opts, sockets));
  return { server, sockets };
}

function serveConnection(socket: Socket, opts: ConsoleOptions, sockets: Set<Socket>): void {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
  const session = newSession();
  let buf = '';
  let mode: 'unknown' | 'lines' | 'http' = 'unknown';
  // Lines run one after another (ENABLE waits for its listener), so answers keep the order of the commands.
  let queue: Promise<void> = Promise.resolve();
  let quitting = false;
  /** A SHUTDOWN ran: lines queued after it are dropped. */
  let shutDown = false;

  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    if (quitting) return;
    buf += chunk;
    if (mode === 'unknown') {
      if (/^(?:HEAD|GET|POST) /.test(buf)) mode = 'http';
      else if (buf.length >= 5 || /[^A-Z]/.test(buf)) mode = 'lines';
      else return;
    }
    if (mode === 'http') {
      const end = buf.indexOf('\r\n\r\n') >= 0 ? buf.indexOf('\r\n\r\n') : buf.indexOf('\n\n');
      if (end < 0) {
        if (buf.length > MAX_LINE) socket.destroy();
        return;
      }
      quitting = true;
      void answerHttp(socket, buf.slice(0, end), opts);
      return;
    }
    let nl: number;
    while (!quitting && (nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') continue;
      if (isQuit(line)) {
        quitting = true;
        queue = queue.then(() => void socket.end());
        return;
      }
      queue = queue.then(async () => {
        if (shutDown) return;
        await opts.before?.();
        const { lines, close } = await runLine(opts.target, session, line);
        if (lines.length > 0 && !socket.destroyed) socket.write(lines.join('\r\n') + '\r\n', 'latin1');
        if (close === true) {
          shutDown = true;
          quitting = true;
          socket.end();
        }
      });
    }
    if (buf.length > MAX_LINE) socket.destroy();
  });
}

async function answerHttp(socket: Socket, head: string, opts: ConsoleOptions): Promise<void> {
  const m = /^(\S+) (\S+)/.exec(head);
  const method = m?.[1] ?? 'GET';
  const a = await opts.http(method, m?.[2] ?? '/');
  if (!socket.destroyed) socket.end(method === 'HEAD' ? a.head : a.head + a.body, 'latin1');
}
