// Test helper process: an HA engine whose main thread blocks (a busy loop, like a stuck proxy or a long GC
// pause) for --stall-ms after --stall-after ms, then keeps running until SIGTERM; or (--throw-after) dies of an
// uncaught error.
import { parseArgs } from 'node:util';
import { startHa } from '../../src/ha/cluster.ts';

const { values } = parseArgs({
  options: {
    'ha-dir': { type: 'string' },
    node: { type: 'string' },
    'state-dir': { type: 'string' },
    thread: { type: 'string', default: 'worker' },
    'stall-after': { type: 'string', default: '2000' },
    'stall-ms': { type: 'string', default: '700' },
    'throw-after': { type: 'string' },
  },
});
const ha = await startHa({ haDir: values['ha-dir']!, node: values.node, stateDir: values['state-dir']!, thread: values.thread === 'main' ? 'main' : 'worker' });
setTimeout(() => {
  console.log(`stalling ${values['stall-ms']} ms`);
  const end = performance.now() + Number(values['stall-ms']);
  while (performance.now() < end) Math.sqrt(Math.random());
  console.log('stall over');
}, Number(values['stall-after']));
if (values['throw-after']) {
  setTimeout(() => {
    throw new Error('a bug in the proxy');
  }, Number(values['throw-after']));
}
process.once('SIGTERM', () => void ha.close().then(() => process.exit(0)));
