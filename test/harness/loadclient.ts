// An open-loop HTTP client for the namespace lab, run inside the client namespace: it starts one request every
// --interval-ms on a fresh TCP connection (so every request exercises ARP and the VIP owner at that moment),
// and prints one JSON line per finished request: {"s":start,"e":end,"ok":true,"b":"web1"} or
// {"s":..,"e":..,"ok":false,"err":"timeout"}; times are wall-clock ms. Bounded by --max-requests,
// --max-duration-ms and --max-inflight; SIGTERM stops it early. Ends with {"done":true,"sent":N}.
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '198.18.0.99' },
    port: { type: 'string', default: '80' },
    path: { type: 'string', default: '/' },
    'interval-ms': { type: 'string', default: '20' },
    'timeout-ms': { type: 'string', default: '300' },
    'max-requests': { type: 'string', default: '1000' },
    'max-duration-ms': { type: 'string', default: '30000' },
    'max-inflight': { type: 'string', default: '64' },
  },
});
const host = values.host;
const port = Number(values.port);
const intervalMs = Number(values['interval-ms']);
const timeoutMs = Number(values['timeout-ms']);
const maxRequests = Number(values['max-requests']);
const maxDurationMs = Number(values['max-duration-ms']);
const maxInflight = Number(values['max-inflight']);
const wallNow = (): number => performance.timeOrigin + performance.now();
const request = Buffer.from(`GET ${values.path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

const inflight = new Set<Socket>();
let sent = 0;
let stopping = false;

function report(record: object): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

/** A whole 200 answer (head and Content-Length bytes of body) had arrived: an error after it is only the close's. */
function completeResponse(response: string): boolean {
  const headEnd = response.indexOf('\r\n\r\n');
  if (headEnd < 0 || !/^HTTP\/1\.[01] 200 /.test(response)) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(response.slice(0, headEnd))?.[1];
  return length !== undefined && response.length - headEnd - 4 >= Number(length);
}

function fire(): void {
  const s = wallNow();
  const socket = connect({ host, port });
  inflight.add(socket);
  let response = '';
  let settled = false;
  const finish = (ok: boolean, detail: string): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    inflight.delete(socket);
    socket.destroy();
    report(ok ? { s, e: wallNow(), ok, b: detail } : completeResponse(response) ? { s, e: wallNow(), ok, err: detail, complete: true } : { s, e: wallNow(), ok, err: detail });
    if (stopping && inflight.size === 0) end();
  };
  const timer = setTimeout(() => finish(false, 'timeout'), timeoutMs);
  socket.setNoDelay(true);
  socket.on('connect', () => socket.write(request));
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    if (response.length < 65_536) response += chunk;
  });
  socket.on('error', (error: NodeJS.ErrnoException) => finish(false, error.code ?? error.message));
  socket.on('close', () => {
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1];
    if (status !== '200') return finish(false, status === undefined ? 'no response' : `status ${status}`);
    const bodyStart = response.indexOf('\r\n\r\n');
    finish(true, response.slice(bodyStart + 4).trim());
  });
}

const started = wallNow();
let ended = false;
function end(): void {
  if (ended) return;
  ended = true;
  clearInterval(ticker);
  report({ done: true, sent });
  process.exit(0);
}
function stop(): void {
  stopping = true;
  clearInterval(ticker);
  if (inflight.size === 0) end();
  // In-flight requests finish within timeoutMs; never wait longer.
  setTimeout(end, timeoutMs + 50).unref();
}
const ticker = setInterval(() => {
  if (sent >= maxRequests || wallNow() - started >= maxDurationMs) return stop();
  if (inflight.size >= maxInflight) return report({ s: wallNow(), e: wallNow(), ok: false, err: 'client saturated' });
  sent++;
  fire();
}, intervalMs);
process.on('SIGTERM', stop);
report({ ready: true });
