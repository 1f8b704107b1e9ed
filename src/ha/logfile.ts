// ha.cf's `logfile` and `debugfile`: besides tsbal's own log, HA messages are appended there in heartbeat's line
// format (`Nov 25 19:44:00 lb2 tsbal: [1234]: WARN: node lb1: is dead`), so the file sysadmins tail keeps working.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { ConsolaInstance } from 'consola';

export type HaLogLevel = 'debug' | 'info' | 'warn' | 'error';
export type HaLog = Record<HaLogLevel, (msg: string) => void>;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const TAGS: Record<HaLogLevel, string> = { debug: 'debug', info: 'info', warn: 'WARN', error: 'ERROR' };

export function logLine(date: Date, node: string, pid: number, level: HaLogLevel, msg: string): string {
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} ${p2(date.getHours())}:${p2(date.getMinutes())}:${p2(date.getSeconds())}`;
  return `${stamp} ${node} tsbal: [${pid}]: ${TAGS[level]}: ${msg}\n`;
}

export function haLogger(l: ConsolaInstance, files: { logfile: string | null; debugfile: string | null }, node: string): { log: HaLog; close(): void } {
  const open = (path: string | null): WriteStream | null => {
    if (!path || path === '/dev/null') return null;
    const s = createWriteStream(path, { flags: 'a' });
    s.on('error', (e) => l.warn(`cannot write ${path}: ${e.message}`));
    return s;
  };
  const logfile = open(files.logfile);
  const debugfile = files.debugfile === files.logfile ? null : open(files.debugfile);
  const write = (level: HaLogLevel, msg: string): void => {
    l[level](msg);
    if (!logfile && !debugfile) return;
    const line = logLine(new Date(), node, process.pid, level, msg);
    if (level !== 'debug') logfile?.write(line);
    debugfile?.write(line);
  };
  return {
    log: { debug: (m) => write('debug', m), info: (m) => write('info', m), warn: (m) => write('warn', m), error: (m) => write('error', m) },
    close: () => {
      logfile?.end();
      debugfile?.end();
    },
  };
}
