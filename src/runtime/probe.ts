// Checks that worker threads work in this runtime and form of tsbal (`tsbal version --verbose` reports it).
import { startWorker, workerSource, type WorkerSource } from './worker.ts';

export type WorkerProbe =
  | { ok: true; source: WorkerSource; ms: number }
  | { ok: false; source: WorkerSource; error: string };

export function probeWorkerThreads(timeoutMs = 5000): Promise<WorkerProbe> {
  const source = workerSource();
  const started = performance.now();
  return new Promise((resolve) => {
    let worker: ReturnType<typeof startWorker>;
    try {
      worker = startWorker('runtime/probe', { workerData: { hello: 'worker' } });
    } catch (error) {
      resolve({ ok: false, source, error: (error as Error).message });
      return;
    }
    const finish = (result: WorkerProbe): void => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, source, error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    worker.once('error', (error: Error) => finish({ ok: false, source, error: error.message }));
    worker.once('message', (message: { workerData?: { hello?: string }; echo?: unknown }) => {
      const good = message.workerData?.hello === 'worker' && message.echo === 42;
      finish(
        good
          ? { ok: true, source, ms: Math.round(performance.now() - started) }
          : { ok: false, source, error: `unexpected answer ${JSON.stringify(message)}` },
      );
    });
    worker.postMessage(42);
  });
}
