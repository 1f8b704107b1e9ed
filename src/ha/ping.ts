// ha.cf `ping` / `ping_group` nodes: one long-running `ping` per address (node:dgram has no ICMP), each reply line
// reported to the node as a pingReply for its target. Works with iputils and GNU inetutils ping.
import { spawn, type ChildProcess } from 'node:child_process';

export interface Pinger {
  close(): void;
}

export interface PingerOptions {
  targets: Array<{ name: string; members: string[] }>;
  intervalMs: number;
  onReply(target: string): void;
  onLog(level: 'warn' | 'error', msg: string): void;
}

const RESTART_DELAY_MS = 1000;

export function startPinger(o: PingerOptions): Pinger {
  const children = new Set<ChildProcess>();
  let closed = false;
  const interval = String(Math.max(0.05, o.intervalMs / 1000));
  const run = (target: string, ip: string): void => {
    if (closed) return;
    const child = spawn('ping', ['-n', '-i', interval, ip], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let pending = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.includes(`bytes from ${ip}`)) o.onReply(target);
    });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-500)));
    child.on('error', (e) => o.onLog('error', `ping ${ip}: ${e.message}${(e as NodeJS.ErrnoException).code === 'ENOENT' ? ' (install iputils-ping or inetutils-ping)' : ''}`));
    child.on('close', (code) => {
      children.delete(child);
      if (closed) return;
      o.onLog('warn', `ping ${ip} exited (${code}): ${err.trim()}; restarting`);
      setTimeout(() => run(target, ip), RESTART_DELAY_MS).unref();
    });
  };
  for (const t of o.targets) for (const ip of t.members) run(t.name, ip);
  return {
    close() {
      closed = true;
      for (const c of children) c.kill('SIGTERM');
      children.clear();
    },
  };
}
