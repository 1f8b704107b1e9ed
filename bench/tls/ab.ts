// Apache's ab as a TLS client that never resumes a session: every connection is a full handshake (certificate
// signature, key exchange), unlike wrk, which offers the ticket its previous connection got. ab speaks HTTP/1.0
// without keep-alive, so each request is one connection. Bounded by -t and a hard kill 15 s later.
import { spawn } from 'node:child_process';

export interface AbResult { requests: number; seconds: number; requestsPerSecond: number; errors: number }

export function parseAb(raw: string): AbResult {
  const complete = /Complete requests:\s+(\d+)/.exec(raw);
  const taken = /Time taken for tests:\s+([\d.]+) seconds/.exec(raw);
  if (!complete || !taken) throw new Error(`ab: unparsable report:\n${raw}`);
  const failed = Number(/Failed requests:\s+(\d+)/.exec(raw)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx responses:\s+(\d+)/.exec(raw)?.[1] ?? 0);
  const requests = Number(complete[1]);
  const seconds = Number(taken[1]);
  return { requests, seconds, requestsPerSecond: requests / seconds, errors: failed + non2xx };
}

export function runAb(url: string, connections: number, durationSeconds: number): Promise<AbResult> {
  // -n caps the count (ab's -t alone implies 50000); -s: per-request timeout; -r: keep going on socket errors.
  const args = ['-q', '-r', '-s', '5', '-c', String(connections), '-t', String(durationSeconds), '-n', '1000000', url];
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/ab', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const kill = setTimeout(() => child.kill('SIGKILL'), (durationSeconds + 15) * 1000);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(kill);
      try {
        resolve(parseAb(out));
      } catch (e) {
        reject(e);
      }
    });
  });
}
