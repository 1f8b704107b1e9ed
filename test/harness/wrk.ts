// Runs Debian's wrk (4.1) with --latency and parses its report. Bounded by a hard kill after duration + 15 s.
import { spawn } from 'node:child_process';

export interface WrkOptions {
  url: string;
  threads: number;
  connections: number;
  durationSeconds: number;
  /** wrk's per-request timeout (default 2 s; counted as "timeout" socket errors). */
  timeoutSeconds?: number;
  /** Extra request header lines (`Cookie: X=1`), sent on every request. */
  headers?: readonly string[];
}

export interface WrkResult {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  /** Latency percentiles in milliseconds. */
  latencyMs: { p50: number; p75: number; p90: number; p99: number };
  errors: { connect: number; read: number; write: number; timeout: number; non2xx3xx: number };
  raw: string;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function durationMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!match) throw new Error(`wrk: unparsable duration ${JSON.stringify(text)}`);
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

/** Parses wrk's text report (exported for a unit test with a captured report). */
export function parseWrk(raw: string): WrkResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(raw);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(raw);
  if (!total || !rps) throw new Error(`wrk: unparsable report:\n${raw}`);
  const percentile = (p: string): number => {
    const match = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(raw);
    return match ? durationMs(match[1]!) : Number.NaN;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(raw);
  return {
    requests: Number(total[1]),
    seconds: durationMs(`${total[2]}${total[3]}`) / 1000,
    requestsPerSecond: Number(rps[1]),
    latencyMs: { p50: percentile('50'), p75: percentile('75'), p90: percentile('90'), p99: percentile('99') },
    errors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
      non2xx3xx: Number(non2xx?.[1] ?? 0),
    },
    raw,
  };
}

export function totalErrors(result: WrkResult): number {
  const e = result.errors;
  return e.connect + e.read + e.write + e.timeout + e.non2xx3xx;
}

export function runWrk(options: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.durationSeconds}s`,
    `--timeout`,
    `${options.timeoutSeconds ?? 2}s`,
    '--latency',
    ...(options.headers ?? []).flatMap((h) => ['-H', h]),
    options.url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (options.durationSeconds + 15) * 1000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`wrk ${args.join(' ')} exited ${code ?? signal}:\n${out}`));
      try {
        resolve(parseWrk(out));
      } catch (error) {
        reject(error);
      }
    });
  });
}
