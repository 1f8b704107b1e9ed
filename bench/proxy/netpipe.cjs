// Calibration forwarder for bench/proxy: a bare node:net connection-level pipe (no HTTP parsing), each client
// connection to the next backend in turn. Run by the system Node: node netpipe.cjs <listenPort> <backendPort>...
'use strict';
const net = require('node:net');

const [listenPort, ...backends] = process.argv.slice(2).map(Number);
let next = 0;
net
  .createServer((client) => {
    const upstream = net.connect(backends[next++ % backends.length], '127.0.0.1');
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.pipe(upstream);
    upstream.pipe(client);
    for (const socket of [client, upstream]) {
      socket.on('error', close);
      socket.on('close', close);
    }
  })
  .listen(listenPort, '127.0.0.1');
