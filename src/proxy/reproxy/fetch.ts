// One reproxy-URL fetch: connect to the target, send Perlbal's request (`GET|HEAD <path> HTTP/1.0` with the
// client's Range and Host), read the response head. Each fetch uses its own connection, closed after the body.
import { connect, type Socket } from 'node:net';
import type { Field, ReproxyTarget } from './plan.ts';

export type TargetAnswer =
  | { kind: 'failed'; why: string }
  | {
      kind: 'ok';
      status: number;
      fields: Field[];
      /** null: no Content-Length (the body runs to the close). */
      contentLength: number | null;
      /** Body bytes that came with the head. */
      early: Buffer;
      socket: Socket;
    };

export interface FetchRequest {
  method: 'GET' | 'HEAD';
  range: string | null;
  host: string | null;
  timeoutMs: number;
  responseTimeoutMs: number;
}

const MAX_HEAD = 64 * 1024;

/** Reads `HTTP/x.y NNN reason` and its fields (CRLF or bare LF line ends); null if it is not a response head. */
export function parseTargetHead(head: string): { status: number; fields: Field[] } | null {
  const lines = head.split(/\r?\n/);
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (m === null) return null;
  const fields: Field[] = [];
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    fields.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return { status: Number(m[1]), fields };
}

export function fetchTarget(t: ReproxyTarget, r: FetchRequest, done: (a: TargetAnswer) => void): void {
  let settled = false;
  let buf: Buffer = Buffer.alloc(0);
  const socket = connect({ host: t.host, port: t.port });
  const settle = (a: TargetAnswer): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.removeAllListeners('data');
    socket.removeAllListeners('error');
    socket.removeAllListeners('end');
    socket.removeAllListeners('connect');
    if (a.kind === 'failed') socket.destroy();
    else socket.on('error', () => {});
    done(a);
  };
  let timer = setTimeout(() => settle({ kind: 'failed', why: 'connect timeout' }), r.timeoutMs);
  socket.on('error', (e: NodeJS.ErrnoException) => settle({ kind: 'failed', why: e.code ?? e.message }));
  socket.on('end', () => settle({ kind: 'failed', why: 'closed before answering' }));
  socket.on('connect', () => {
    clearTimeout(timer);
    timer = setTimeout(() => settle({ kind: 'failed', why: 'no answer in time' }), r.responseTimeoutMs);
    let req = `${r.method} ${t.path} HTTP/1.0\r\nConnection: keep-alive\r\n`;
    if (r.range !== null) req += `Range: ${r.range}\r\n`;
    if (r.host !== null) req += `Host: ${r.host}\r\n`;
    socket.write(req + '\r\n', 'latin1');
  });
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let end = buf.indexOf('\r\n\r\n');
    let sep = 4;
    const lf = buf.indexOf('\n\n');
    if (lf !== -1 && (end === -1 || lf < end)) {
      end = lf;
      sep = 2;
    }
    if (end === -1) {
      if (buf.length > MAX_HEAD) settle({ kind: 'failed', why: 'response head too large' });
      return;
    }
    const head = parseTargetHead(buf.toString('latin1', 0, end));
    if (head === null) return settle({ kind: 'failed', why: 'not an HTTP response' });
    const cl = head.fields.find(([n]) => n.toLowerCase() === 'content-length')?.[1];
    const te = head.fields.some(([n]) => n.toLowerCase() === 'transfer-encoding');
    // A chunked answer to an HTTP/1.0 request is not HTTP: skip the URL rather than relay its framing.
    if (te) return settle({ kind: 'failed', why: 'Transfer-Encoding in an answer to HTTP/1.0' });
    const contentLength = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : null;
    socket.pause();
    settle({ kind: 'ok', status: head.status, fields: head.fields, contentLength, early: buf.subarray(end + sep), socket });
  });
}
