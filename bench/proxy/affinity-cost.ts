// The per-request work session affinity adds, timed in process (no sockets, so the machine's load matters far less
// than in bench/proxy/run.ts): reading the pin from a browser's Cookie field, finding the pinned backend, and the
// response head with and without a Set-Cookie to rewrite. Compare with the whole proxy's CPU per request from
// run.ts (CPU s/100k × 10 = µs per request).
//
//   npx bun bench/proxy/affinity-cost.ts [--iterations 2000000]
import { parseArgs } from 'node:util';
import { parseRequestHead } from '../../src/proxy/http/request.ts';
import { parseResponseHead } from '../../src/proxy/http/response.ts';
import { writeClientResponseHead } from '../../src/proxy/http/response-head.ts';
import { newHeadWriter, takeWritten } from '../../src/proxy/http/writer.ts';
import { findCookie, keyFromSecret, newSticky, setCookiePrefix, stickyIdOf, upstreamById } from '../../src/proxy/upstream/affinity.ts';

const { values: args } = parseArgs({ options: { iterations: { type: 'string', default: '2000000' } } });
const N = Number(args.iterations);
const LIMITS = { maxHeaderSize: 65536, maxHeaderCount: 100, maxUrlLength: 8192 };

const sticky = newSticky('cookie', 'TSBALID', keyFromSecret('bench'));
const nodes = Array.from({ length: 10 }, (_, i) => ({ key: `10.0.0.${i + 2}:80` }));
const pin = stickyIdOf(sticky, nodes[7]!.key);
const reqBuf = Buffer.from(
  'GET /shop/cart HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\n' +
    'Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\n' +
    `Cookie: _ga=GA1.2.123456789.1700000000; PHPSESSID=abcdef0123456789; TSBALID=${pin}; lang=en\r\n\r\n`,
  'latin1',
);
const req = parseRequestHead(reqBuf, 0, reqBuf.length - 4, LIMITS);
if (req.kind === 'error') throw new Error(req.reason);
const resBuf = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: PHPSESSID=abcdef0123456789; path=/\r\nContent-Length: 9\r\n\r\n', 'latin1');
const res = parseResponseHead(resBuf, 0, resBuf.length - 4, 'GET', LIMITS);
if (res.kind === 'error') throw new Error(res.reason);
const suffix = Buffer.from('Connection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n', 'latin1');
const w = newHeadWriter();
const prefix = setCookiePrefix(newSticky('prefix', 'PHPSESSID', keyFromSecret('bench')), nodes[7]!.key);

function time(name: string, fn: () => unknown): number {
  for (let i = 0; i < Math.min(N, 200_000); i++) fn();
  const t0 = process.hrtime.bigint();
  let sink: unknown;
  for (let i = 0; i < N; i++) sink = fn();
  const ns = Number(process.hrtime.bigint() - t0) / N;
  if (sink === Symbol.for('never')) console.log(sink);
  console.log(`${name.padEnd(58)} ${ns.toFixed(1).padStart(7)} ns`);
  return ns;
}

const cookie = time('findCookie (4 cookies, TSBALID third)', () => findCookie(req.fields, 'TSBALID'));
const lookup = time('upstreamById (10 backends, the 8th)', () => upstreamById(sticky, nodes, pin));
const plain = time('response head, affinity off', () => {
  writeClientResponseHead(w, res, { suffix, dechunk: false, upgrade: false, setCookie: null, prefixCookie: null }, 0);
  return takeWritten(w);
});
const pinning = time('response head + Set-Cookie (cookie mode, pinning anew)', () => {
  writeClientResponseHead(w, res, { suffix, dechunk: false, upgrade: false, setCookie: 'TSBALID=AbCdEf012345; Path=/; HttpOnly; SameSite=Lax', prefixCookie: null }, 0);
  return takeWritten(w);
});
const prefixed = time("response head, prefix mode (app's Set-Cookie rewritten)", () => {
  writeClientResponseHead(w, res, { suffix, dechunk: false, upgrade: false, setCookie: null, prefixCookie: prefix }, 0);
  return takeWritten(w);
});
console.log(`\npinned request in cookie mode: +${(cookie + lookup).toFixed(0)} ns (cookie read + backend found), no Set-Cookie`);
console.log(`first request (pinning):       +${(cookie + pinning - plain).toFixed(0)} ns`);
console.log(`prefix mode, app sets cookie:  +${(prefixed - plain).toFixed(0)} ns`);
