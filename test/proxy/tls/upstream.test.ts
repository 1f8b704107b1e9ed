// HTTPS to backends (pool backend_ssl): real nginx and Apache with certificates made by openssl, tsbal in process in
// front. Verification against backend_ssl_ca and the SNI name (or the backend's IP), connection reuse as for plain
// backends, session resumption on new connections, and verification failures that are failed connects (503), never a plain-HTTP fallback.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startNginxTlsBackend, type Nginx } from '../../harness/nginx.ts';
import { startApache, type Apache } from '../../harness/apache.ts';
import { makePki, type TestPki } from '../../harness/certs.ts';
import { configModel, poolModel, quietLog, rawRequest, serviceModel } from '../helpers.ts';
import { startProxy, type ProxyHandle } from '../../../src/proxy/index.ts';
import type { PoolModel } from '../../../src/config/model.ts';

let pki: TestPki;
let rogue: TestPki;
let nginx: Nginx;
let nginxRogue: Nginx;
let apache: Apache;
const proxies: ProxyHandle[] = [];

beforeAll(async () => {
  pki = makePki();
  rogue = makePki();
  const good = pki.issue('backend', ['backend.test', '127.0.0.1']);
  const bad = rogue.issue('backend', ['backend.test', '127.0.0.1']);
  [nginx, nginxRogue, apache] = await Promise.all([
    startNginxTlsBackend({ name: 'n', cert: good.crt, key: good.key }),
    startNginxTlsBackend({ name: 'rogue', cert: bad.crt, key: bad.key }),
    startApache({ name: 'a', tls: { cert: good.crt, key: good.key } }),
  ]);
}, 60_000);
afterAll(async () => {
  for (const p of proxies) await p.close({ graceful: false });
  await Promise.all([nginx?.stop(), nginxRogue?.stop(), apache?.stop()]);
  pki?.cleanup();
  rogue?.cleanup();
});

async function proxyTo(port: number, pool: PoolModel['options'], persist = true): Promise<number> {
  const config = configModel(
    [serviceModel('svc', 'p', { persist_client: true, persist_backend: persist, connect_timeout: 3000 })],
    [poolModel('p', [port], { options: pool })],
  );
  const proxy = await startProxy(config, { log: quietLog });
  proxies.push(proxy);
  return proxy.listeners()[0]!.port;
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const r = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n`, { timeoutMs: 8000 });
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(r.data)?.[1] ?? 0);
  return { status, body: r.data.slice(r.data.indexOf('\r\n\r\n') + 4) };
}

const field = (body: string, name: string): string => new RegExp(`^${name}: (.*)$`, 'm').exec(body)?.[1] ?? `no ${name} in ${JSON.stringify(body)}`;

describe('backend_ssl', () => {
  test('nginx over HTTPS, verified against backend_ssl_ca, with SNI; kept-alive connections are reused', async () => {
    const port = await proxyTo(nginx.port, { backend_ssl: true, backend_ssl_ca: pki.caCrt, backend_ssl_sni: 'backend.test' });
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await get(port, '/tls'));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(field(answers[0]!.body, 'sni')).toBe('backend.test');
    expect(field(answers[0]!.body, 'protocol')).toMatch(/^TLSv1\.[23]$/);
    expect(field(answers[0]!.body, 'x-forwarded-proto')).toBe('http');
    // One backend connection for all three: the same nginx connection serial, its request count going up.
    expect(new Set(answers.map((a) => field(a.body, 'connection'))).size).toBe(1);
    expect(answers.map((a) => field(a.body, 'requests'))).toEqual(['1', '2', '3']);
  });

  test('without backend_ssl_sni no name is sent and the certificate is checked against the backend IP', async () => {
    const port = await proxyTo(nginx.port, { backend_ssl: true, backend_ssl_ca: pki.caCrt });
    const r = await get(port, '/tls');
    expect(r.status).toBe(200);
    expect(field(r.body, 'sni')).toBe('');
  });

  test('a new connection resumes the previous TLS session (persist_backend off)', async () => {
    const port = await proxyTo(nginx.port, { backend_ssl: true, backend_ssl_ca: pki.caCrt, backend_ssl_sni: 'backend.test' }, false);
    const first = await get(port, '/tls');
    const second = await get(port, '/tls');
    expect(field(first.body, 'connection')).not.toBe(field(second.body, 'connection'));
    expect(field(second.body, 'reused')).toBe('r');
  });

  test('a certificate from another CA is a failed connect (503, like a refused one), unless backend_ssl_verify is off', async () => {
    const strict = await proxyTo(nginxRogue.port, { backend_ssl: true, backend_ssl_ca: pki.caCrt, backend_ssl_sni: 'backend.test' });
    const refused = await get(strict, '/');
    expect(refused.status).toBe(503);
    const lax = await proxyTo(nginxRogue.port, { backend_ssl: true, backend_ssl_verify: false });
    expect(await get(lax, '/')).toEqual({ status: 200, body: 'nginx rogue\n' });
  });

  test('a name the certificate does not carry is a failed connect (503)', async () => {
    const port = await proxyTo(nginx.port, { backend_ssl: true, backend_ssl_ca: pki.caCrt, backend_ssl_sni: 'other.test' });
    expect((await get(port, '/')).status).toBe(503);
  });

  test('Apache with mod_ssl as an HTTPS backend, verify_backend and keep-alive on', async () => {
    const config = configModel(
      [serviceModel('svc', 'p', { persist_client: true, persist_backend: true, verify_backend: true })],
      [poolModel('p', [apache.port], { options: { backend_ssl: true, backend_ssl_ca: pki.caCrt, backend_ssl_sni: 'backend.test' } })],
    );
    const proxy = await startProxy(config, { log: quietLog });
    proxies.push(proxy);
    const port = proxy.listeners()[0]!.port;
    expect(await get(port, '/')).toEqual({ status: 200, body: 'apache a\n' });
    expect(await get(port, '/')).toEqual({ status: 200, body: 'apache a\n' });
    const hits = await apache.waitForHits(3);
    expect(hits).toEqual(['OPTIONS * HTTP/1.0', 'GET / HTTP/1.1', 'GET / HTTP/1.1']);
  });

  test('active health checks speak TLS to a backend_ssl pool: a good backend is checked up, one with a rogue certificate down', async () => {
    const config = configModel(
      [serviceModel('svc', 'p', { persist_backend: true })],
      [poolModel('p', [nginx.port, nginxRogue.port], {
        options: { backend_ssl: true, backend_ssl_ca: pki.caCrt, backend_ssl_sni: 'backend.test', health_check_path: '/', health_check_interval: 200, health_check_timeout: 150, health_check_rise: 1, health_check_fall: 1 },
      })],
    );
    const proxy = await startProxy(config, { log: quietLog });
    proxies.push(proxy);
    const state = (port: number): string | undefined => proxy.engine.health.get(`127.0.0.1:${port}`)?.state;
    const deadline = Date.now() + 5000;
    while ((state(nginx.port) !== 'up' || state(nginxRogue.port) !== 'down') && Date.now() < deadline) await Bun.sleep(50);
    expect({ good: state(nginx.port), rogue: state(nginxRogue.port) }).toEqual({ good: 'up', rogue: 'down' });
  });
});
