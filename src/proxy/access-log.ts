// Access log (opt-in with `access_log`): Apache's combined format, then backend, backend status, time and
// attempts. Lines are batched and written asynchronously so logging does not cost a syscall per request.
import { createWriteStream, type WriteStream } from 'node:fs';
import { F, fieldValue, findField, type FieldCode } from './http/fields.ts';
import { requestTarget, type RequestHead } from './http/request.ts';

export interface AccessLog {
  write(line: string): void;
  close(): Promise<void>;
}

export interface AccessRecord {
  peerIp: string;
  req: RequestHead | null;
  status: number;
  bodyBytes: number;
  backend: string | null;
  backendStatus: number | null;
  seconds: number;
  attempts: number;
  /** The request came as an HTTP/2 stream: logged as `HTTP/2.0`, as Apache does, not as the HTTP/1.1 it became. */
  http2?: boolean;
}

/** Whether a client socket is an HTTP/2 stream's (h2/stream-socket.ts marks its sockets so). */
export function overHttp2(socket: object): boolean {
  return (socket as { http2Stream?: unknown }).http2Stream === true;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

let cachedSecond = -1;
let cachedStamp = '';

/** `[10/Oct/2000:13:55:36 -0700]`, computed once per second. */
export function clfTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second === cachedSecond) return cachedStamp;
  const d = new Date(second * 1000);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  cachedStamp = `[${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(
    d.getMinutes(),
  )}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}]`;
  cachedSecond = second;
  return cachedStamp;
}

function field(req: RequestHead | null, code: FieldCode): string {
  if (req === null) return '-';
  const i = findField(req.fields, code);
  return i === -1 ? '-' : fieldValue(req.fields, i);
}

/** Quotes a request-derived string the way Apache does: `"` and `\` escaped, control bytes as \xHH. */
function esc(s: string): string {
  return /["\\\x00-\x1f\x7f-\xff]/.test(s)
    ? s.replace(/["\\\x00-\x1f\x7f-\xff]/g, (ch) =>
        ch === '"' || ch === '\\' ? `\\${ch}` : `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`,
      )
    : s;
}

export function accessLogLine(r: AccessRecord, nowMs: number = Date.now()): string {
  const reqLine = r.req === null ? '-' : `${r.req.method} ${requestTarget(r.req)} ${r.http2 === true ? 'HTTP/2.0' : `HTTP/1.${r.req.minor}`}`;
  return (
    `${r.peerIp} - - ${clfTime(nowMs)} "${esc(reqLine)}" ${r.status} ${r.bodyBytes > 0 ? r.bodyBytes : '-'} ` +
    `"${esc(field(r.req, F.REFERER))}" "${esc(field(r.req, F.USER_AGENT))}" ` +
    `backend=${r.backend ?? '-'} backend_status=${r.backendStatus ?? '-'} time=${r.seconds.toFixed(3)} attempts=${r.attempts}\n`
  );
}

/** Opens `target` (a path, or 'stdout') for appending. */
export function openAccessLog(target: string): AccessLog {
  const stream: NodeJS.WritableStream | WriteStream =
    target === 'stdout' ? process.stdout : createWriteStream(target, { flags: 'a' });
  let buffer = '';
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (buffer.length === 0) return;
    const out = buffer;
    buffer = '';
    stream.write(out);
  };
  return {
    write(line: string): void {
      buffer += line;
      if (buffer.length > 64 * 1024) flush();
      else if (!scheduled) {
        scheduled = true;
        setTimeout(flush, 50).unref?.();
      }
    },
    close(): Promise<void> {
      flush();
      if (target === 'stdout') return Promise.resolve();
      return new Promise((resolve) => (stream as WriteStream).end(() => resolve()));
    },
  };
}
