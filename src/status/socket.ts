// `tsbal status` reaches the running `tsbal run` over a unix socket in its state dir (<state-dir>/status.sock, mode
// 0600, one JSON line each way), the same way `tsbal ha status` reaches the HA engine. Not over the management port:
// that one exists only when perlbal.conf configures it, often listens on the VIP (so not on the standby), answers
// anyone who can connect, and would have to be found in the config; the socket is always there, local, root-only.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ConsolaInstance } from 'consola';
import { inUse, requestJson, serveJson, type ControlServer } from '../ha/control.ts';
import type { StatusSnapshot } from './snapshot.ts';
import type { AnycastAnswer, AnycastRequest } from '../anycast/run.ts';

export const STATUS_SOCKET_NAME = 'status.sock';
export const statusSocketPath = (stateDir: string): string => join(stateDir, STATUS_SOCKET_NAME);

type StatusRequest = { cmd: 'status' } | AnycastRequest;
type StatusAnswer = { ok: true; status: StatusSnapshot } | AnycastAnswer | { ok: false; msg: string };

/**
 * Serves the status socket; null (with a warning) when it cannot: another tsbal run answers there (a second copy on
 * the same state dir keeps the first one's socket), or the state dir is not writable. Status is not worth failing
 * the start for.
 */
export async function serveStatus(
  stateDir: string,
  snapshot: () => Promise<StatusSnapshot>,
  log: ConsolaInstance,
  anycast?: (req: AnycastRequest) => Promise<AnycastAnswer>,
): Promise<ControlServer | null> {
  const path = statusSocketPath(stateDir);
  try {
    mkdirSync(stateDir, { recursive: true });
    if (await inUse(path)) {
      // Not a fault of this process (a second copy on the same state dir): said, not warned.
      log.info(`${path} answers already (another tsbal run on this state dir): tsbal status shows that one`);
      return null;
    }
    return await serveJson<StatusRequest, StatusAnswer>(path, async (req) => {
      if (req.cmd === 'status') return { ok: true, status: await snapshot() };
      if (req.cmd === 'anycast') return anycast === undefined ? { ok: false, msg: 'this tsbal run is not in anycast mode (no SERVER anycast_vip)' } : anycast(req);
      return { ok: false, msg: `unknown request '${String((req as { cmd?: unknown }).cmd)}'` };
    });
  } catch (error) {
    log.warn(`cannot serve ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)}): tsbal status will not reach this process`);
    return null;
  }
}

/** Asks the running tsbal run for its status; rejects with a message a sysadmin can act on. */
export async function requestStatus(stateDir: string, timeoutMs = 5000): Promise<StatusSnapshot> {
  const answer = await requestJson<{ ok: true; status: StatusSnapshot } | { ok: false; msg: string }>(statusSocketPath(stateDir), { cmd: 'status' }, 'tsbal run', '--state-dir', timeoutMs);
  if (!answer.ok) throw new Error(answer.msg);
  return answer.status;
}

/** `tsbal anycast drain|resume|status`: asks the running tsbal run; rejects with a message a sysadmin can act on. */
export async function requestAnycast(stateDir: string, req: AnycastRequest, timeoutMs = 10_000): Promise<AnycastAnswer> {
  return requestJson<AnycastAnswer>(statusSocketPath(stateDir), req, 'tsbal run', '--state-dir', timeoutMs);
}
