// The floor of a runtime for bench/proxy: a bare node:net responder, no proxying. Per request head it reads (up to
// the blank line) it answers 1 KiB; after a request that asked for `Connection: close` it answers so and closes.
// Run under the runtime to measure: node floor.cjs <listenPort> (Node 22 from node_modules), bun floor.cjs <port>.
'use strict';
const net = require('node:net');

const BODY = 'x'.repeat(1023) + '\n';
const head = (close) =>
  `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\n` +
  `${close ? 'Connection: close\r\n' : ''}\r\n`;
const KEEP = Buffer.from(head(false) + BODY);
const CLOSE = Buffer.from(head(true) + BODY);
const END = Buffer.from('\r\n\r\n');
const CLOSE_FIELD = /\r\nconnection:[ \t]*close/i;

net
  .createServer({ noDelay: true }, (socket) => {
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
        if (CLOSE_FIELD.test(buf.toString('latin1', 0, end))) {
          socket.end(CLOSE);
          return;
        }
        socket.write(KEEP);
        buf = buf.subarray(end + 4);
      }
    });
    socket.on('error', () => socket.destroy());
  })
  .listen({ port: Number(process.argv[2]), host: '127.0.0.1', backlog: 1024 });
