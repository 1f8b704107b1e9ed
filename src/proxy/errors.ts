// The one place where a proxy failure becomes a status code and a short body the client can read.
import { reasonPhrase } from './http/status.ts';

export type ProxyFailure =
  /** The request itself was refused by the parser (smuggling attempt, malformed, too large). */
  | { kind: 'bad-request'; status: number; reason: string }
  /** The request head did not arrive within header_timeout. */
  | { kind: 'header-timeout' }
  /** The request body exceeded max_body_size. */
  | { kind: 'body-too-large' }
  /** Every backend is marked down (or the pool is empty). */
  | { kind: 'no-backend' }
  /** Every usable backend stayed at its max_conns for queue_timeout while the request waited. */
  | { kind: 'queue-timeout' }
  /** Connecting failed on every attempt (refused, unreachable). */
  | { kind: 'connect-failed'; reason: string }
  /** Connect (or the verify probe) did not finish within connect_timeout on the last attempt. */
  | { kind: 'connect-timeout' }
  /** The backend closed or reset before a complete response head. */
  | { kind: 'backend-closed'; reason: string }
  /** The backend's response could not be parsed or framed. */
  | { kind: 'bad-response'; reason: string }
  /** No response head within response_timeout. */
  | { kind: 'response-timeout' }
  /** buffer_uploads could not write (or read back) the body's spool file: disk full, path not writable. */
  | { kind: 'spool-failed'; reason: string };

export function failureStatus(f: ProxyFailure): number {
  switch (f.kind) {
    case 'bad-request':
      return f.status;
    case 'header-timeout':
      return 408;
    case 'body-too-large':
      return 413;
    case 'no-backend':
    case 'queue-timeout':
    case 'connect-failed':
    case 'spool-failed':
      return 503;
    case 'connect-timeout':
    case 'response-timeout':
      return 504;
    case 'backend-closed':
    case 'bad-response':
      return 502;
  }
}

export function failureMessage(f: ProxyFailure): string {
  switch (f.kind) {
    case 'bad-request':
      return f.reason;
    case 'header-timeout':
      return 'request header not received in time';
    case 'body-too-large':
      return 'request body larger than max_body_size';
    case 'no-backend':
      return 'no backend available';
    case 'queue-timeout':
      return 'every backend is busy (max_conns); waited queue_timeout for a free one';
    case 'connect-failed':
      return 'could not connect to a backend';
    case 'connect-timeout':
      return 'timed out connecting to a backend';
    case 'backend-closed':
      return 'backend closed the connection before responding';
    case 'bad-response':
      return 'invalid response from backend';
    case 'response-timeout':
      return 'backend did not respond in time';
    case 'spool-failed':
      return 'the upload could not be buffered: ' + f.reason;
  }
}

export interface GeneratedResponseOptions {
  keepAlive: boolean;
  keepAliveTimeoutSec: number;
  serverTokens: boolean;
  /** HEAD: headers only. */
  head: boolean;
}

/**
 * A response tsbal generates itself, in Perlbal's shape (`<h1>CODE - Text</h1>` plus a one-line message, text/html,
 * `Server` only with server_tokens) but with an HTTP/1.1 status line.
 */
export function generatedResponse(status: number, message: string, o: GeneratedResponseOptions): Buffer {
  return simplePage(status, `${message}\n`, o);
}

/** Perlbal's _simple_response page (plugin answers such as `403 Access denied.`): the body exactly as Perlbal makes it. */
export function simplePage(status: number, message: string, o: GeneratedResponseOptions, english: string = reasonPhrase(status)): Buffer {
  // Perlbal's _simple_response: no Content-Type, length or body for 204 and 304.
  if (status === 204 || status === 304) return cannedResponse(status, [], '', o);
  const body = `<h1>${status}${english === '' ? '' : ` - ${english}`}</h1>\n${message}`;
  return cannedResponse(status, [['Content-Type', 'text/html'], ['Content-Length', String(Buffer.byteLength(body))]], body, o);
}

/** Status line, `fields` in order, then Server and the connection fields (Perlbal's order), then the body unless HEAD. */
export function cannedResponse(status: number, fields: ReadonlyArray<readonly [string, string]>, body: string, o: GeneratedResponseOptions): Buffer {
  let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
  for (const [name, value] of fields) head += `${name}: ${value}\r\n`;
  if (o.serverTokens) head += 'Server: tsbal\r\n';
  if (o.keepAlive) {
    head += 'Connection: keep-alive\r\n';
    if (o.keepAliveTimeoutSec > 0) head += `Keep-Alive: timeout=${o.keepAliveTimeoutSec}, max=100\r\n`;
  } else {
    head += 'Connection: close\r\n';
  }
  return Buffer.from(o.head ? `${head}\r\n` : `${head}\r\n${body}`, 'latin1');
}
