// h2c with prior knowledge (RFC 9113 3.3) on a plain listener with http2_cleartext on: a client that opens with the
// HTTP/2 connection preface is served HTTP/2 (session.ts); any other is an HTTP/1.1 client, handed to the client
// code with the bytes already read. The Upgrade: h2c dance (RFC 7540 3.2, dropped by RFC 9113) is not offered.
import type { Socket } from 'node:net';
import { acceptClient } from '../client.ts';
import type { ServiceRuntime } from '../service.ts';
import { h2Host } from '../tls/attach.ts';
import { CLIENT_PREFACE } from './frame-reader.ts';
import { serveH2 } from './session.ts';

/** Bytes of the preface that tell it from any HTTP/1.1 request line (`PRI * HTTP/2.0`: no HTTP/1.1 method is PRI). */
const DECISIVE = 4;

/** A plain connection on a listener that offers h2c: decided by its first bytes. */
export function acceptCleartext(svc: ServiceRuntime, socket: Socket): void {
  let seen: Buffer | null = null;
  // A client that connects and sends nothing is dropped after header_timeout, as the HTTP/1.1 code would.
  const timer = setTimeout(() => socket.destroy(), svc.opts.headerTimeoutMs);
  timer.unref();
  const onData = (chunk: Buffer): void => {
    const buf = seen === null ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(buf.length, CLIENT_PREFACE.length);
    const preface = buf.compare(CLIENT_PREFACE, 0, n, 0, n) === 0;
    if (preface && n < DECISIVE) {
      seen = buf;
      return;
    }
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    if (svc.h2 !== null && preface) serveH2(socket, svc.h2, h2Host(svc), buf);
    else acceptClient(svc, socket, buf);
  };
  const onEnd = (): void => {
    clearTimeout(timer);
    socket.destroy();
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', () => socket.destroy());
}
