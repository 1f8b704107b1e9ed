// The smallest real worker: echoes the data it was started with and the value it is sent, so probe.ts can prove
// that this build of tsbal starts worker threads and talks to them.
import { parentPort, workerData } from 'node:worker_threads';

if (!parentPort) throw new Error('runtime/probe must run as a worker thread');
const port = parentPort;
port.once('message', (value: unknown) => port.postMessage({ workerData: workerData as unknown, echo: value }));
