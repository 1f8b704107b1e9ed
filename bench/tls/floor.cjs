// The floor of a runtime for bench/tls: a bare node:tls responder, no proxying (bench/proxy/floor.cjs is the plain
// one). Per request head it reads (up to the blank line) it answers 1 KiB; it closes after a request that asked for
// `Connection: close` or an HTTP/1.0 one without keep-alive (ab). Same TLS settings as tsbal's listener (TLS 1.2
// minimum, OpenSSL's default ciphers and groups) and, under Node, the same ticket renewal on resumption
// (src/proxy/tls/renew.ts): with Node's built-in ticket callback a client that keeps one ticket (wrk) would resume
// only every other connection, and the floor would pay full handshakes tsbal does not.
//   node floor.cjs <port> <cert.pem> <key.pem>     (Node 22 from node_modules; `bun floor.cjs ...` for Bun)
'use strict';
const tls = require('node:tls');
const fs = require('node:fs');
const { randomBytes, randomFillSync } = require('node:crypto');

const [port, certFile, keyFile] = process.argv.slice(2);
const BODY = 'x'.repeat(1023) + '\n';
const head = (close) =>
  `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\n` +
  `${close ? 'Connection: close\r\n' : ''}\r\n`;
const KEEP = Buffer.from(head(false) + BODY);
const CLOSE = Buffer.from(head(true) + BODY);
const END = Buffer.from('\r\n\r\n');
const CLOSE_FIELD = /\r\nconnection:[ \t]*close/i;
const KEEP_ALIVE_FIELD = /\r\nconnection:[ \t]*keep-alive/i;
const HTTP10 = /^[^\r\n]* HTTP\/1\.0\r\n/;

const ticketKey = randomBytes(48);
const server = tls.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), minVersion: 'TLSv1.2', honorCipherOrder: true, ticketKeys: ticketKey }, (socket) => {
  let pending = null;
  socket.on('data', (chunk) => {
    let buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    for (;;) {
      const end = buf.indexOf(END);
      if (end === -1) {
        if (buf.length > 0) pending = buf;
        return;
      }
      const text = buf.toString('latin1', 0, end);
      if (CLOSE_FIELD.test(text) || (HTTP10.test(text) && !KEEP_ALIVE_FIELD.test(text))) {
        socket.end(CLOSE);
        return;
      }
      socket.write(KEEP);
      buf = buf.subarray(end + 4);
    }
  });
  socket.on('error', () => socket.destroy());
});

// Ticket renewal, as src/proxy/tls/renew.ts (absent under Bun, whose BoringSSL renews by itself).
const ctx = server._sharedCreds && server._sharedCreds.context;
if (ctx && typeof ctx.enableTicketKeyCallback === 'function') {
  const iv = Buffer.alloc(16);
  const hmac = ticketKey.subarray(16, 32);
  const aes = ticketKey.subarray(32, 48);
  const encrypt = [1, hmac, aes, ticketKey.subarray(0, 16), iv];
  const renew = [2, hmac, aes];
  const refuse = [0, hmac, aes];
  // IVs from a CSPRNG pool refilled every 256 tickets, as renew.ts does.
  const ivs = Buffer.alloc(16 * 256);
  let nextIv = 256;
  ctx.onticketkeycallback = (name, _iv, encrypting) => {
    if (encrypting) {
      if (nextIv === 256) {
        randomFillSync(ivs);
        nextIv = 0;
      }
      const start = 16 * nextIv++;
      for (let i = 0; i < 16; i++) iv[i] = ivs[start + i];
      return encrypt;
    }
    return ticketKey.compare(name, 0, 16, 0, 16) === 0 ? renew : refuse;
  };
  ctx.enableTicketKeyCallback();
}

server.listen({ port: Number(port), host: '127.0.0.1', backlog: 1024 });
