// The integration points between TLS and a service. At start and at each reload the caller reads the certificate
// files and the pool's backend CA (I/O, so not in compile.ts) into the service's compiled config; once the runtime
// record that will own the listener is known, finished handshakes are pointed at it, to the same client code as plain
// connections.
import type { ConsolaInstance } from 'consola';
import type { PerlbalConfig, ServiceModel } from '../../config/model.ts';
import { acceptClient } from '../client.ts';
import type { ServiceConfig, ServiceRuntime } from '../service.ts';
import { buildTlsListener, loadTls, type TlsListener } from './context.ts';
import { backendTlsFor } from './upstream.ts';
import { newH2Listener, serveH2, type H2Host, type H2Limits } from '../h2/session.ts';

/**
 * Fills `cfg.tls` (enable_ssl on a service that listens) and `cfg.backendTls` (backend_ssl on its pool).
 * `previous`: the listener this one replaces at a reload (its session-ticket key carries over). Throws
 * `file:line: ...` lines for certificate errors; warnings (a certificate expiring soon) are logged.
 */
export function attachTls(cfg: ServiceConfig, model: ServiceModel, config: PerlbalConfig, now: number, previous: TlsListener | null, log: ConsolaInstance): void {
  cfg.backendTls = backendTlsFor(config.pools.find((p) => p.name === model.pool), config.cwd);
  if (model.options.enable_ssl !== true && model.options.http2_cleartext === true && model.listen !== null) {
    // h2c with prior knowledge on a plain listener (h2/cleartext.ts tells it from HTTP/1.1 by the preface).
    cfg.h2 = newH2Listener(h2Limits(cfg, model));
    return;
  }
  if (model.options.enable_ssl !== true || !model.enabled || model.listen === null) return;
  const { tls, warnings } = loadTls(model, config.cwd ?? process.cwd(), Date.now());
  for (const w of warnings) log.warn(w);
  const http2 = model.options.ssl_http2 === true;
  // Until pointTlsAt names its service (before any socket can reach it), a finished handshake has nowhere to go.
  cfg.tls = buildTlsListener(model, tls, { handshakeTimeoutMs: cfg.opts.headerTimeoutMs, now, log, previous, http2 }, (socket) => socket.destroy());
  cfg.h2 = http2 ? newH2Listener(h2Limits(cfg, model)) : null;
}

function h2Limits(cfg: ServiceConfig, model: ServiceModel): H2Limits {
  const streams = model.options.http2_max_concurrent_streams;
  return { maxConcurrentStreams: typeof streams === 'number' ? streams : 100, maxHeaderListSize: cfg.opts.maxHeaderSize, idleTimeoutMs: cfg.opts.idleTimeoutMs };
}

/** What HTTP/2 connections of `svc` hand their streams to. */
export function h2Host(svc: ServiceRuntime): H2Host {
  return { accept: (v: Parameters<typeof acceptClient>[1]) => acceptClient(svc, v), draining: () => svc.engine.draining, sessions: svc.h2Sessions, log: svc.engine.log, service: svc.name };
}

/** From now on, handshakes finished on `tls` become clients of `svc`. */
export function pointTlsAt(tls: TlsListener | null, svc: ServiceRuntime): void {
  if (tls === null) return;
  const host = h2Host(svc);
  tls.onSecure = (socket) => {
    // A handshake that finishes after the proxy began stopping: its listener is closed, the client was never served.
    if (svc.engine.draining) socket.destroy();
    else if (svc.h2 !== null && socket.alpnProtocol === 'h2') serveH2(socket, svc.h2, host);
    else acceptClient(svc, socket);
  };
}
