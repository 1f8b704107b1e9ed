// A bounded keep-alive load for failover tests: a few concurrent clients, each sending a fixed number of GETs
// on one kept-alive connection (reconnecting when the server closes it after a response). Every request that
// does not get a complete 200 within its timeout is a failure, recorded with what happened.
import { header } from './httpwire.ts';
import { type RawConnection, type ReadOutcome, connectRaw, describeOutcome } from './rawclient.ts';

export interface LoadOptions {
  port: number;
  clients: number;
  requestsPerClient: number;
  path: string | ((client: number, index: number) => string);
  /** Per-request budget; a request still unanswered then is a failure. */
  requestTimeoutMs: number;
  /** Whole-run budget: clients stop sending new requests after it (those requests are counted as not sent). */
  deadlineMs: number;
  /** Called after each completed request (success or failure) with the running total. */
  onProgress?: (completed: number) => void;
}

export interface LoadFailure {
  client: number;
  index: number;
  path: string;
  what: string;
}

export interface LoadResult {
  sent: number;
  ok: number;
  failures: LoadFailure[];
  /** Outcomes by status code, or 'timeout' / 'closed' when no complete response came. */
  byStatus: Record<string, number>;
  maxLatencyMs: number;
  elapsedMs: number;
}

function failureText(outcome: ReadOutcome): string {
  return outcome.kind === 'response'
    ? `status ${outcome.response.status} after ${outcome.ms} ms: ${JSON.stringify(outcome.response.body.toString('latin1').slice(0, 120))}`
    : describeOutcome(outcome);
}

export async function runKeepAliveLoad(options: LoadOptions): Promise<LoadResult> {
  const start = Date.now();
  const result: LoadResult = { sent: 0, ok: 0, failures: [], byStatus: {}, maxLatencyMs: 0, elapsedMs: 0 };
  let completed = 0;

  async function client(id: number): Promise<void> {
    let conn: RawConnection | null = null;
    try {
      for (let index = 0; index < options.requestsPerClient; index++) {
        if (Date.now() - start > options.deadlineMs) return;
        const path = typeof options.path === 'string' ? options.path : options.path(id, index);
        let outcome: ReadOutcome;
        try {
          if (conn === null || conn.isClosed()) conn = await connectRaw(options.port);
          result.sent++;
          conn.send(`GET ${path} HTTP/1.1\r\nHost: load.test\r\nUser-Agent: tsbal-load\r\n\r\n`);
          outcome = await conn.read({ timeoutMs: options.requestTimeoutMs });
        } catch (error) {
          outcome = { kind: 'closed', received: Buffer.from(String(error)), ms: 0 };
        }
        completed++;
        result.maxLatencyMs = Math.max(result.maxLatencyMs, outcome.ms);
        const status = outcome.kind === 'response' ? String(outcome.response.status) : outcome.kind;
        result.byStatus[status] = (result.byStatus[status] ?? 0) + 1;
        if (outcome.kind === 'response' && outcome.response.status === 200) {
          result.ok++;
          if (/close/i.test(header(outcome.response.head.headers, 'connection') ?? '')) {
            conn?.close();
            conn = null;
          }
        } else {
          result.failures.push({ client: id, index, path, what: failureText(outcome) });
          conn?.close();
          conn = null;
        }
        options.onProgress?.(completed);
      }
    } finally {
      conn?.close();
    }
  }

  await Promise.all(Array.from({ length: options.clients }, (_, id) => client(id)));
  result.elapsedMs = Date.now() - start;
  return result;
}
