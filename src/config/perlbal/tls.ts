// One service's TLS settings, read from Perlbal's ssl_* options and tsbal's ssl_cert_dir/ssl_ocsp_file, and the
// certificates they name, loaded and judged (src/config/tls.ts). Used by `tsbal check`, at start and on reload, so all
// three agree on what a TLS listener serves and what is wrong with it.
import type { OptionValue, ServiceModel } from '../model.ts';
import type { SourceLocation } from '../errors.ts';
import { caCertificates, certDirPairs, loadCertPair, type CertPair, type PairSpec, type TlsFiles, type TlsProblem } from '../tls.ts';
import type { ConfigFs } from './fs.ts';
import { posix } from 'node:path';

/** Perlbal's default cipher list (`ALL:!LOW:!EXP`) means "not chosen": tsbal then uses its own, below. */
export const PERLBAL_DEFAULT_CIPHERS = 'ALL:!LOW:!EXP';

/**
 * tsbal's TLS 1.2 ciphers (Mozilla's "intermediate" list without DHE): forward-secret AEAD only, in this order,
 * the same under Node and Bun (whose defaults differ and include CBC). TLS 1.3 suites are OpenSSL's default.
 */
export const TSBAL_DEFAULT_CIPHERS =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:' +
  'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';

/** The path options of a TLS listener (relative ones resolve against the config's working directory). */
export const TLS_PATH_OPTIONS = ['ssl_key_file', 'ssl_cert_file', 'ssl_ca_path', 'ssl_cert_dir', 'ssl_ocsp_file'] as const;

export interface TlsSettings {
  /** ssl_cert_file/ssl_key_file; null when ssl_cert_dir alone names the certificates. */
  main: PairSpec | null;
  certDir: string | null;
  /** ssl_cipher_list as written, or TSBAL_DEFAULT_CIPHERS when it was left at Perlbal's default. */
  ciphers: string;
  caPath: string | null;
  /** IO::Socket::SSL's SSL_verify_mode bits: 1 ask for a client certificate, 2 require one. */
  verifyMode: number;
}

function str(v: OptionValue | undefined): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/**
 * The TLS settings of a service with enable_ssl on, else null; paths resolved against `cwd`. With ssl_cert_dir,
 * Perlbal's default ssl_cert_file/ssl_key_file (never SET) mean "the directory's first pair is the default".
 */
export function tlsSettings(service: ServiceModel, cwd: string): TlsSettings | null {
  const o = service.options;
  if (o.enable_ssl !== true) return null;
  const path = (v: OptionValue | undefined): string | null => {
    const s = str(v);
    return s === null ? null : posix.resolve(cwd, s);
  };
  const certDir = path(o.ssl_cert_dir);
  const mainSet = certDir === null || service.optionLocs?.ssl_cert_file !== undefined;
  const cert = mainSet ? path(o.ssl_cert_file) : null;
  const key = mainSet ? path(o.ssl_key_file) : null;
  const ciphers = str(o.ssl_cipher_list);
  return {
    main: cert !== null && key !== null ? { certFile: cert, keyFile: key, ocspFile: path(o.ssl_ocsp_file) } : null,
    certDir,
    ciphers: ciphers === null || ciphers === PERLBAL_DEFAULT_CIPHERS ? TSBAL_DEFAULT_CIPHERS : ciphers,
    caPath: path(o.ssl_ca_path),
    verifyMode: typeof o.ssl_verify_mode === 'number' ? o.ssl_verify_mode : 0,
  };
}

export interface LoadedTls {
  settings: TlsSettings;
  /** The default certificate first (ssl_cert_file, else the first of ssl_cert_dir), then the SNI ones. */
  certs: CertPair[];
  /** CA certificates for client verification (ssl_ca_path), or null for the system's. */
  ca: Buffer[] | null;
}

export interface LocatedProblem extends TlsProblem {
  loc: SourceLocation;
}

/** Reads every file a TLS listener needs; `locate` says which config line a file came from. */
export function loadServiceTls(
  fs: TlsFiles,
  settings: TlsSettings,
  nowMs: number,
  locate: (file: string) => SourceLocation,
): { tls: LoadedTls | null; problems: LocatedProblem[] } {
  const problems: LocatedProblem[] = [];
  const add = (list: TlsProblem[], loc?: SourceLocation): void => {
    for (const p of list) problems.push({ ...p, loc: loc ?? locate(p.file) });
  };
  const specs: PairSpec[] = settings.main === null ? [] : [settings.main];
  if (settings.certDir !== null) {
    const dir = certDirPairs(fs, settings.certDir);
    add(dir.problems);
    specs.push(...dir.pairs);
  }
  const certs: CertPair[] = [];
  for (const spec of specs) {
    const r = loadCertPair(fs, spec, nowMs);
    // Problems with a certificate from ssl_cert_dir point at the ssl_cert_dir line.
    add(r.problems, spec === settings.main ? undefined : locate(settings.certDir!));
    if (r.pair !== null) certs.push(r.pair);
  }
  let ca: Buffer[] | null = null;
  if (settings.caPath !== null) {
    const r = caCertificates(fs, settings.caPath);
    add(r.problems);
    ca = r.certs;
  }
  if (problems.some((p) => p.severity === 'error')) return { tls: null, problems };
  return { tls: { settings, certs, ca }, problems };
}

/** The config's file access as TLS file access. */
export function tlsFilesOf(fs: ConfigFs): TlsFiles {
  return { read: (p) => fs.readBytes(p), mode: (p) => fs.mode(p), readdir: (p) => fs.readdir(p), isDir: (p) => fs.kind(p) === 'dir' };
}

/** Which option line a TLS file came from: the SET that named it, else the service's CREATE line. */
export function tlsLocator(service: ServiceModel, cwd: string, explicit: ReadonlyMap<string, SourceLocation> | undefined): (file: string) => SourceLocation {
  return (file) => {
    for (const key of TLS_PATH_OPTIONS) {
      const raw = service.options[key];
      const v = typeof raw === 'string' && raw !== '' ? posix.resolve(cwd, raw) : null;
      if (v !== null && (file === v || file.startsWith(`${v}/`))) return explicit?.get(key) ?? explicit?.get('enable_ssl') ?? service.loc;
    }
    return explicit?.get('enable_ssl') ?? service.loc;
  };
}
