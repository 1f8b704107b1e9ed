// bench/proxy/rss.ts: where a tsbal build's resident memory goes, before and after load. Starts two nginx
// backends and one tsbal per command line given, then for each: /proc/<pid>/status (RssAnon, RssFile), the
// resident part of the executable's mapping from smaps, and how much of the ICU data blob (the `icudt*_dat`
// symbol of a Node binary, from nm) is mapped in, from /proc/<pid>/pagemap, at idle and after wrk at -c<n>.
//
//   npx bun bench/proxy/rss.ts [--connections 256] [--duration 10] -- 'dist/tsbal' 'env MALLOC_ARENA_MAX=2 dist/tsbal'
//
// Each positional argument is a command (split on spaces, a leading `env K=V ...` sets the environment) that
// gets `run -c <perlbal.conf>` appended.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { startNginxBackend } from '../../test/harness/nginx.ts';
import { startWithConf, reverseProxyConfFor } from '../../test/harness/perlbal.ts';
import { TUTORIAL_OPTIONS } from '../../test/harness/perlbalconf.ts';
import { stopAll } from '../../test/harness/procs.ts';
import { runWrk } from '../../test/harness/wrk.ts';

const { values: args, positionals } = parseArgs({
  options: {
    connections: { type: 'string', default: '256' },
    duration: { type: 'string', default: '10' },
    threads: { type: 'string', default: '2' },
  },
  allowPositionals: true,
});

const PAGE = 4096;
const MiB = 1024 * 1024;

interface Range {
  start: number;
  size: number;
}

/** The ICU data symbol of an ELF executable (non-PIE Node: the address is the runtime address), or null. */
function icuRange(exe: string): Range | null {
  const out = spawnSync('nm', ['-S', exe], { encoding: 'utf8', maxBuffer: 256 * MiB });
  const line = out.stdout?.split('\n').find((l) => / icudt\d+_dat$/.test(l));
  if (line === undefined) return null;
  const [addr, size] = line.split(' ');
  return { start: parseInt(addr!, 16), size: parseInt(size!, 16) };
}

/** Bytes of `range` whose pages are present in the process (pagemap bit 63). */
function residentIn(pid: number, range: Range): number {
  const first = Math.floor(range.start / PAGE);
  const last = Math.floor((range.start + range.size - 1) / PAGE);
  const buf = Buffer.alloc((last - first + 1) * 8);
  const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    fs.readSync(fd, buf, 0, buf.length, first * 8);
  } finally {
    fs.closeSync(fd);
  }
  let pages = 0;
  for (let i = 0; i < buf.length; i += 8) if ((buf.readUInt32LE(i + 4) & 0x80000000) !== 0) pages++;
  return pages * PAGE;
}

function statusKb(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Rss of the mappings backed by `exe`, from smaps. */
function exeRss(pid: number, exe: string): number {
  let total = 0;
  let inExe = false;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inExe = line.endsWith(exe);
    else if (inExe && line.startsWith('Rss:')) total += Number(/(\d+)/.exec(line)![1]) * 1024;
  }
  return total;
}

function snapshot(pid: number, exe: string, icu: Range | null): string {
  const mib = (kb: number): string => (kb / 1024).toFixed(1);
  const icuPart = icu === null ? 'n/a' : (residentIn(pid, icu) / MiB).toFixed(2);
  return `RSS ${mib(statusKb(pid, 'VmRSS'))} = anon ${mib(statusKb(pid, 'RssAnon'))} + file ${mib(statusKb(pid, 'RssFile'))} (exe ${(exeRss(pid, exe) / MiB).toFixed(1)}, ICU ${icuPart}) + shmem ${mib(statusKb(pid, 'RssShmem'))}; HWM ${mib(statusKb(pid, 'VmHWM'))}`;
}

/** Pauses and their total from V8's --trace-gc lines (`Scavenge ... 1.2 / 0.0 ms`), so far in `output`. */
function gcSummary(output: string): { count: number; totalMs: number } {
  let count = 0;
  let totalMs = 0;
  for (const m of output.matchAll(/(?:Scavenge|Mark-Compact|Mark-Sweep)[^\n]*?, ([\d.]+) \/ [\d.]+ ms/g)) {
    count++;
    totalMs += Number(m[1]);
  }
  return { count, totalMs };
}

function parseCommand(text: string): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const words = text.split(' ').filter((w) => w !== '');
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (words[0] === 'env') {
    words.shift();
    while (words[0]?.includes('=')) {
      const [k, ...v] = words.shift()!.split('=');
      env[k!] = v.join('=');
    }
  }
  return { command: words[0]!, args: words.slice(1), env };
}

const backends = [await startNginxBackend({ name: 'r1', body: 'backend!\n' }), await startNginxBackend({ name: 'r2', body: 'backend!\n' })];
try {
  for (const text of positionals) {
    const cmd = parseCommand(text);
    const conf = (ports: number[]) => reverseProxyConfFor({ backends: backends.map((b) => b.port), set: TUTORIAL_OPTIONS })(ports);
    const proxy = await startWithConf('tsbal', 2, conf, (confPath) => ({ ...cmd, args: [...cmd.args, 'run', '-c', confPath] }));
    try {
      const pid = proxy.pid;
      const exe = fs.readlinkSync(`/proc/${pid}/exe`);
      const icu = icuRange(exe);
      await new Promise((r) => setTimeout(r, 500));
      console.log(`${text}\n  idle:  ${snapshot(pid, exe, icu)}`);
      const url = `http://127.0.0.1:${proxy.port}/`;
      await runWrk({ url, threads: Number(args.threads), connections: Number(args.connections), durationSeconds: 1 });
      const gcBefore = gcSummary(proxy.output());
      const wrk = await runWrk({
        url,
        threads: Number(args.threads),
        connections: Number(args.connections),
        durationSeconds: Number(args.duration),
      });
      console.log(`  load:  ${snapshot(pid, exe, icu)}`);
      console.log(`  wrk -c${args.connections}: ${Math.round(wrk.requestsPerSecond)} req/s, p99 ${wrk.latencyMs.p99} ms`);
      const gc = gcSummary(proxy.output());
      if (gc.count > 0) {
        const n = gc.count - gcBefore.count;
        const ms = gc.totalMs - gcBefore.totalMs;
        console.log(`  gc (--trace-gc, measured run): ${n} pauses, ${ms.toFixed(0)} ms total, ${(ms / Math.max(n, 1)).toFixed(2)} ms mean`);
      }
    } finally {
      await stopAll([proxy]);
    }
  }
} finally {
  await stopAll(backends);
}
