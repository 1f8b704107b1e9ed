// HTTP backends in web1/web2 and a bounded open-loop client in `client`, for the namespace lab.
import { fileURLToPath } from 'node:url';
import { LAB_ADDRESSES, LAB_VIP, type Lab } from './netns.ts';
import { waitFor, type ProcHandle } from './proc.ts';

const WEBSERVER = fileURLToPath(new URL('./webserver.ts', import.meta.url));
const LOADCLIENT = fileURLToPath(new URL('./loadclient.ts', import.meta.url));
export const BACKEND_PORT = 80;

export interface Backends {
  readonly procs: readonly ProcHandle[];
  stop(): void;
}

/** Starts one backend per web host (the test's own runtime runs them) and waits until both listen. */
export async function startBackends(lab: Lab, hosts: readonly ('web1' | 'web2')[] = ['web1', 'web2']): Promise<Backends> {
  const procs = hosts.map((host) =>
    lab.spawn(host, [process.execPath, WEBSERVER, LAB_ADDRESSES[host], String(BACKEND_PORT), host], { label: `backend ${host}` }),
  );
  for (const proc of procs) {
    await waitFor(`${proc.label} to listen`, () => (proc.stdout().includes('listening') ? true : undefined), {
      timeoutMs: 10_000,
      describe: () => `exit ${JSON.stringify(proc.exit())}, stderr ${proc.stderr().slice(-500)}`,
    });
  }
  return { procs, stop: () => procs.forEach((proc) => proc.kill('SIGKILL')) };
}

export type ClientRecord =
  | { ok: true; s: number; e: number; b: string }
  /** complete: the whole answer had arrived before the error (a reset of the connection's close). */
  | { ok: false; s: number; e: number; err: string; complete?: boolean };

export interface ClientLoopOptions {
  host?: string;
  port?: number;
  intervalMs?: number;
  timeoutMs?: number;
  maxRequests?: number;
  maxDurationMs?: number;
}

export interface ClientLoop {
  readonly proc: ProcHandle;
  /** Every finished request so far, in completion order. */
  records(): readonly ClientRecord[];
  /** Resolves with the first successful request that started at or after `since` (wall ms), or null on timeout. */
  firstSuccessSince(since: number, timeoutMs: number): Promise<ClientRecord | null>;
  /** Asks the loop to stop and waits (bounded) for its last records. */
  stop(): Promise<readonly ClientRecord[]>;
}

/** Starts the client loop in the client namespace against the VIP (by default) and waits until it runs. */
export async function startClientLoop(lab: Pick<Lab, 'spawn'>, options: ClientLoopOptions = {}): Promise<ClientLoop> {
  const args = [
    `--host=${options.host ?? LAB_VIP}`,
    `--port=${options.port ?? 80}`,
    `--interval-ms=${options.intervalMs ?? 20}`,
    `--timeout-ms=${options.timeoutMs ?? 300}`,
    `--max-requests=${options.maxRequests ?? 1_500}`,
    `--max-duration-ms=${options.maxDurationMs ?? 30_000}`,
  ];
  const proc = lab.spawn('client', [process.execPath, LOADCLIENT, ...args], { label: 'client loop' });
  const records: ClientRecord[] = [];
  const waiters = new Set<() => void>();
  let ready = false;
  proc.onLine((line) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    if ('ready' in parsed) ready = true;
    if ('ok' in parsed) records.push(parsed as ClientRecord);
    for (const waiter of waiters) waiter();
  });
  await waitFor('the client loop to start', () => (ready ? true : undefined), {
    timeoutMs: 10_000,
    describe: () => `exit ${JSON.stringify(proc.exit())}, stderr ${proc.stderr().slice(-500)}`,
  });
  return {
    proc,
    records: () => records,
    firstSuccessSince(since, timeoutMs) {
      const find = (): ClientRecord | undefined => records.find((record) => record.ok && record.s >= since);
      return new Promise((resolve) => {
        const found = find();
        if (found) return resolve(found);
        const timer = setTimeout(() => {
          waiters.delete(check);
          resolve(null);
        }, timeoutMs);
        const check = (): void => {
          const hit = find();
          if (!hit) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(hit);
        };
        waiters.add(check);
        proc.exited.then(check);
      });
    },
    async stop() {
      proc.kill('SIGTERM');
      const timeout = (options.timeoutMs ?? 300) + 2_000;
      const killer = setTimeout(() => proc.kill('SIGKILL'), timeout);
      await proc.exited;
      clearTimeout(killer);
      return records;
    },
  };
}

/** Requests that failed in [from, to] (by start time), with their reasons: the cost of a switch to clients. */
export function failuresBetween(records: readonly ClientRecord[], from: number, to: number): ClientRecord[] {
  return records.filter((record) => !record.ok && record.s >= from && record.s <= to);
}
