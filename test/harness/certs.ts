// A throwaway PKI made with the openssl CLI (Debian's), for TLS tests: a CA, leaf certificates for chosen names,
// with chosen validity (an expired one, one expiring soon), RSA or ECDSA keys, and OCSP responses to staple.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Leaf {
  crt: string;
  key: string;
}

export interface TestPki {
  dir: string;
  caCrt: string;
  caKey: string;
  /** A certificate for `names` (the first is the CN), signed by the CA, valid from `from` to `to` (Date). */
  issue(file: string, names: string[], opts?: { from?: Date; to?: Date; key?: 'ec' | 'rsa'; dir?: string; usage?: 'serverAuth' | 'clientAuth' }): Leaf;
  /** A DER OCSP response "good" for `leaf`, signed by the CA, at `out`. */
  ocsp(leaf: Leaf, out: string): string;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
}

const stamp = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'tsbal-pki-'));
  const db = join(dir, '.ca');
  mkdirSync(db);
  writeFileSync(join(db, 'index.txt'), '');
  writeFileSync(join(db, 'serial'), '1000\n');
  writeFileSync(
    join(db, 'ca.cnf'),
    ['[ca]', 'default_ca = d', '[d]', `database = ${db}/index.txt`, `new_certs_dir = ${db}`, `serial = ${db}/serial`,
      'default_md = sha256', 'policy = p', 'copy_extensions = copy', 'unique_subject = no', '[p]', 'commonName = supplied', ''].join('\n'),
  );
  const caCrt = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caCrt, '-days', '30',
    '-subj', '/CN=tsbal test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return {
    dir,
    caCrt,
    caKey,
    issue(file, names, opts = {}) {
      const where = opts.dir ?? dir;
      mkdirSync(where, { recursive: true });
      const key = join(where, `${file}.key`);
      const crt = join(where, `${file}.crt`);
      const csr = join(db, `${file}.csr`);
      const newkey = opts.key === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
      const san = names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      openssl(['req', '-new', ...newkey, '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]}`,
        '-addext', `subjectAltName=${san}`, '-addext', `extendedKeyUsage=${opts.usage ?? 'serverAuth'}`, '-addext', 'basicConstraints=CA:FALSE'], dir);
      const from = opts.from ?? new Date(Date.now() - 3_600_000);
      const to = opts.to ?? new Date(Date.now() + 30 * 86_400_000);
      openssl(['ca', '-batch', '-config', join(db, 'ca.cnf'), '-cert', caCrt, '-keyfile', caKey, '-in', csr, '-out', crt, '-notext',
        '-startdate', stamp(from), '-enddate', stamp(to)], dir);
      chmodSync(key, 0o600);
      return { crt, key };
    },
    ocsp(leaf, out) {
      openssl(['ocsp', '-index', join(db, 'index.txt'), '-rsigner', caCrt, '-rkey', caKey, '-CA', caCrt, '-issuer', caCrt, '-cert', leaf.crt,
        '-respout', out, '-ndays', '1'], dir);
      return out;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
