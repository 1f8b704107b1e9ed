// Address events on a lab host's eth0, timestamped by `ip -tshort monitor address` as the kernel reports them.
// Polling `ip addr` from the test process lags by hundreds of ms when the machine is busy (heartbeat's shell
// scripts on two vCPUs); the monitor's own timestamp does not.
import type { Lab, LabHost } from './netns.ts';
import { sleep, type ProcHandle } from './proc.ts';

export interface AddressEvent {
  /** Wall-clock ms. */
  at: number;
  kind: 'added' | 'deleted';
  address: string;
}

export interface AddressWatch {
  readonly events: readonly AddressEvent[];
  /** The first event of that kind for the address at or after `since`, or null. */
  first(kind: AddressEvent['kind'], address: string, since: number): AddressEvent | null;
  stop(): void;
}

const LINE = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})\] (Deleted )?\d+: \S+\s+inet (\d+\.\d+\.\d+\.\d+)\//;

/** Parses one monitor line; `ip` prints local time without a zone, which JS also reads as local time. */
export function parseMonitorLine(line: string): AddressEvent | null {
  const match = LINE.exec(line);
  if (!match) return null;
  const [, seconds = '', micros = '0', deleted, address = ''] = match;
  const at = new Date(seconds).getTime() + Number(micros) / 1000;
  return { at, kind: deleted ? 'deleted' : 'added', address };
}

export async function watchAddresses(lab: Lab, host: LabHost): Promise<AddressWatch> {
  const proc: ProcHandle = lab.spawn(host, ['ip', '-tshort', 'monitor', 'address', 'dev', 'eth0'], { label: `ip monitor ${host}` });
  const events: AddressEvent[] = [];
  proc.onLine((line) => {
    const event = parseMonitorLine(line);
    if (event) events.push(event);
  });
  // The monitor subscribes right after exec; there is no ready line to wait for.
  for (let i = 0; i < 50 && !(await lab.pids(host)).includes(proc.pid); i++) await sleep(10);
  await sleep(20);
  return {
    events,
    first: (kind, address, since) => events.find((e) => e.kind === kind && e.address === address && e.at >= since) ?? null,
    stop: () => proc.kill('SIGKILL'),
  };
}
