// Calibration proxy for bench/proxy: node:http server plus http.request with a keep-alive Agent, round robin
// per request. Run by the system Node: node nodehttp.cjs <listenPort> <backendPort>...
'use strict';
const http = require('node:http');

const [listenPort, ...backends] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
let next = 0;
http
  .createServer((req, res) => {
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: backends[next++ % backends.length],
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress },
        agent,
      },
      (backendRes) => {
        res.writeHead(backendRes.statusCode, backendRes.headers);
        backendRes.pipe(res);
      },
    );
    upstream.on('error', () => {
      res.writeHead(502);
      res.end('bad gateway\n');
    });
    req.pipe(upstream);
  })
  .listen(listenPort, '127.0.0.1');
