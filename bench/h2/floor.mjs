// The floor of node:http2 on this machine, for bench/h2/run.ts: HTTP/2 on a tls.Server fed by a net listener (as
// tsbal does it), each stream answered on the spot with a small body; no backend, no proxying. What tsbal costs above
// this is its own request path; what this costs is node:http2 and TLS.
//   node bench/h2/floor.mjs PORT CERT KEY
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';

const [port, cert, key] = process.argv.slice(2);
const server = tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), ALPNProtocols: ['h2', 'http/1.1'] });
const body = Buffer.from('<html><body>floor</body></html>\n');
server.on('secureConnection', (socket) => {
  const session = http2.performServerHandshake(socket, { settings: { maxConcurrentStreams: 100 } });
  session.on('error', () => {});
  session.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'text/html', 'content-length': body.length });
    stream.end(body);
  });
});
net.createServer((socket) => server.emit('connection', socket)).listen(Number(port), '127.0.0.1');
