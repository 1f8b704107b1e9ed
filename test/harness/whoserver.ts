// A backend for the anycast lab: answers every request with its own name and the address that connected (the LB),
// so a client sees both which backend and which LB served it. Usage: bun whoserver.ts ADDRESS PORT NAME.
import { createServer } from 'node:http';

const [address = '0.0.0.0', port = '80', name = 'web'] = process.argv.slice(2);
const server = createServer((request, response) => {
  request.resume();
  const body = `${name} ${request.socket.remoteAddress ?? '?'}\n`;
  response.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  response.end(body);
});
server.keepAliveTimeout = 5_000;
server.listen(Number(port), address, () => console.log('listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
