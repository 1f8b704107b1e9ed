// HTTPS to a pool's backends (backend_ssl): the per-pool TLS client settings, compiled once per start or reload, and
// the socket for one backend connection. Everything above the socket (verify_backend, keep-alive reuse,
// max_backend_uses, timeouts) is the same as for plain backends: a connection counts as connected once its
// handshake is done, so connect_timeout covers the handshake and a certificate that does not verify is a failed
// connect (retried elsewhere, counted against the backend's health). TLS sessions are resumed per backend.
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import type { OptionValue, PoolModel } from '../../config/model.ts';
import { formatHostPort } from '../../config/perlbal/values.ts';

export interface BackendTls {
  /** backend_ssl_verify: the certificate must chain to backend_ssl_ca (else the system CAs) and match the name. */
  verify: boolean;
  /** backend_ssl_sni: the name sent and verified; null sends none and verifies the backend's IP address. */
  servername: string | null;
  ca: Buffer | null;
  /** The last session per backend ip:port, offered on the next connection (abbreviated handshake). */
  sessions: Map<string, Buffer>;
}

function onOff(v: OptionValue | undefined, dflt: boolean): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return /^(1|on|true|yes)$/i.test(v);
  if (typeof v === 'number') return v !== 0;
  return dflt;
}

/** The pool's TLS client settings, or null for plain HTTP; throws `file:line: ...` when backend_ssl_ca cannot be read. */
export function backendTlsFor(pool: PoolModel | undefined, cwd: string | undefined): BackendTls | null {
  if (pool === undefined || !onOff(pool.options.backend_ssl, false)) return null;
  const caPath = pool.options.backend_ssl_ca;
  let ca: Buffer | null = null;
  if (typeof caPath === 'string' && caPath !== '') {
    const path = posix.resolve(cwd ?? process.cwd(), caPath);
    try {
      ca = readFileSync(path);
    } catch (e) {
      throw new Error(`${pool.loc.file}:${pool.loc.line}: pool ${pool.name}: backend_ssl_ca ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    if (!/-----BEGIN CERTIFICATE-----/.test(ca.toString('latin1'))) {
      throw new Error(`${pool.loc.file}:${pool.loc.line}: pool ${pool.name}: backend_ssl_ca ${path} holds no PEM certificate`);
    }
  }
  const sni = pool.options.backend_ssl_sni;
  return { verify: onOff(pool.options.backend_ssl_verify, true), servername: typeof sni === 'string' && sni !== '' ? sni : null, ca, sessions: new Map() };
}

/**
 * Opens a TLS connection to host:port. Emits 'secureConnect' when the handshake is done (use it where a plain
 * socket's 'connect' is used), 'data' for what the backend sends, and 'error' with the verification failure
 * (e.g. ERR_TLS_CERT_ALTNAME_INVALID, UNABLE_TO_VERIFY_LEAF_SIGNATURE) as its code.
 */
export function connectBackendTls(host: string, port: number, t: BackendTls): TLSSocket {
  const key = formatHostPort({ host, port });
  const opts: ConnectionOptions = {
    host,
    port,
    rejectUnauthorized: t.verify,
    minVersion: 'TLSv1.2',
    // Node refuses an IP address as SNI; without a name it checks the certificate against the address.
    ...(t.servername === null ? {} : { servername: t.servername }),
    ...(t.ca === null ? {} : { ca: t.ca }),
  };
  const session = t.sessions.get(key);
  if (session !== undefined) opts.session = session;
  const socket = tlsConnect(opts);
  socket.setNoDelay(true);
  socket.on('session', (s: Buffer) => t.sessions.set(key, s));
  return socket;
}

/** The connection speaks TLS (a TLSSocket), as opposed to plain TCP. */
export function isTlsSocket(socket: { encrypted?: boolean } | object): boolean {
  return (socket as { encrypted?: boolean }).encrypted === true;
}
