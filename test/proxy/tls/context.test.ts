// What a TLS listener asks of OpenSSL per handshake (src/proxy/tls/context.ts): a registered 'OCSPRequest' listener
// makes Node enable OpenSSL's certificate callback, a call into JS on every handshake, so it is registered only when
// some certificate has a staple file. Stapling itself is served end to end in daemon.test.ts (Node; Bun's binding
// does not staple).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:tls';
import { readPerlbalConfigFile } from '../../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../../src/config/errors.ts';
import { buildTlsListener, loadTls } from '../../../src/proxy/tls/context.ts';
import { makePki, type TestPki } from '../../harness/certs.ts';
import { quietLog } from '../helpers.ts';

let pki: TestPki;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => pki?.cleanup());

/** The TLS server a service with these ssl_* lines gets. */
function serverFor(tlsLines: string, name: string): Server {
  const file = join(pki.dir, `${name}.conf`);
  writeFileSync(file, `CREATE POOL p
  POOL p ADD 127.0.0.1:9
CREATE SERVICE site
  SET listen = 127.0.0.1:9
  SET role = reverse_proxy
  SET pool = p
  SET enable_ssl = on
${tlsLines}
ENABLE site
`);
  const parsed = readPerlbalConfigFile(file, { cwd: pki.dir });
  const errors = parsed.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(errors.map(formatDiagnostic).join('\n'));
  const model = parsed.value.services.find((s) => s.name === 'site')!;
  const { tls } = loadTls(model, pki.dir, Date.now());
  const listener = buildTlsListener(model, tls, { http2: false, handshakeTimeoutMs: 10_000, now: 0, log: quietLog, previous: null }, () => {});
  return listener.server;
}

describe('TLS listener callbacks', () => {
  test('one certificate without a staple: no OCSPRequest listener', () => {
    const leaf = pki.issue('plain', ['plain.test']);
    const server = serverFor(`  SET ssl_cert_file = ${leaf.crt}\n  SET ssl_key_file = ${leaf.key}`, 'plain');
    expect(server.listenerCount('OCSPRequest')).toBe(0);
  });

  test('a staple file (ssl_cert_dir NAME.ocsp): the OCSPRequest listener is registered', () => {
    const dir = join(pki.dir, 'stapled');
    mkdirSync(dir);
    const leaf = pki.issue('stapled', ['stapled.test']);
    copyFileSync(leaf.crt, join(dir, 'site.crt'));
    copyFileSync(leaf.key, join(dir, 'site.key'));
    pki.ocsp(leaf, join(dir, 'site.ocsp'));
    const server = serverFor(`  SET ssl_cert_dir = ${dir}`, 'stapled');
    expect(server.listenerCount('OCSPRequest')).toBe(1);
  });

  test('two certificates (SNI) without staples: no OCSPRequest listener', () => {
    const dir = join(pki.dir, 'two');
    mkdirSync(dir);
    for (const name of ['a', 'b']) {
      const leaf = pki.issue(`two-${name}`, [`${name}.test`]);
      copyFileSync(leaf.crt, join(dir, `${name}.crt`));
      copyFileSync(leaf.key, join(dir, `${name}.key`));
    }
    const server = serverFor(`  SET ssl_cert_dir = ${dir}`, 'two');
    expect(server.listenerCount('OCSPRequest')).toBe(0);
  });
});
