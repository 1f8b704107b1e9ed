// Worker threads from every form of tsbal.
//
// A worker is a file `src/<name>.worker.ts` (e.g. src/ha/heartbeat.worker.ts is `ha/heartbeat`), started with
// startWorker(name). What works where, measured on Node 20 and 22, Bun 1.4 and Deno 2.9:
// - `new Worker(path)` needs the worker as a file on disk. The TypeScript source has it (Bun and Deno run .ts
//   workers), and so does dist/tsbal.cjs; a Node SEA binary has no file to point at (its main script lives only
//   inside the executable), and a Bun binary only its entry point.
// - `new Worker(code, { eval: true })` works everywhere: Node 20+, Node SEA, Bun, Bun binaries and Deno.
// So the build bundles each worker into a CommonJS string embedded in the program (build/bundle.ts defines
// __TSBAL_WORKERS__), and bundled forms start workers from that string; the source starts the .ts file.
import { Worker, type WorkerOptions } from 'node:worker_threads';

declare const __TSBAL_WORKERS__: Readonly<Record<string, string>>;

export type WorkerSource = 'embedded' | 'file';

/** Worker code embedded by the build, or null when running from the TypeScript source. */
function embeddedWorkers(): Readonly<Record<string, string>> | null {
  return typeof __TSBAL_WORKERS__ === 'undefined' ? null : __TSBAL_WORKERS__;
}

export function workerSource(): WorkerSource {
  return embeddedWorkers() === null ? 'file' : 'embedded';
}

/** Starts the worker `src/<name>.worker.ts`. Options are node:worker_threads' (workerData, env, ...). */
export function startWorker(name: string, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  const embedded = embeddedWorkers();
  if (embedded === null) return new Worker(new URL(`../${name}.worker.ts`, import.meta.url), options);
  const code = embedded[name];
  if (code === undefined) {
    const known = Object.keys(embedded).join(', ') || 'none';
    throw new Error(`no worker '${name}' in this build of tsbal (src/${name}.worker.ts; embedded: ${known})`);
  }
  return new Worker(code, { ...options, eval: true });
}
