// One HA node with load in the same process, for bench/ha-lag: the heartbeat shares the event loop with either a
// saturating HTTP responder on node:net (driven by wrk) or back-to-back CPU blocks. Prints one JSON line per second
// (event-loop delay from perf_hooks, the engine's own timer lag) and a final line with the HA status.
import { createServer } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startHa } from '../../src/ha/cluster.ts';

const { values } = parseArgs({
  options: {
    'ha-dir': { type: 'string' },
    node: { type: 'string' },
    'state-dir': { type: 'string' },
    load: { type: 'string', default: 'http' },
    'block-ms': { type: 'string', default: '5' },
    'spike-ms': { type: 'string', default: '0' },
    seconds: { type: 'string', default: '30' },
    thread: { type: 'string', default: 'worker' },
  },
});

const ha = await startHa({ haDir: values['ha-dir']!, node: values.node, stateDir: values['state-dir']!, thread: values.thread === 'main' ? 'main' : 'worker' });
const delay = monitorEventLoopDelay({ resolution: 5 });
delay.enable();
let stopLoad = (): void => undefined;

if (values.load === 'http') {
  const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world\n');
  const server = createServer((sock) => {
    let tail = '';
    sock.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('latin1');
      let n = 0;
      for (let i = text.indexOf('\r\n\r\n'); i >= 0; i = text.indexOf('\r\n\r\n', i + 4)) n++;
      tail = text.slice(text.lastIndexOf('\r\n\r\n') + 4);
      for (let i = 0; i < n; i++) sock.write(RESPONSE);
    });
    sock.on('error', () => undefined);
  });
  server.listen(8080, '0.0.0.0');
  stopLoad = () => void server.close();
} else {
  const block = Number(values['block-ms']);
  const spike = Number(values['spike-ms']);
  let running = true;
  let lastSpike = performance.now();
  const burn = (): void => {
    if (!running) return;
    const now = performance.now();
    const ms = spike > 0 && now - lastSpike > 1000 ? ((lastSpike = now), spike) : block;
    const end = now + ms;
    while (performance.now() < end) Math.sqrt(Math.random());
    setImmediate(burn);
  };
  burn();
  stopLoad = () => {
    running = false;
  };
}

const seconds = Number(values.seconds);
for (let s = 0; s < seconds; s++) {
  await new Promise((r) => setTimeout(r, 1000));
  const st = await ha.status();
  console.log(JSON.stringify({ t: s + 1, loopP99Ms: delay.percentile(99) / 1e6, loopMaxMs: delay.max / 1e6, heartbeatLag: st.heartbeatLag, peer: st.peer.status }));
  delay.reset();
}
stopLoad();
console.log(JSON.stringify({ final: await ha.status() }));
await ha.close();
process.exit(0);
