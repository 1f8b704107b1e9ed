// Certificate and key files for TLS listeners: what one service's TLS settings point at, read and judged the same
// way by `tsbal check`, at start and at every reload (so a renewed certificate is checked before it is served).
// Problems name the file; the caller adds the config line. File access is injected (the real disk, or a test tree).
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { posix } from 'node:path';
import { createSecureContext } from 'node:tls';

export interface TlsFiles {
  /** The file's bytes; throws an Error with `code` (ENOENT, EACCES, EISDIR, ...). */
  read(path: string): Buffer;
  /** Permission bits (mode & 0o7777) of what the path points at, or null when it cannot be stat'ed. */
  mode(path: string): number | null;
  /** Entry names of a directory, or null when it cannot be listed. */
  readdir(path: string): string[] | null;
  isDir(path: string): boolean;
}

/** A certificate expiring sooner than this is a warning (certbot renews 30 days ahead; 14 means renewal failed). */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

export interface CertPair {
  certFile: string;
  keyFile: string;
  /** The certificate file as read (leaf first, then the chain). */
  certPem: Buffer;
  keyPem: Buffer;
  /** The leaf certificate. */
  leaf: X509Certificate;
  /** DNS names it is valid for (subjectAltName, else the CN), lowercased; `*.x` for wildcards. */
  names: string[];
  /** A DER OCSP response to staple, when a staple file is given. */
  ocsp: Buffer | null;
  ocspFile: string | null;
}

export interface TlsProblem {
  severity: 'error' | 'warning';
  /** What the problem is about (the certificate, key or staple file, or the directory). */
  file: string;
  message: string;
  hint?: string;
}

export interface PairSpec {
  certFile: string;
  keyFile: string;
  ocspFile: string | null;
}

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String((e as Error).message ?? e);
}

function readOrProblem(fs: TlsFiles, path: string, what: string, out: TlsProblem[]): Buffer | null {
  try {
    return fs.read(path);
  } catch (e) {
    const code = errCode(e);
    if (code === 'ENOENT') out.push({ severity: 'error', file: path, message: `${what} ${path} does not exist` });
    else out.push({ severity: 'error', file: path, message: `${what} ${path} cannot be read (${code})`, hint: code === 'EACCES' ? 'tsbal runs as root; check the file and its directories' : undefined });
    return null;
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The DNS names of a certificate: subjectAltName DNS entries, else the subject CN (as browsers no longer do). */
export function certificateNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san !== undefined && san.length > 0) {
    const names = san.split(/,\s*/).filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4).toLowerCase());
    if (names.length > 0) return names;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * Reads and judges one certificate/key pair: missing, unreadable, not PEM, a key readable by everyone, a key that
 * does not match, an expired certificate (errors); one expiring within EXPIRY_WARNING_DAYS or not valid yet
 * (warnings). The pair is null when anything is an error.
 */
export function loadCertPair(fs: TlsFiles, spec: PairSpec, nowMs: number): { pair: CertPair | null; problems: TlsProblem[] } {
  const problems: TlsProblem[] = [];
  const { certFile, keyFile } = spec;
  const certPem = readOrProblem(fs, certFile, 'certificate file', problems);
  const keyPem = readOrProblem(fs, keyFile, 'key file', problems);
  const mode = keyPem === null ? null : fs.mode(keyFile);
  if (mode !== null && (mode & 0o004) !== 0) {
    const octal = mode.toString(8).padStart(3, '0');
    problems.push({ severity: 'error', file: keyFile, message: `key file ${keyFile} is readable by everyone (mode ${octal})`, hint: `run: chmod 600 ${keyFile} (or 640 with group ssl-cert)` });
  }
  let leaf: X509Certificate | null = null;
  if (certPem !== null) {
    const blocks = certPem.toString('latin1').match(PEM_CERT);
    if (blocks === null) {
      problems.push({ severity: 'error', file: certFile, message: `certificate file ${certFile} is not PEM (no BEGIN CERTIFICATE block)`, hint: 'convert DER with: openssl x509 -inform der -in FILE -out FILE.pem' });
    } else {
      try {
        leaf = new X509Certificate(blocks[0]!);
        for (const b of blocks.slice(1)) new X509Certificate(b);
      } catch (e) {
        problems.push({ severity: 'error', file: certFile, message: `certificate file ${certFile} holds a certificate that cannot be parsed (${(e as Error).message})` });
        leaf = null;
      }
    }
  }
  let key: KeyObject | null = null;
  if (keyPem !== null) {
    const text = keyPem.toString('latin1');
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      problems.push({ severity: 'error', file: keyFile, message: `key file ${keyFile} is not a PEM private key (no BEGIN PRIVATE KEY block)` });
    } else if (/ENCRYPTED/.test(text)) {
      problems.push({ severity: 'error', file: keyFile, message: `key file ${keyFile} is encrypted; tsbal cannot ask for a passphrase`, hint: `decrypt it: openssl pkey -in ${keyFile} -out ${keyFile}` });
    } else {
      try {
        key = createPrivateKey(keyPem);
      } catch (e) {
        problems.push({ severity: 'error', file: keyFile, message: `key file ${keyFile} holds a private key that cannot be parsed (${(e as Error).message})` });
      }
    }
  }
  if (leaf !== null && key !== null && !leaf.checkPrivateKey(key)) {
    problems.push({ severity: 'error', file: keyFile, message: `key file ${keyFile} does not match the certificate in ${certFile}`, hint: 'the key and certificate were made for each other? compare: openssl x509 -noout -pubkey -in CERT; openssl pkey -pubout -in KEY' });
  }
  if (leaf !== null) {
    const notAfter = Date.parse(leaf.validTo);
    const notBefore = Date.parse(leaf.validFrom);
    const names = certificateNames(leaf).join(', ') || leaf.subject.replace(/\n/g, ', ');
    if (notAfter <= nowMs) {
      problems.push({ severity: 'error', file: certFile, message: `certificate ${certFile} (${names}) expired on ${day(notAfter)}`, hint: 'renew it (certbot renew), then tsbal reload' });
    } else if (notAfter - nowMs < EXPIRY_WARNING_DAYS * DAY_MS) {
      const days = Math.floor((notAfter - nowMs) / DAY_MS);
      problems.push({ severity: 'warning', file: certFile, message: `certificate ${certFile} (${names}) expires on ${day(notAfter)}, in ${days} day${days === 1 ? '' : 's'}`, hint: 'renew it (certbot renew), then tsbal reload' });
    }
    if (notBefore > nowMs) problems.push({ severity: 'warning', file: certFile, message: `certificate ${certFile} is not valid before ${new Date(notBefore).toISOString()}` });
  }
  let ocsp: Buffer | null = null;
  if (spec.ocspFile !== null) {
    ocsp = readOrProblem(fs, spec.ocspFile, 'OCSP staple file', problems);
    // A DER OCSPResponse is an ASN.1 SEQUENCE; anything else would be stapled as garbage.
    if (ocsp !== null && (ocsp.length < 8 || ocsp[0] !== 0x30)) {
      problems.push({ severity: 'error', file: spec.ocspFile, message: `OCSP staple file ${spec.ocspFile} is not a DER OCSP response`, hint: 'make it with: openssl ocsp ... -respout FILE' });
      ocsp = null;
    }
  }
  const ok = leaf !== null && key !== null && !problems.some((p) => p.severity === 'error');
  return { pair: ok ? { certFile, keyFile, certPem: certPem!, keyPem: keyPem!, leaf: leaf!, names: certificateNames(leaf!), ocsp, ocspFile: spec.ocspFile } : null, problems };
}

/**
 * The pairs of an `ssl_cert_dir`, in name order: `NAME.crt` with `NAME.key` (and `NAME.ocsp` when present), and
 * certbot's layout, `NAME/fullchain.pem` with `NAME/privkey.pem` (so `/etc/letsencrypt/live` works as it is).
 */
export function certDirPairs(fs: TlsFiles, dir: string): { pairs: PairSpec[]; problems: TlsProblem[] } {
  const names = fs.readdir(dir);
  if (names === null) return { pairs: [], problems: [{ severity: 'error', file: dir, message: `certificate directory ${dir} cannot be listed` }] };
  const pairs: PairSpec[] = [];
  const problems: TlsProblem[] = [];
  const entries = new Set(names);
  for (const name of [...names].sort()) {
    const path = posix.join(dir, name);
    if (name.endsWith('.crt')) {
      const base = name.slice(0, -4);
      if (!entries.has(`${base}.key`)) {
        problems.push({ severity: 'error', file: path, message: `certificate ${path} has no key beside it (${base}.key)` });
        continue;
      }
      pairs.push({ certFile: path, keyFile: posix.join(dir, `${base}.key`), ocspFile: entries.has(`${base}.ocsp`) ? posix.join(dir, `${base}.ocsp`) : null });
    } else if (fs.isDir(path)) {
      const inner = fs.readdir(path) ?? [];
      if (inner.includes('fullchain.pem') && inner.includes('privkey.pem')) {
        pairs.push({ certFile: posix.join(path, 'fullchain.pem'), keyFile: posix.join(path, 'privkey.pem'), ocspFile: null });
      }
    }
  }
  if (pairs.length === 0 && problems.length === 0) {
    problems.push({ severity: 'error', file: dir, message: `certificate directory ${dir} holds no NAME.crt/NAME.key pair (nor NAME/fullchain.pem with NAME/privkey.pem)` });
  }
  return { pairs, problems };
}

/** Every PEM certificate in a directory (Perlbal's ssl_ca_path, a c_rehash'ed directory), each file once. */
export function caCertificates(fs: TlsFiles, dir: string): { certs: Buffer[]; problems: TlsProblem[] } {
  const names = fs.readdir(dir);
  if (names === null) return { certs: [], problems: [{ severity: 'error', file: dir, message: `CA directory ${dir} cannot be listed` }] };
  const seen = new Set<string>();
  const certs: Buffer[] = [];
  for (const name of [...names].sort()) {
    const path = posix.join(dir, name);
    if (fs.isDir(path)) continue;
    let bytes: Buffer;
    try {
      bytes = fs.read(path);
    } catch {
      continue;
    }
    for (const block of bytes.toString('latin1').match(PEM_CERT) ?? []) {
      if (seen.has(block)) continue;
      seen.add(block);
      certs.push(Buffer.from(block, 'latin1'));
    }
  }
  if (certs.length === 0) return { certs, problems: [{ severity: 'error', file: dir, message: `CA directory ${dir} holds no PEM certificate` }] };
  return { certs, problems: [] };
}

/** Null when OpenSSL accepts the cipher list (for TLS 1.2; TLS 1.3 suites may be named too), else why not. */
export function cipherListProblem(ciphers: string): string | null {
  try {
    createSecureContext({ ciphers, minVersion: 'TLSv1.2' });
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
