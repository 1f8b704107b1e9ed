// What the web server's writing and concatenating code needs of a client connection, declared here by shape so
// that it names no record of the proxy's engine (client.ts, service.ts): ClientConn has all of it. Keeps
// put.ts, concat.ts and answer.ts out of the records that name each other (test/import-cycles.test.ts).
import type { PluginStats } from '../plugin-stats.ts';
import type { Socket } from 'node:net';
import type { ConsolaInstance } from 'consola';
import type { AccessLog } from '../access-log.ts';
import type { Downstream } from '../contracts.ts';
import type { ServiceStats } from '../management/stats.ts';

/** The service answering, as the web server sees it. */
export interface WebService {
  readonly name: string;
  readonly engine: { readonly log: ConsolaInstance; readonly now: number; readonly draining: boolean };
  readonly opts: { readonly idleTimeoutMs: number; readonly serverTokens: boolean; readonly persistClient: boolean };
  readonly stats: ServiceStats;
  readonly accessLog: AccessLog | null;
  readonly keepAliveTimeoutSec: number;
  /** The Stats plugin's counters (web_requests, files_sent); null without it. */
  readonly pstats: PluginStats | null;
}

export interface WebConn extends Downstream {
  readonly svc: WebService;
  /** The service that accepted the connection: its persist_client and access log count. */
  readonly listener: WebService;
  readonly socket: Socket;
  readonly peerIp: string;
  /** client.ts ClientPhase: the web server reads it, and sets 'upload' and 'wait' (see put.ts). */
  phase: string;
  readonly ended: boolean;
  deadline: number;
  /** Closes the web server's files when the client goes away first. */
  abortStatic: (() => void) | null;
  /** In 'upload': takes body bytes from buf[start..] and returns where the body ended. */
  upload: ((buf: Buffer, start: number) => number) | null;
}
