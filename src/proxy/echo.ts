// The EchoService plugin's `echo` role (Perlbal::Plugin::EchoService): every line a client sends comes back with
// CRLF, after `echo_delay` seconds if set. A plain TCP service, started beside the management consoles.
// Perlbal's loop is `s/^(.+?)\r?\n//`: a line needs one character before its end, and an empty line (a bare LF
// at the front of the buffer) never matches, so nothing after it is echoed. tsbal does the same.
import { createServer, type Socket } from 'node:net';
import type { PerlbalConfig } from '../config/model.ts';
import type { ConsoleListener } from './management/listeners.ts';

/** Bytes a client may send without a line end before it is cut (Perlbal has no limit; its buffer grows). */
const MAX_PENDING = 64 * 1024;

/** The complete lines at the front of `buf` as Perlbal's loop takes them, and what is left. Pure. */
export function takeEchoLines(buf: string): { lines: string[]; rest: string } {
  const lines: string[] = [];
  let rest = buf;
  for (;;) {
    const m = /^([^\n]+?)\r?\n/.exec(rest);
    if (m === null) return { lines, rest };
    lines.push(m[1]!);
    rest = rest.slice(m[0].length);
  }
}

function serveEcho(socket: Socket, delayMs: number, sockets: Set<Socket>): void {
  sockets.add(socket);
  const timers = new Set<NodeJS.Timeout>();
  let buf = '';
  socket.on('data', (chunk: Buffer) => {
    buf += chunk.toString('latin1');
    const { lines, rest } = takeEchoLines(buf);
    buf = rest;
    if (buf.length > MAX_PENDING) {
      socket.destroy();
      return;
    }
    for (const line of lines) {
      const out = Buffer.from(`${line}\r\n`, 'latin1');
      if (delayMs <= 0) {
        socket.write(out);
        continue;
      }
      const t = setTimeout(() => {
        timers.delete(t);
        if (!socket.destroyed) socket.write(out);
      }, delayMs);
      timers.add(t);
    }
  });
  const done = (): void => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    sockets.delete(socket);
  };
  socket.on('error', () => socket.destroy());
  socket.on('close', done);
  // Perlbal closes on the client's hangup (event_hup); a half-close ends our side too.
  socket.on('end', () => socket.end());
}

/** One listener per enabled echo service, shaped as the consoles so the same bind, retry and close apply. */
export function newEchoListeners(config: PerlbalConfig): ConsoleListener[] {
  return config.services
    .filter((m) => m.role === 'echo' && m.enabled && m.listen !== null)
    .map((m) => {
      const delay = m.options.echo_delay;
      const delayMs = typeof delay === 'number' ? delay * 1000 : 0;
      const sockets = new Set<Socket>();
      const server = createServer({ noDelay: true }, (socket) => serveEcho(socket, delayMs, sockets));
      return { name: m.name, role: 'echo', listen: m.listen!, console: { server, sockets }, bound: false, bindError: null };
    });
}
