// The one integration point between TLS and a service: build its TLS listener from the config (at start and at each
// reload), with finished handshakes going to the service's client code like plain connections.
import type { ConsolaInstance } from 'consola';
import type { ServiceModel } from '../../config/model.ts';
import { acceptClient } from '../client.ts';
import type { ServiceRuntime } from '../service.ts';
import { buildTlsListener, loadTls, type TlsListener } from './context.ts';

/**
 * The TLS listener `target` needs under `model` (null when enable_ssl is off or the service does not listen).
 * `target` is the runtime that will own it after a reload's commit (the running one when the name stays).
 * Throws `file:line: ...` lines for certificate errors; warnings (a certificate expiring soon) are logged.
 */
export function tlsForService(model: ServiceModel, cwd: string | undefined, target: ServiceRuntime, headerTimeoutMs: number, previous: TlsListener | null, log: ConsolaInstance): TlsListener | null {
  if (model.options.enable_ssl !== true || !model.enabled || model.listen === null) return null;
  const { tls, warnings } = loadTls(model, cwd ?? process.cwd(), Date.now());
  for (const w of warnings) log.warn(w);
  return buildTlsListener(model, tls, { handshakeTimeoutMs: headerTimeoutMs, now: target.engine.now, log, previous }, (socket) => {
    // A handshake that finishes after the proxy began stopping: its listener is closed, the client was never served.
    if (target.engine.draining) socket.destroy();
    else acceptClient(target, socket);
  });
}
