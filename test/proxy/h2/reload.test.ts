// HTTP/2 connections across a reload and a stop of `tsbal run` as shipped (Node and Bun), with node:http2 as the
// client: a reload (SIGHUP) that removes a service tells its HTTP/2 connections GOAWAY (NO_ERROR, naming the stream
// in flight), answers that stream and closes them, as an HTTP/1.1 connection of a removed service closes after its
// request; a kept service's connection goes on untouched. A stop (SIGTERM) says GOAWAY to an idle connection too.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePki, type Leaf, type TestPki } from '../../harness/certs.ts';
import { execProc, type ExecResult, type ProcHandle } from '../../harness/proc.ts';
import { freePort } from '../../harness/ports.ts';
import { namedBackend, RUNTIMES, startTsbal, stopTsbal, type NamedBackend } from './daemon.ts';

let pki: TestPki;
let leaf: Leaf;
let be: NamedBackend;

beforeAll(async () => {
  pki = makePki();
  leaf = pki.issue('site', ['h2.test']);
  be = await namedBackend('be1', 1_500);
});
afterAll(async () => {
  await be?.close();
  pki?.cleanup();
});

interface Got {
  /** Each request: `status body`, or `error CODE`. */
  answers: string[];
  goaway: { code: number; last: number } | null;
  /** Milliseconds from the GOAWAY (or the start) to the session's close; -1 if it did not close. */
  closedAfterMs: number;
}

/**
 * A node:http2 client: one session to `url`; the paths are requested at the given delays (ms) on that session. It
 * prints what it got when the session closes or after `lifeMs`.
 */
function client(url: string, requests: Array<[number, string]>, lifeMs: number): Promise<ExecResult> {
  const script = `const http2 = require('node:http2');
const session = http2.connect(${JSON.stringify(url)}, { rejectUnauthorized: false, servername: 'h2.test' });
session.on('error', () => {});
const t0 = Date.now();
let goawayAt = t0;
const got = { answers: [], goaway: null, closedAfterMs: -1 };
const print = () => { console.log(JSON.stringify(got)); process.exit(0); };
session.on('goaway', (code, last) => { got.goaway = { code, last }; goawayAt = Date.now(); });
session.on('close', () => { got.closedAfterMs = Date.now() - goawayAt; setTimeout(print, 50); });
for (const [at, path] of ${JSON.stringify(requests)}) setTimeout(() => {
  const i = got.answers.push('pending') - 1;
  let req;
  try { req = session.request({ ':path': path, ':authority': 'h2.test' }); } catch (e) { got.answers[i] = 'error ' + e.code; return; }
  let status = 0, body = '';
  req.on('response', (h) => { status = h[':status']; });
  req.setEncoding('utf8');
  req.on('data', (d) => { body += d; });
  req.on('end', () => { got.answers[i] = status + ' ' + body.trim(); });
  req.on('error', (e) => { got.answers[i] = 'error ' + e.code; });
}, at);
setTimeout(print, ${lifeMs});`;
  return execProc(['node', '-e', script], { timeoutMs: lifeMs + 10_000 });
}

const parse = (r: ExecResult): Got => JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null') as Got;

function service(name: string, port: number, tls: boolean): string {
  return `CREATE SERVICE ${name}
  SET listen = 127.0.0.1:${port}
  SET role = reverse_proxy
  SET pool = p
  SET idle_timeout = 30
${tls ? `  SET enable_ssl = on\n  SET ssl_cert_file = ${leaf.crt}\n  SET ssl_key_file = ${leaf.key}\n` : '  SET http2_cleartext = on\n'}ENABLE ${name}
`;
}

async function waitForLog(proc: ProcHandle, re: RegExp, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!re.test(proc.stdout() + proc.stderr()) && Date.now() < until) await Bun.sleep(50);
  if (!re.test(proc.stdout() + proc.stderr())) throw new Error(`no ${re} in tsbal's log: ${proc.stdout()}${proc.stderr()}`);
}

describe.each(RUNTIMES)('HTTP/2 connections across reload and stop, tsbal under %p', (rt) => {
  test('a reload removing the service: GOAWAY NO_ERROR naming the stream in flight, which is answered; then the connection closes. A kept service\'s connection serves on', async () => {
    const [gone, goneClear, stay] = [await freePort(), await freePort(), await freePort()];
    const conf = join(pki.dir, `h2-reload-${rt.name}.conf`);
    const pool = `CREATE POOL p\n  POOL p ADD 127.0.0.1:${be.port}\n`;
    writeFileSync(conf, pool + service('gone', gone, true) + service('goneclear', goneClear, false) + service('stay', stay, true));
    const proc = await startTsbal(rt, conf, [gone, goneClear, stay], 'h2-reload');
    try {
      const tag = `${rt.name}-${Date.now()}`;
      const clients = [
        client(`https://127.0.0.1:${gone}`, [[0, `/slow/tls-${tag}`]], 12_000),
        client(`http://127.0.0.1:${goneClear}`, [[0, `/slow/h2c-${tag}`]], 12_000),
        // Its second request comes after the reload, on the same connection.
        client(`https://127.0.0.1:${stay}`, [[0, `/stay1-${tag}`], [4_000, `/stay2-${tag}`]], 6_000),
      ];
      // Both slow requests are at the backend (answered 1.5 s later): the reload comes while they are in flight.
      const until = Date.now() + 10_000;
      while (be.seen.filter((s) => s.url.endsWith(tag) && s.url.startsWith('/slow/')).length < 2 && Date.now() < until) await Bun.sleep(20);
      writeFileSync(conf, pool + service('stay', stay, true));
      proc.kill('SIGHUP');
      await waitForLog(proc, /reload OK/, 10_000);
      const [tls, clear, kept] = (await Promise.all(clients)).map(parse);
      for (const [got, path] of [[tls, `/slow/tls-${tag}`], [clear, `/slow/h2c-${tag}`]] as const) {
        expect({ answers: got!.answers, goaway: got!.goaway }).toEqual({ answers: [`200 be1 ${path}`], goaway: { code: 0, last: 1 } });
        // Closed once its stream was answered (about 1.5 s after the reload), long before idle_timeout (30 s).
        expect(got!.closedAfterMs).toBeGreaterThanOrEqual(0);
        expect(got!.closedAfterMs).toBeLessThan(5_000);
      }
      expect(kept).toEqual({ answers: [`200 be1 /stay1-${tag}`, `200 be1 /stay2-${tag}`], goaway: null, closedAfterMs: -1 });
    } finally {
      await stopTsbal(proc);
    }
  }, 60_000);

  test('a stop (SIGTERM): an idle HTTP/2 connection gets GOAWAY NO_ERROR at once and is closed; tsbal exits 0', async () => {
    const port = await freePort();
    const conf = join(pki.dir, `h2-stop-${rt.name}.conf`);
    writeFileSync(conf, `CREATE POOL p\n  POOL p ADD 127.0.0.1:${be.port}\n${service('site', port, true)}`);
    const proc = await startTsbal(rt, conf, [port], 'h2-stop');
    try {
      const tag = `${rt.name}-${Date.now()}`;
      const c = client(`https://127.0.0.1:${port}`, [[0, `/idle-${tag}`]], 10_000);
      const until = Date.now() + 10_000;
      while (!be.seen.some((s) => s.url === `/idle-${tag}`) && Date.now() < until) await Bun.sleep(20);
      await Bun.sleep(300); // answered; the connection is idle now
      proc.kill('SIGTERM');
      const got = parse(await c);
      expect({ answers: got.answers, goaway: got.goaway }).toEqual({ answers: [`200 be1 /idle-${tag}`], goaway: { code: 0, last: 1 } });
      expect(got.closedAfterMs).toBeGreaterThanOrEqual(0);
      expect(got.closedAfterMs).toBeLessThan(2_000);
      expect((await proc.exited).code).toBe(0);
    } finally {
      await stopTsbal(proc);
    }
  }, 40_000);

  test('a stop whose drain timeout (0.5 s) passes while a stream waits for its backend: GOAWAY at once, the stream answered 504 at the deadline, the connection closed', async () => {
    const port = await freePort();
    const conf = join(pki.dir, `h2-deadline-${rt.name}.conf`);
    writeFileSync(conf, `CREATE POOL p\n  POOL p ADD 127.0.0.1:${be.port}\n${service('site', port, true)}`);
    const proc = await startTsbal(rt, conf, [port], 'h2-deadline', ['--drain-timeout', '0.5']);
    try {
      const tag = `${rt.name}-${Date.now()}`;
      const c = client(`https://127.0.0.1:${port}`, [[0, `/slow/deadline-${tag}`]], 10_000);
      const until = Date.now() + 10_000;
      while (!be.seen.some((s) => s.url === `/slow/deadline-${tag}`) && Date.now() < until) await Bun.sleep(20);
      proc.kill('SIGTERM');
      const got = parse(await c);
      expect({ answers: got.answers.map((a) => a.split(' ')[0]), goaway: got.goaway }).toEqual({ answers: ['504'], goaway: { code: 0, last: 1 } });
      // GOAWAY came with the stop; the close came with the 504, at the 0.5 s deadline (the backend answers at 1.5 s).
      expect(got.closedAfterMs).toBeGreaterThanOrEqual(300);
      expect(got.closedAfterMs).toBeLessThan(1_400);
      expect((await proc.exited).code).toBe(0);
    } finally {
      await stopTsbal(proc);
    }
  }, 40_000);
});
