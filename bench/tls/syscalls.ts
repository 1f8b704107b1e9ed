// bench/tls/syscalls: system calls per request (strace -c -f on the proxy's process), and user vs system CPU per
// request (/proc), for the same loads as instructions.ts: callgrind counts user-space instructions only, and on
// this machine the kernel's share of a TLS connection is as large as OpenSSL's. strace slows the proxy, so the CPU
// split comes from a separate pass without it.
//
//   npx bun bench/tls/syscalls.ts [--handshakes 300] [--requests 3000] [--bun dist/tsbal-bun]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makePki } from '../../test/harness/certs.ts';
import { startNginxBackend } from '../../test/harness/nginx.ts';
import { type Daemon, stopAll } from '../../test/harness/procs.ts';
import { REPO_ROOT } from '../../test/harness/cli.ts';
import { DIST_BUNDLE } from '../../test/harness/tsbal.ts';
import { LOOPBACK } from '../../test/harness/ports.ts';
import { RUN_V8_FLAGS } from '../../src/runtime/v8-flags.ts';
import { type Proxy, startHaproxyTls, startTsbalTls, type TsbalForm } from './proxies.ts';

const { values: args } = parseArgs({
  options: {
    handshakes: { type: 'string', default: '300' },
    requests: { type: 'string', default: '3000' },
    node: { type: 'string', default: path.join(REPO_ROOT, 'node_modules/.bin/node') },
    bun: { type: 'string' },
  },
});
const HANDSHAKES = Number(args.handshakes);
const REQUESTS = Number(args.requests);
type Mode = 'full' | 'resumed' | 'keepalive';
const MODES: Mode[] = ['full', 'resumed', 'keepalive'];

function send(url: string, mode: Mode, n: number): void {
  const r = mode === 'full'
    ? spawnSync('/usr/bin/ab', ['-q', '-r', '-s', '30', '-c', '4', '-n', String(n), url], { encoding: 'utf8', timeout: 600_000 })
    : spawnSync('/usr/bin/h2load', ['--h1', '-n', String(n), '-c', '4', '-t', '1', ...(mode === 'resumed' ? ['-H', 'Connection: close'] : []), url], { encoding: 'utf8', timeout: 600_000 });
  const ok = mode === 'full' ? Number(/Complete requests:\s+(\d+)/.exec(r.stdout)?.[1] ?? -1) : Number(/(\d+) succeeded/.exec(r.stdout)?.[1] ?? -1);
  if (ok !== n) throw new Error(`${mode}: ${n} requests expected:\n${r.stdout}${r.stderr}`);
}

/** utime and stime of every thread of `pid`, in seconds. */
function cpuOf(pid: number): { user: number; system: number } {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const tick = 100;
  return { user: Number(fields[11]) / tick, system: Number(fields[12]) / tick };
}

async function strace(pid: number, run: () => void): Promise<Map<string, number>> {
  const out = path.join(fs.mkdtempSync('/tmp/tsbal-strace-'), 'summary');
  const child = spawn('strace', ['-c', '-f', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000));
  run();
  child.kill('SIGINT');
  await new Promise((r) => child.on('close', r));
  const counts = new Map<string, number>();
  for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m !== null && m[2] !== 'total') counts.set(m[2]!, Number(m[1]));
  }
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  return counts;
}

async function main(): Promise<void> {
  const pki = makePki();
  const leaf = pki.issue('ec', ['127.0.0.1']);
  const pem = path.join(pki.dir, 'ec.pem');
  fs.writeFileSync(pem, fs.readFileSync(leaf.crt, 'latin1') + fs.readFileSync(leaf.key, 'latin1'), { mode: 0o600 });
  const backend = await startNginxBackend({ name: 'tls-sys' });
  const node = path.resolve(args.node);
  const forms: TsbalForm[] = [{ name: 'tsbal-node', command: node, args: [...RUN_V8_FLAGS, DIST_BUNDLE], describe: 'Node + bundle' }];
  if (args.bun !== undefined) forms.push({ name: 'tsbal-bun', command: path.resolve(args.bun), args: [], describe: 'Bun binary' });
  const daemons: Daemon[] = [backend];
  const lines: string[] = [];
  try {
    const starters: Array<[string, () => Promise<Proxy>]> = [['haproxy', () => startHaproxyTls(backend.port, pem)]];
    for (const form of forms) starters.push([form.name, () => startTsbalTls(form, backend.port, leaf.crt, leaf.key)]);
    for (const [name, start] of starters) {
      const p = await start();
      daemons.push(p);
      const url = `https://${LOOPBACK}:${p.port}/`;
      for (const mode of MODES) {
        const n = mode === 'keepalive' ? REQUESTS : HANDSHAKES;
        send(url, mode, n);
        const c0 = cpuOf(p.pid);
        send(url, mode, n);
        const c1 = cpuOf(p.pid);
        const counts = await strace(p.pid, () => send(url, mode, n));
        const total = [...counts.values()].reduce((a, b) => a + b, 0);
        const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${(v / n).toFixed(1)}`).join(', ');
        lines.push(`| ${name} | ${mode} | ${(((c1.user - c0.user) / n) * 1000).toFixed(3)} | ${(((c1.system - c0.system) / n) * 1000).toFixed(3)} | ${(total / n).toFixed(1)} | ${top} |`);
        console.error(lines.at(-1));
      }
      await stopAll([p]);
    }
  } finally {
    await stopAll(daemons);
    pki.cleanup();
  }
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`ECDSA P-256; ${HANDSHAKES} handshakes / ${REQUESTS} keep-alive requests per pass, 4 connections; load average ${load}`);
  console.log('');
  console.log('| proxy | load | user CPU ms/req | system CPU ms/req | syscalls/req | most frequent (per request) |');
  console.log('|---|---|---|---|---|---|');
  for (const l of lines) console.log(l);
}

await main();
