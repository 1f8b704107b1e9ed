import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { memoryConfigFs, parsePerlbalConfig, readPerlbalConfig, type ConfigFs } from '../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../src/config/errors.ts';
import type { PerlbalConfig, ServiceModel } from '../../src/config/model.ts';

const fixture = (path: string) => readFileSync(new URL(`./fixtures/${path}`, import.meta.url), 'utf8');
const F = '/etc/perlbal/perlbal.conf';
const parse = (text: string, fs?: ConfigFs, env?: Record<string, string>) => parsePerlbalConfig(text, { file: F, ...(fs ? { fs } : {}), ...(env ? { env } : {}) });
const svc = (cfg: PerlbalConfig, name: string): ServiceModel => {
  const s = cfg.services.find((x) => x.name === name);
  if (!s) throw new Error(`no service ${name} in ${cfg.services.map((x) => x.name).join(', ')}`);
  return s;
};
const warningLines = (cfg: PerlbalConfig) => cfg.warnings.map(formatDiagnostic);
/** A minimal enabled service so a snippet passes the whole-file checks. */
const MGMT = '\nCREATE SERVICE mgmt\nSET role = management\nSET listen = 127.0.0.1:16000\nENABLE mgmt\n';

describe('the classic tutorial configs load', () => {
  test('section 4: one reverse_proxy balancer on the VIP:80 over pool webfarm with two backends', () => {
    const cfg = parse(fixture('tutorial/perlbal-section4.conf'));
    expect(cfg.pools).toHaveLength(1);
    expect(cfg.pools[0]).toMatchObject({ name: 'webfarm', balance_method: 'random', nodes: [{ host: '192.168.0.102', port: 80 }, { host: '192.168.0.103', port: 80 }] });
    const b = svc(cfg, 'balancer');
    expect(b).toMatchObject({ role: 'reverse_proxy', enabled: true, listen: { host: '192.168.0.99', port: 80 }, pool: 'webfarm' });
    expect(b.options).toMatchObject({ persist_client: true, persist_backend: true, verify_backend: true, idle_timeout: 30_000, buffer_size: 262_144 });
    expect(svc(cfg, 'mgmt')).toMatchObject({ role: 'management', listen: { host: '127.0.0.1', port: 16000 } });
    expect(warningLines(cfg)).toEqual([]);
  });

  test('section 8: LOAD vhosts, two pools and services, a selector on the VIP with *.site.com and *.example.com', () => {
    const cfg = parse(fixture('tutorial/perlbal-section8.conf'));
    expect(cfg.loadedPlugins).toEqual(['vhosts']);
    expect(cfg.pools.map((p) => [p.name, p.nodes.length])).toEqual([['sitefarm', 2], ['examplefarm', 2]]);
    expect(svc(cfg, 'site_balancer')).toMatchObject({ role: 'reverse_proxy', pool: 'sitefarm', listen: null, enabled: true });
    const sel = svc(cfg, 'vhost_selector');
    expect(sel).toMatchObject({ role: 'selector', plugins: ['vhosts'], listen: { host: '192.168.0.99', port: 80 } });
    expect(sel.vhosts.map((v) => [v.pattern, v.service])).toEqual([['*.site.com', 'site_balancer'], ['*.example.com', 'example_balancer']]);
    expect(warningLines(cfg)).toEqual([]);
  });
});

describe("every example config Debian's perlbal package ships loads", () => {
  // The files the examples name, relative to the directory Perlbal would be started from. The certificate pair is a
  // real one (self-signed, valid for 100 years) because tsbal judges certificates when it reads the config.
  const world = memoryConfigFs(
    { '/srv/conf/nodelist.dat': fixture('debian/nodelist.dat'), '/srv/certs/server-key.pem': fixture('debian/server-key.pem'), '/srv/certs/server-cert.pem': fixture('debian/server-cert.pem') },
    ['/usr/share/doc', '/var/www/site.com', '/var/www/example.com'],
  );
  const load = (name: string) => parsePerlbalConfig(fixture(`debian/${name}`), { file: `/usr/share/doc/perlbal/examples/${name}`, fs: world, cwd: '/srv' });

  test('load-balancer.conf: POOL ADD with and without port, a nodefile pool', () => {
    const cfg = load('load-balancer.conf');
    expect(cfg.pools[0]!.nodes.map((n) => `${n.host}:${n.port}`)).toEqual(['10.0.0.10:8080', '10.0.0.11:8080', '10.0.0.12:80', '10.0.0.13:8081']);
    expect(cfg.pools[1]).toMatchObject({ name: 'dynamic', nodefile: '/srv/conf/nodelist.dat', nodes: [{ host: '10.1.0.10', port: 80 }] });
    expect(cfg.services.map((s) => s.name)).toEqual(['balancer', 'balancer2', 'mgmt']);
  });

  test('virtual-hosts.conf: web_server docroots without the trailing slash, a vhosts selector', () => {
    const cfg = load('virtual-hosts.conf');
    expect(svc(cfg, 'site').options).toMatchObject({ docroot: '/var/www/site.com', dirindexing: true, index_files: ['index.html'] });
    expect(svc(cfg, 'vdemo').vhosts.map((v) => v.pattern)).toEqual(['*.site.com', '*.example.com']);
  });

  test('ssl.conf: enable_ssl with the default key and cert paths', () => {
    const s = svc(load('ssl.conf'), 'site');
    expect(s.options).toMatchObject({ enable_ssl: true, ssl_key_file: 'certs/server-key.pem', ssl_cipher_list: 'ALL:!ADH:!EXPORT56:RC4+RSA:+HIGH:+MEDIUM:+LOW:+SSLv2:+EXP:+eNULL' });
  });

  test('echoservice.conf: the EchoService plugin role and its echo_delay tunable', () => {
    const cfg = load('echoservice.conf');
    expect(svc(cfg, 'echo_delayed')).toMatchObject({ role: 'echo', options: { echo_delay: 3 } });
    // EchoService is implemented (src/proxy/echo.ts): loading it warns about nothing.
    expect(warningLines(cfg)).toEqual([]);
  });

  test('not-modified-plugin.conf: two plugins on one selector and a plugin setter', () => {
    const s = svc(load('not-modified-plugin.conf'), 'demo');
    expect(s.plugins).toEqual(['vhosts', 'notmodified']);
    expect(s.extra).toEqual({ 'notmodified.host_pattern': '^immutable\\.' });
    expect(s.options.persist_client).toBe(true);
  });

  test('webserver.conf and /etc/perlbal/perlbal.conf', () => {
    expect(svc(load('webserver.conf'), 'docs').options.docroot).toBe('/usr/share/doc');
    const etc = load('etc-perlbal.conf');
    expect(etc.server).toEqual({ pidfile: '/var/run/perlbal.pid' });
    expect(svc(etc, 'docs').listen).toEqual({ host: '0.0.0.0', port: 8080 });
  });
});

describe('the command language', () => {
  test('everything before the first = is lowercased; values keep their case', () => {
    const cfg = parse(`CREATE SERVICE FooBar\nSET FooBar.Role = reverse_proxy\nSET verify_backend_path = /Status\nCREATE POOL P\nSET foobar.pool = p\nENABLE FOOBAR\nSET foobar.listen = 80`);
    const s = svc(cfg, 'foobar');
    expect(s.options.verify_backend_path).toBe('/Status');
    expect(s.pool).toBe('p');
  });

  test('SET in all three forms: s.key, s key, and key from context, with or without spaces around =', () => {
    const cfg = parse(`CREATE SERVICE s\nSET role = reverse_proxy\nSET s.idle_timeout=5\nSET s persist_client_idle_timeout =7\nSET connect_ahead= 2${MGMT}`);
    expect(svc(cfg, 's').options).toMatchObject({ idle_timeout: 5000, persist_client_idle_timeout: 7000, connect_ahead: 2 });
  });

  test('CREATE POOL switches the context, so a later SET goes to the pool', () => {
    const r = readPerlbalConfig(`CREATE SERVICE s\nSET role = reverse_proxy\nCREATE POOL p\nSET persist_client = on${MGMT}`, { file: F });
    expect(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)[0]).toBe(
      `${F}:4: 'persist_client' is a service parameter, but the current object is pool 'p' (CREATE POOL switches the context to the pool; write SET <service>.persist_client = ... or USE <service> first)`,
    );
  });

  test('USE switches back; POOL ADD/REMOVE work in either word order', () => {
    const cfg = parse(`CREATE POOL p\nPOOL p ADD 10.0.0.1\nPOOL ADD p 10.0.0.2:81\nPOOL ADD p 10.0.0.3\nPOOL REMOVE p 10.0.0.3:80\nPOOL p remove 10.9.9.9\nCREATE SERVICE s\nUSE p\nUSE s\nSET role = reverse_proxy\nSET pool = p${MGMT}`);
    expect(cfg.pools[0]!.nodes).toEqual([{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 81 }]);
    expect(svc(cfg, 's').pool).toBe('p');
  });

  test('SET role resets options set before it to their defaults, and says so', () => {
    const cfg = parse(`CREATE SERVICE s\nSET persist_client = on\nSET role = web_server\nSET docroot = /tmp\nENABLE s\nSET listen = 80`, memoryConfigFs({}, ['/tmp']));
    expect(svc(cfg, 's').options.persist_client).toBe(false);
    expect(warningLines(cfg)).toEqual([`${F}:3: warning: SET role resets persist_client (line 2) to the default (put SET role first in the service block (Perlbal behaves the same))`]);
  });

  test('DEFAULT applies to services whose role is set afterwards', () => {
    const cfg = parse(`CREATE SERVICE a\nSET role = reverse_proxy\nDEFAULT persist_client = on\nDEFAULT idle_timeout = 5\nCREATE SERVICE b\nSET role = reverse_proxy${MGMT}`);
    expect(svc(cfg, 'a').options).toMatchObject({ persist_client: false, idle_timeout: 30_000 });
    expect(svc(cfg, 'b').options).toMatchObject({ persist_client: true, idle_timeout: 5000 });
  });

  test('value types: bool words, sizes with b/k/m, int-second times with unit suffixes, lists', () => {
    const cfg = parse(`CREATE SERVICE s\nSET role = reverse_proxy\nSET persist_backend = YES\nSET buffer_size = 1M\nSET buffer_backend_connect = 512b\nSET idle_timeout = 1500ms\nSET persist_client_idle_timeout = 2m\nSET error_retry_schedule = 0, .5,2\nSET trusted_upstream_proxies = 10.0.0.0/8, 192.168.1.5${MGMT}`);
    expect(svc(cfg, 's').options).toMatchObject({
      persist_backend: true, buffer_size: 1_048_576, buffer_backend_connect: 512, idle_timeout: 1500,
      persist_client_idle_timeout: 120_000, error_retry_schedule: [0, 500, 2000], trusted_upstream_proxies: ['10.0.0.0/8', '192.168.1.5'],
    });
  });

  test('every option of the role is present with its default, tsbal extensions included', () => {
    const s = svc(parse(`CREATE SERVICE s\nSET role = reverse_proxy${MGMT}`), 's');
    expect(s.options).toMatchObject({
      backend_persist_cache: 2, verify_backend_path: '*', max_chunked_request_size: 209_715_200, server_tokens: true, high_priority_cookie: null,
      connect_timeout: 3000, response_timeout: 30_000, backend_idle_timeout: 30_000, max_retries: 2, down_backoff: 1000, down_backoff_max: 30_000,
      access_log: 'off', header_timeout: 10_000, max_header_size: 65_536, max_header_count: 100, max_url_length: 8192, max_body_size: 0,
    });
    expect('docroot' in s.options).toBe(false);
  });

  test('SET plugins = vhosts before VHOST lines; later VHOST of the same pattern replaces; a selector target may be created later', () => {
    const cfg = parse(`LOAD Vhosts\nCREATE SERVICE sel\nSET role = selector\nSET listen = 80\nSET plugins = vhosts\nVHOST *.A.com = X\nVHOST sel *.a.com = y\nVHOST * = y\nENABLE sel\nCREATE SERVICE y\nSET role = reverse_proxy\nCREATE POOL p\nSET y.pool = p`);
    expect(svc(cfg, 'sel').vhosts.map((v) => [v.pattern, v.service, v.loc.line])).toEqual([['*.a.com', 'y', 7], ['*', 'y', 8]]);
  });

  test('SET plugins after VHOST lines wipes them, as in Perlbal, with a warning', () => {
    const cfg = parse(`LOAD vhosts\nCREATE SERVICE sel\nSET role = selector\nSET listen = 80\nVHOST * = t\nSET plugins = vhosts\nENABLE sel\nCREATE SERVICE t\nSET role = web_server\nSET docroot = /`, memoryConfigFs({}, ['/']));
    expect(svc(cfg, 'sel').vhosts).toEqual([]);
    expect(warningLines(cfg)).toContain(`${F}:6: warning: SET plugins clears the 1 VHOST/VPATH rule(s) given above for sel (put SET plugins before the VHOST/VPATH lines (Perlbal behaves the same))`);
  });

  test('VPATH regexes are kept in order (lowercased, as Perlbal does)', () => {
    const cfg = parse(`LOAD vpaths\nCREATE SERVICE sel\nSET role = selector\nSET plugins = vpaths\nVPATH ^/B[0-9]+ = t\nVPATH sel .* = t\nSET listen = 80\nENABLE sel\nCREATE SERVICE t\nSET role = web_server\nSET docroot = /`, memoryConfigFs({}, ['/']));
    expect(svc(cfg, 'sel').vpaths.map((v) => v.regex)).toEqual(['^/b[0-9]+', '.*']);
    expect(warningLines(cfg)[0]).toContain('VPATH regex is lowercased');
  });

  test('HEADER INSERT/REMOVE, lowercased up to the first =, with a warning when a value loses its capitals', () => {
    const cfg = parse(`CREATE SERVICE s\nSET role = reverse_proxy\nHEADER s insert X-Added-By: PerlBal Proxy\nHEADER s INSERT X-Eq: a=B\nHEADER s REMOVE X-Gone${MGMT}`);
    expect(svc(cfg, 's').headers.map(({ op, name, value }) => [op, name, value])).toEqual([
      ['insert', 'x-added-by', 'perlbal proxy'], ['insert', 'x-eq', 'a=B'], ['remove', 'x-gone', undefined],
    ]);
    // Only a value that lost its capitals is worth a warning; header names are case-insensitive anyway.
    expect(warningLines(cfg).filter((w) => w.includes('HEADER'))).toEqual([`${F}:3: warning: HEADER is lowercased up to the first =, as in Perlbal: the backend gets 'x-added-by: perlbal proxy'`]);
  });

  test('SERVER keys, ACCESS and REDIRECT rules per service', () => {
    const cfg = parse(`SERVER pidfile = /run/tsbal.pid\nSERVER max_connections = 10000\nLOAD AccessControl\nLOAD redirect\nCREATE SERVICE s\nSET role = reverse_proxy\nSET plugins = accesscontrol, redirect\nACCESS POLICY deny\nACCESS ALLOW netmask 10.0.0.0/8\nACCESS QUEUE_LOW ip 10.1.2.3\nREDIRECT HOST Old.com new.com${MGMT}`);
    expect(cfg.server).toEqual({ pidfile: '/run/tsbal.pid', max_connections: 10000 });
    expect(cfg.access.s!.policy).toBe('deny');
    expect(cfg.access.s!.rules.map((r) => [r.action, r.kind, r.value])).toEqual([['allow', 'netmask', '10.0.0.0/8'], ['queue_low', 'ip', '10.1.2.3']]);
    expect(cfg.redirects.s!.map((r) => [r.from, r.to])).toEqual([['old.com', 'new.com']]);
  });

  test('$NAME expands from the environment on every line; ${ip:iface} asks for the interface address', () => {
    const cfg = parsePerlbalConfig(`CREATE SERVICE m\nSET role = management\nSET listen = \${ip:lo}:$PBPORT\nENABLE m`, { file: F, env: { PBPORT: '16001' }, interfaceAddress: (i) => (i === 'lo' ? '127.0.0.1' : null) });
    expect(svc(cfg, 'm').listen).toEqual({ host: '127.0.0.1', port: 16001 });
  });

  test('the pool balance_method takes tsbal\'s roundrobin and leastconn besides random', () => {
    const cfg = parse(`CREATE POOL p\nSET balance_method = leastconn${MGMT}`);
    expect(cfg.pools[0]!.balance_method).toBe('leastconn');
  });

  test('comments, blank lines, indentation and CRLF line ends', () => {
    const cfg = parse('# top\r\n\r\n   CREATE   SERVICE  m   # name\r\n\tSET role = management\r\nSET listen = 127.0.0.1:1\r\nENABLE m\r\n');
    expect(svc(cfg, 'm').enabled).toBe(true);
  });
});

describe('INCLUDE', () => {
  const fs = memoryConfigFs({
    '/etc/perlbal/conf.d/a.conf': 'CREATE POOL p\nPOOL p ADD 10.0.0.1\n',
    '/etc/perlbal/conf.d/b.conf': 'CREATE SERVICE s\nSET role = reverse_proxy\nSET pool = p\nSET listen = 80\nENABLE s\n',
    '/etc/perlbal/conf.d/.hidden.conf': 'garbage\n',
    '/etc/perlbal/loop.conf': 'LOAD include\nINCLUDE = /etc/perlbal/loop.conf\n',
  });

  test('globs run each file in order, each with its own context', () => {
    const cfg = parse('LOAD include\nINCLUDE = /etc/perlbal/conf.d/*.conf\n', fs);
    expect(cfg.files).toEqual([F, '/etc/perlbal/conf.d/a.conf', '/etc/perlbal/conf.d/b.conf']);
    expect(svc(cfg, 's').pool).toBe('p');
  });

  test('brace alternatives and several patterns on one line', () => {
    const cfg = parse('LOAD include\nINCLUDE = /etc/perlbal/conf.d/{a}.conf /etc/perlbal/conf.d/b.co?f\n', fs);
    expect(cfg.files.slice(1)).toEqual(['/etc/perlbal/conf.d/a.conf', '/etc/perlbal/conf.d/b.conf']);
  });

  test('the context does not leak into or out of an included file', () => {
    const r = readPerlbalConfig('LOAD include\nCREATE SERVICE s\nINCLUDE = /x.conf\nSET role = reverse_proxy\n', { file: F, fs: memoryConfigFs({ '/x.conf': 'SET idle_timeout = 3\n' }) });
    expect(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)[0]).toBe(
      '/x.conf:1: omitted service/pool name not implied from context (CREATE SERVICE/POOL or USE a name first, or name it on this line)',
    );
  });
});
