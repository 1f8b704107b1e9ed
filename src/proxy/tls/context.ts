// A service's TLS listener: one tls.Server that never listens itself. The service's plain listening socket hands
// each accepted connection to it (`emit('connection')`), so turning TLS on or off, or a new certificate, is a
// change of this object at a reload while the bound socket stays. Modern defaults: TLS 1.2 and 1.3 only, the server's
// cipher order, OpenSSL's default (forward-secret AEAD) ciphers unless ssl_cipher_list says otherwise, session
// tickets with rotating keys, OCSP stapling where a staple file is given, and SNI over several certificates.
import { constants as cryptoConstants } from 'node:crypto';
import { createSecureContext, createServer, type SecureContext, type SecureContextOptions, type Server, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { ConsolaInstance } from 'consola';
import type { ServiceModel } from '../../config/model.ts';
import { formatDiagnostic } from '../../config/errors.ts';
import type { CertPair } from '../../config/tls.ts';
import { nodeConfigFs } from '../../config/perlbal/fs.ts';
import { loadServiceTls, tlsFilesOf, tlsLocator, tlsSettings, type LoadedTls } from '../../config/perlbal/tls.ts';
import { buildSniTable, pickCertificate } from './sni.ts';
import { newTicketKeys, ticketKeysDue, TICKET_KEY_LIFETIME_MS, type TicketKeys } from './tickets.ts';
import { renewTicketsOnResume } from './renew.ts';

/** Where a finished handshake goes: the service's client code (set again at each reload's commit). */
export type SecureHandler = (socket: TLSSocket) => void;

export interface TlsListener {
  /** Fed with accepted sockets; emits 'secureConnection' to `onSecure`. */
  server: Server;
  certs: CertPair[];
  tickets: TicketKeys;
  /** ssl_ticket_rotation: how long one ticket key serves. */
  ticketLifetimeMs: number;
  onSecure: SecureHandler;
  /** For the "listening on" line: `TLS, 2 certificates (a.example, b.example)`. */
  describe: string;
}

export interface TlsBuildOptions {
  /** ssl_http2: offer `h2` before `http/1.1` by ALPN. */
  http2: boolean;
  /** header_timeout: a client that does not finish its handshake in this time is cut. */
  handshakeTimeoutMs: number;
  now: number;
  log: ConsolaInstance;
  /** The listener this one replaces at a reload: its ticket keys carry over, so sessions still resume. */
  previous: TlsListener | null;
}

/** Loads the certificates of a service with enable_ssl on; throws `file:line: service S: message` for every error. */
export function loadTls(model: ServiceModel, cwd: string, nowMs: number): { tls: LoadedTls; warnings: string[] } {
  const settings = tlsSettings(model, cwd);
  if (settings === null) throw new Error(`${model.loc.file}:${model.loc.line}: service ${model.name}: enable_ssl is off`);
  const locate = tlsLocator(model, cwd, model.optionLocs === undefined ? undefined : new Map(Object.entries(model.optionLocs)));
  const { tls, problems } = loadServiceTls(tlsFilesOf(nodeConfigFs), settings, nowMs, locate);
  const lines = problems.map((p) => ({ severity: p.severity, line: formatDiagnostic({ ...p.loc, severity: p.severity, message: `service ${model.name}: ${p.message}`, ...(p.hint === undefined ? {} : { hint: p.hint }) }) }));
  if (tls === null) throw new Error(lines.filter((l) => l.severity === 'error').map((l) => l.line).join('\n'));
  return { tls, warnings: lines.map((l) => l.line) };
}

function contextOptions(tls: LoadedTls): SecureContextOptions {
  return {
    minVersion: 'TLSv1.2',
    honorCipherOrder: true,
    // A client's TLS 1.2 renegotiation is refused, as HAProxy and nginx do: it costs a handshake on demand (a DoS
    // lever), and a write of ours in flight must not meet a handshake (socket-writes.ts writes to the TLSWrap).
    secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION,
    ciphers: tls.settings.ciphers,
    ...(tls.ca === null ? {} : { ca: tls.ca }),
  };
}

/** A TLS listener for the loaded certificates; createSecureContext's errors (a cipher list OpenSSL refuses) throw. */
export function buildTlsListener(model: ServiceModel, tls: LoadedTls, opts: TlsBuildOptions, onSecure: SecureHandler): TlsListener {
  const base = contextOptions(tls);
  const contexts: SecureContext[] = tls.certs.map((c) => createSecureContext({ ...base, cert: c.certPem, key: c.keyPem }));
  const sni = buildSniTable(tls.certs.map((c) => c.names));
  const main = tls.certs[0]!;
  const mode = tls.settings.verifyMode;
  // IO::Socket::SSL's SSL_verify_mode: 1 asks for a client certificate (a bad one fails), 2 also requires one.
  const requestCert = (mode & 1) !== 0;
  const requireCert = requestCert && (mode & 2) !== 0;
  const tickets = opts.previous?.tickets ?? newTicketKeys(opts.now);
  const server = createServer({
    ...base,
    cert: main.certPem,
    key: main.keyPem,
    requestCert,
    rejectUnauthorized: requireCert,
    handshakeTimeout: Math.max(1_000, opts.handshakeTimeoutMs),
    ticketKeys: tickets.key,
    allowHalfOpen: true,
    ...(opts.http2 ? { ALPNProtocols: ['h2', 'http/1.1'] } : {}),
    // Only consulted when the client sends a name. One certificate: no callback at all. Otherwise the default
    // (entry 0) is answered with `undefined`, which keeps the context the handshake already has rather than
    // switching to an identical one.
    ...(contexts.length > 1 ? { SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => {
      const i = pickCertificate(sni, name);
      cb(null, i === 0 ? undefined : contexts[i]);
    } } : {}),
  });
  const lifetime = model.options.ssl_ticket_rotation;
  const ticketLifetimeMs = typeof lifetime === 'number' && lifetime > 0 ? lifetime : TICKET_KEY_LIFETIME_MS;
  const listener: TlsListener = { server, certs: tls.certs, tickets, ticketLifetimeMs, onSecure, describe: `${describeCerts(tls.certs)}${opts.http2 ? ', HTTP/2' : ''}` };
  renewTicketsOnResume(server, () => listener.tickets.key);
  server.on('secureConnection', (socket: TLSSocket) => {
    // Mode 1 without 2: no certificate is fine, a certificate that does not verify is not.
    if (requestCert && !requireCert && !socket.authorized && hasPeerCertificate(socket)) {
      opts.log.debug(`service ${model.name}: client ${socket.remoteAddress} refused: certificate ${socket.authorizationError?.message ?? 'not trusted'}`);
      socket.destroy();
      return;
    }
    listener.onSecure(socket);
  });
  server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
    opts.log.debug(`service ${model.name}: TLS handshake with ${socket.remoteAddress ?? '?'} failed: ${err.message}`);
  });
  const stapled = tls.certs.filter((c) => c.ocsp !== null);
  if (stapled.length > 0) {
    server.on('OCSPRequest', (certificate: Buffer, _issuer: Buffer, cb: (err: Error | null, resp: Buffer | null) => void) => {
      const pair = stapled.find((c) => c.leaf.raw.equals(certificate));
      cb(null, pair?.ocsp ?? null);
    });
  }
  return listener;
}

function hasPeerCertificate(socket: TLSSocket): boolean {
  const peer = socket.getPeerCertificate();
  return peer !== null && typeof peer === 'object' && Object.keys(peer).length > 0;
}

function describeCerts(certs: readonly CertPair[]): string {
  const names = certs.map((c) => c.names[0] ?? c.certFile);
  return `TLS, ${certs.length} certificate${certs.length === 1 ? '' : 's'} (${names.join(', ')})`;
}

/** An accepted plain socket starts its TLS handshake. */
export function startHandshake(listener: TlsListener, socket: Socket): void {
  listener.server.emit('connection', socket);
}

/** Sweep: replace the ticket key once it has served its time. */
export function rotateTicketKeys(listener: TlsListener, now: number, log: ConsolaInstance): void {
  if (!ticketKeysDue(listener.tickets, now, listener.ticketLifetimeMs)) return;
  listener.tickets = newTicketKeys(now);
  try {
    listener.server.setTicketKeys(listener.tickets.key);
  } catch (error) {
    // Bun 1.4 throws "Not implemented" here: its own ticket key stays. Thrown from the sweep, it would end the
    // process at the first rotation (12 h by default), so rotation stops instead, with one warning.
    listener.ticketLifetimeMs = Infinity;
    log.warn(`${listener.describe}: session ticket keys cannot be set under this runtime (${(error as Error).message}): ssl_ticket_rotation has no effect`);
    return;
  }
  log.debug('TLS session ticket key rotated');
}

/** What a reload changed in a listener's certificates, one line each, for the log (renewals are what users look for). */
export function certificateChanges(service: string, before: TlsListener | null, after: TlsListener | null): string[] {
  if (after === null) return before === null ? [] : [`service ${service}: TLS off`];
  const old = new Map((before?.certs ?? []).map((c) => [c.certFile, c]));
  const out: string[] = [];
  for (const c of after.certs) {
    const prev = old.get(c.certFile);
    if (prev !== undefined && prev.leaf.fingerprint256 === c.leaf.fingerprint256) continue;
    const until = new Date(c.leaf.validTo).toISOString().slice(0, 10);
    out.push(`service ${service}: ${prev === undefined ? 'certificate' : 'new certificate'} ${c.certFile} for ${c.names.join(', ')}, valid until ${until}`);
  }
  return out;
}
