// Run inside the lab's client namespace: receives the cluster's heartbeat broadcasts (UDP 694, as a bystander
// on the same switch) and prints {"t":wallMs,"src":"198.18.0.1"} per packet, so the benchmark knows when the
// killed node's last heartbeat went out. Bounded by --max-duration-ms.
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '694' }, 'max-duration-ms': { type: 'string', default: '600000' } } });
const socket = createSocket({ type: 'udp4', reuseAddr: true });
socket.on('message', (_message, remote) => {
  process.stdout.write(`${JSON.stringify({ t: performance.timeOrigin + performance.now(), src: remote.address })}\n`);
});
socket.bind(Number(values.port), '0.0.0.0', () => process.stdout.write(`${JSON.stringify({ ready: true })}\n`));
setTimeout(() => process.exit(0), Number(values['max-duration-ms'])).unref();
process.on('SIGTERM', () => process.exit(0));
