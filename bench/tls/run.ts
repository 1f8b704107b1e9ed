// bench/tls: TLS termination, tsbal beside HAProxy (nbthread 1) in the same run, in front of the same nginx backend
// (plain HTTP, keep-alive). Same certificate for both (ECDSA P-256, then RSA 2048), made by openssl. Measures, per
// certificate kind: handshakes per second (wrk with `Connection: close`, so every request is a new TLS connection
// with a full handshake) and keep-alive HTTPS requests per second, each with the proxy's CPU seconds per 1000
// requests (/proc, the proxy's process group). Rounds interleave the proxies; the table shows medians.
//
//   npx bun bench/tls/run.ts [--rounds 3] [--duration 5] [--connections 32] [--threads 2] [--no-build] [--node PATH]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makePki } from '../../test/harness/certs.ts';
import { startNginxBackend } from '../../test/harness/nginx.ts';
import { type Daemon, makeTempDir, startDaemon, startWithFreshPorts, stopAll } from '../../test/harness/procs.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { DIST_BUNDLE } from '../../test/harness/tsbal.ts';
import { LOOPBACK } from '../../test/harness/ports.ts';
import { runWrk, totalErrors } from '../../test/harness/wrk.ts';
import { RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    'no-build': { type: 'boolean', default: false },
    /** The Node that runs dist/tsbal.cjs (the shipped SEA binary is Node 22: give node_modules/.bin/node). */
    node: { type: 'string', default: '/usr/bin/node' },
  },
});
const ROUNDS = Number(args.rounds);
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const THREADS = Number(args.threads);

type Proxy = Daemon & { port: number };

function startHaproxyTls(backend: number, pem: string): Promise<Proxy> {
  return startWithFreshPorts(1, async ([port]) => {
    const dir = makeTempDir('bench-haproxy-tls');
    const conf = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(conf, `global
  nbthread 1
  maxconn 4096
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  option http-keep-alive
  option forwardfor
  http-reuse always
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind ${LOOPBACK}:${port} ssl crt ${pem}
  http-request set-header X-Forwarded-Proto https
  default_backend be
backend be
  server b1 ${LOOPBACK}:${backend}
`);
    const d = await startDaemon({ name: 'haproxy-tls', command: '/usr/sbin/haproxy', args: ['-db', '-f', conf], dir, ports: [port!] });
    return { ...d, port: port! };
  });
}

function startTsbalTls(backend: number, crt: string, key: string): Promise<Proxy> {
  return startWithFreshPorts(1, async ([port]) => {
    const dir = makeTempDir('bench-tsbal-tls');
    const conf = path.join(dir, 'perlbal.conf');
    fs.writeFileSync(conf, `CREATE POOL p
  POOL p ADD ${LOOPBACK}:${backend}
CREATE SERVICE site
  SET listen = ${LOOPBACK}:${port}
  SET role = reverse_proxy
  SET pool = p
  SET persist_client = on
  SET persist_backend = on
  SET enable_ssl = on
  SET ssl_cert_file = ${crt}
  SET ssl_key_file = ${key}
ENABLE site
`);
    const d = await startDaemon({ name: 'tsbal-tls', command: args.node, args: [...RUN_V8_FLAGS, DIST_BUNDLE, 'run', '-c', conf], dir, ports: [port!] });
    return { ...d, port: port! };
  });
}

interface Row { proxy: string; cert: string; mode: string; rps: number; cpuPer1k: number; errors: number }

async function measure(p: Proxy, name: string, cert: string, mode: 'handshake' | 'keepalive'): Promise<Row> {
  const url = `https://${LOOPBACK}:${p.port}/`;
  const headers = mode === 'handshake' ? ['Connection: close'] : [];
  await runWrk({ url, threads: THREADS, connections: CONNECTIONS, durationSeconds: 1, headers });
  const cpu0 = p.usage().cpuSeconds;
  const r = await runWrk({ url, threads: THREADS, connections: CONNECTIONS, durationSeconds: DURATION, headers });
  const cpu = p.usage().cpuSeconds - cpu0;
  return { proxy: name, cert, mode, rps: r.requestsPerSecond, cpuPer1k: (cpu / Math.max(1, r.requests)) * 1000, errors: totalErrors(r) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (!args['no-build']) {
    const b = spawnSync(`${REPO_ROOT}node_modules/.bin/node`, [`${REPO_ROOT}build/bundle.ts`], { stdio: 'inherit', cwd: REPO_ROOT });
    if (b.status !== 0) throw new Error('bundle build failed');
  }
  const pki = makePki();
  const ec = pki.issue('ec', ['127.0.0.1']);
  const rsa = pki.issue('rsa', ['127.0.0.1'], { key: 'rsa' });
  const pems = { ec: path.join(pki.dir, 'ec.pem'), rsa: path.join(pki.dir, 'rsa.pem') };
  for (const [k, leaf] of [['ec', ec], ['rsa', rsa]] as const) fs.writeFileSync(pems[k], fs.readFileSync(leaf.crt, 'latin1') + fs.readFileSync(leaf.key, 'latin1'), { mode: 0o600 });
  const backend = await startNginxBackend({ name: 'tls-bench' });
  const daemons: Daemon[] = [backend];
  const rows: Row[] = [];
  try {
    for (const [cert, leaf] of [['ECDSA P-256', ec], ['RSA 2048', rsa]] as const) {
      const haproxy = await startHaproxyTls(backend.port, cert === 'RSA 2048' ? pems.rsa : pems.ec);
      const tsbal = await startTsbalTls(backend.port, leaf.crt, leaf.key);
      daemons.push(haproxy, tsbal);
      for (let round = 0; round < ROUNDS; round++) {
        for (const mode of ['handshake', 'keepalive'] as const) {
          for (const [name, p] of [['haproxy', haproxy], ['tsbal', tsbal]] as const) rows.push(await measure(p, name, cert, mode));
        }
      }
      await stopAll([haproxy, tsbal]);
    }
  } finally {
    await stopAll(daemons);
    pki.cleanup();
  }
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const out: string[] = [`tsbal under ${args.node} (${spawnSync(args.node, ['--version'], { encoding: 'utf8' }).stdout.trim()}); wrk -t${THREADS} -c${CONNECTIONS}, ${ROUNDS} rounds of ${DURATION} s, medians; load average at the end ${load}`, '',
    '| certificate | load | haproxy req/s | tsbal req/s | tsbal/haproxy | haproxy CPU s/1k req | tsbal CPU s/1k req | errors (h/t) |', '|---|---|---|---|---|---|---|---|'];
  for (const cert of ['ECDSA P-256', 'RSA 2048']) {
    for (const mode of ['handshake', 'keepalive']) {
      const pick = (name: string): Row[] => rows.filter((r) => r.cert === cert && r.mode === mode && r.proxy === name);
      const h = pick('haproxy');
      const t = pick('tsbal');
      const hr = median(h.map((r) => r.rps));
      const tr = median(t.map((r) => r.rps));
      out.push(`| ${cert} | ${mode === 'handshake' ? 'new TLS connection per request' : 'keep-alive HTTPS'} | ${hr.toFixed(0)} | ${tr.toFixed(0)} | ${(tr / hr).toFixed(2)} | ${median(h.map((r) => r.cpuPer1k)).toFixed(3)} | ${median(t.map((r) => r.cpuPer1k)).toFixed(3)} | ${h.reduce((s, r) => s + r.errors, 0)}/${t.reduce((s, r) => s + r.errors, 0)} |`);
    }
  }
  console.log(out.join('\n'));
}

await main();
