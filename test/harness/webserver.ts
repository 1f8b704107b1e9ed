// A tiny HTTP backend for the namespace lab: answers every request with its own name, so a client can tell
// which backend served it. Usage: bun webserver.ts ADDRESS PORT NAME. Prints "listening" when ready.
import { createServer } from 'node:http';

const [address = '0.0.0.0', port = '80', name = 'web'] = process.argv.slice(2);
const body = Buffer.from(`${name}\n`);
const server = createServer((request, response) => {
  request.resume();
  response.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-backend': name });
  response.end(body);
});
server.keepAliveTimeout = 5_000;
server.listen(Number(port), address, () => console.log('listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
