// Config commands on the console without sockets: each line runs through the config file's executor on a copy of
// the running config, and what comes out is handed whole to `apply` (the reload); failures leave the config alone.
import { describe, expect, test } from 'bun:test';
import type { PerlbalConfig } from '../../../src/config/model.ts';
import { createCommandContext, memoryConfigFs, parsePerlbalConfig, type CommandEnv } from '../../../src/config/perlbal.ts';
import { consoleError, newConfigurer } from '../../../src/proxy/management/configure.ts';
import { dumpConfig } from '../../../src/proxy/management/dumpconfig.ts';
import { quietLog } from '../helpers.ts';

const CONF = `
CREATE POOL p
  POOL p ADD 127.0.0.1:8081
CREATE SERVICE web
  SET role = reverse_proxy
  SET listen = 127.0.0.1:8080
  SET pool = p
ENABLE web
`;

const env: CommandEnv = {
  env: {},
  fs: memoryConfigFs({ '/etc/more.conf': 'CREATE POOL q\nPOOL q ADD 10.0.0.1:80\nSET bogus = 1\n', '/bin/true': '' }, ['/srv/www'], ['/bin/true']),
  cwd: '/etc',
  interfaceAddress: () => null,
  includeStack: [],
};

function setup(applyError: string | null = null) {
  let config: PerlbalConfig = parsePerlbalConfig(CONF, { file: '/etc/perlbal.conf' });
  const applied: PerlbalConfig[] = [];
  const configurer = newConfigurer({
    current: () => config,
    exclusive: (task) => task(),
    apply: async (next) => {
      applied.push(next);
      if (applyError !== null) return { ok: false, errors: [applyError] };
      config = next;
      return { ok: true, summary: 'changed' };
    },
    env,
    log: quietLog,
  });
  const ctx = createCommandContext('management');
  const run = (line: string) => configurer.run(line, ctx);
  return { run, applied, config: () => config, ctx };
}

const svc = (c: PerlbalConfig, name: string) => c.services.find((s) => s.name === name)!;

describe('config commands on the console', () => {
  test('SET of any option of the table reaches the running config typed, through one apply', async () => {
    const t = setup();
    expect(await t.run('SET web.buffer_backend_connect = 1k')).toEqual({ kind: 'ok' });
    expect(await t.run('set web trusted_upstream_proxies = 10.0.0.0/8, 127.0.0.1')).toEqual({ kind: 'ok' });
    expect(svc(t.config(), 'web').options.buffer_backend_connect).toBe(1024);
    expect(svc(t.config(), 'web').options.trusted_upstream_proxies).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(t.applied).toHaveLength(2);
  });

  test("Perlbal's errors come back and nothing is applied", async () => {
    const t = setup();
    expect(await t.run('SET web bogus = 1')).toEqual({ kind: 'error', messages: ["Unknown service parameter 'bogus'"] });
    expect(await t.run('SET web.persist_backend = maybe')).toEqual({ kind: 'error', messages: ["Expecting boolean value for parameter 'persist_backend'"] });
    expect(await t.run('SET web.dirindexing = on')).toEqual({ kind: 'error', messages: ["The 'dirindexing' option can only be set on a 'web_server' service"] });
    expect(await t.run('enable web')).toEqual({ kind: 'error', messages: ['service web is already enabled'] });
    expect(await t.run('set x = 1')).toEqual({ kind: 'error', messages: ['omitted service/pool name not implied from context'] });
    expect(t.applied).toHaveLength(0);
  });

  test('a service is built from nothing with the context of CREATE, and ENABLE applies it', async () => {
    const t = setup();
    for (const line of ['CREATE POOL p2', 'POOL p2 ADD 127.0.0.1:9001', 'CREATE SERVICE s2', 'SET role = reverse_proxy', 'SET listen = 127.0.0.1:9000', 'SET pool = p2', 'ENABLE s2']) {
      expect([line, await t.run(line)]).toEqual([line, { kind: 'ok' }]);
    }
    const s2 = svc(t.config(), 's2');
    expect([s2.role, s2.listen, s2.pool, s2.enabled]).toEqual(['reverse_proxy', { host: '127.0.0.1', port: 9000 }, 'p2', true]);
    expect(t.ctx.lastCreated).toBe('s2');
  });

  test('SET role on a running service re-initialises its options; a web_server without docroot is refused while it serves', async () => {
    const t = setup();
    await t.run('SET web.persist_client = on');
    expect(await t.run('SET web.role = web_server')).toEqual({ kind: 'error', messages: ['service web (web_server) has no docroot; SET docroot first'] });
    expect(svc(t.config(), 'web').role).toBe('reverse_proxy');
    await t.run('DISABLE web');
    expect(await t.run('SET web.role = web_server')).toEqual({ kind: 'ok' });
    expect(await t.run('SET web.docroot = /srv/www')).toEqual({ kind: 'ok' });
    expect(await t.run('SET web.dirindexing = on')).toEqual({ kind: 'ok' });
    expect(await t.run('ENABLE web')).toEqual({ kind: 'ok' });
    const web = svc(t.config(), 'web');
    expect([web.role, web.pool, web.options.persist_client, web.options.docroot, web.options.dirindexing]).toEqual(['web_server', null, false, '/srv/www', true]);
  });

  test('the console refuses what would let whoever connects run code: server_process, an access_log file', async () => {
    const t = setup();
    expect(await t.run('SET web.access_log = /etc/cron.d/evil')).toEqual({
      kind: 'error',
      messages: ['access_log cannot be set to a file on the management port (anyone who can connect could write to any file); set it in perlbal.conf, or use off or stdout'],
    });
    expect(await t.run('SET web.server_process = /bin/true')).toEqual({
      kind: 'error',
      messages: ['server_process cannot be set on the management port (it names a program to run); set it in perlbal.conf'],
    });
    expect(await t.run('SET web.access_log = stdout')).toEqual({ kind: 'ok' });
    expect(t.applied).toHaveLength(1);
  });

  test('a command that changes nothing (USE, a repeated SET) is not applied', async () => {
    const t = setup();
    await t.run('USE web');
    await t.run('SET persist_client = off');
    expect(t.applied).toHaveLength(0);
  });

  test('a failed apply (a bind) leaves the running config as it was and says why', async () => {
    const t = setup('management:3: service web: cannot listen on 127.0.0.1:1: EACCES (listen EACCES: permission denied 127.0.0.1:1)');
    const before = t.config();
    const r = await t.run('SET web.listen = 127.0.0.1:1');
    expect(r).toEqual({ kind: 'error', messages: ["Can't start service 'web' on 127.0.0.1:1: Error creating listening socket: Permission denied; still listening on 127.0.0.1:8080"] });
    expect(t.config()).toBe(before);
  });

  test('LOAD, then plugin commands (VHOST, ACCESS, REDIRECT) and HEADER change the model the file would', async () => {
    const t = setup();
    for (const line of ['LOAD vhosts', 'LOAD AccessControl', 'CREATE SERVICE sel', 'SET role = selector', 'SET plugins = vhosts, accesscontrol', 'VHOST *.example.com = web', 'ACCESS DENY ip 10.1.2.3', 'HEADER web INSERT X-A: b', 'SET sel.accesscontrol.use_observed_ip = 1']) {
      expect([line, await t.run(line)]).toEqual([line, { kind: 'ok' }]);
    }
    const c = t.config();
    expect(svc(c, 'sel').vhosts.map((v) => [v.pattern, v.service])).toEqual([['*.example.com', 'web']]);
    expect(c.access.sel?.rules.map((r) => r.value)).toEqual(['10.1.2.3']);
    expect(svc(c, 'web').headers.map((h) => [h.op, h.name, h.value])).toEqual([['insert', 'x-a', 'b']]);
    expect(svc(c, 'sel').extra['accesscontrol.use_observed_ip']).toBe('1');
  });

  test('INCLUDE runs the files; their errors are printed with file:line and what loaded is kept, as in Perlbal', async () => {
    const t = setup();
    await t.run('LOAD include');
    const r = await t.run('INCLUDE = /etc/more.conf');
    expect(r.kind === 'error' && r.messages.length).toBe(1);
    expect(r.kind === 'error' && r.messages[0]).toStartWith("/etc/more.conf:3: Unknown pool parameter 'bogus' (pools take nodefile, balance_method, ");
    expect(t.config().pools.find((p) => p.name === 'q')?.nodes).toEqual([{ host: '10.0.0.1', port: 80 }]);
  });

  test('SERVER keys and DEFAULT (for services whose role is set later) work as in a file', async () => {
    const t = setup();
    expect(await t.run('SERVER max_connections = 1000')).toEqual({ kind: 'ok' });
    expect(await t.run('SERVER pidfile = /run/x.pid')).toEqual({ kind: 'error', messages: ['pidfile must be configured at startup, before Perlbal::run is called'] });
    expect(await t.run('SERVER nope = 1')).toEqual({ kind: 'error', messages: ["unknown server option 'nope'"] });
    await t.run('DEFAULT persist_client = on');
    await t.run('CREATE SERVICE later');
    await t.run('SET role = reverse_proxy');
    expect(svc(t.config(), 'later').options.persist_client).toBe(true);
    expect(t.config().server.max_connections).toBe(1000);
  });
});

describe('dumpconfig', () => {
  test('pools, then services with role, listen, pool and the options that differ from the default, then ENABLE', async () => {
    const t = setup();
    await t.run('SET web.persist_backend = on');
    await t.run('SET web.connect_timeout = 250ms');
    expect(dumpConfig(t.config())).toEqual([
      'CREATE POOL p',
      '  POOL ADD p 127.0.0.1:8081',
      '',
      'CREATE SERVICE web',
      '  SET role = reverse_proxy',
      '  SET listen = 127.0.0.1:8080',
      '  SET pool = p',
      '  SET connect_timeout = 250ms',
      '  SET persist_backend = on',
      'ENABLE web',
      '',
    ]);
  });

  test('its output, run as a config file, gives the same config back', async () => {
    const t = setup();
    for (const line of ['LOAD vhosts', 'CREATE SERVICE sel', 'SET role = selector', 'SET listen = 127.0.0.1:7000', 'SET plugins = vhosts', 'VHOST a.com = web', 'ENABLE sel', 'HEADER web REMOVE x-b']) await t.run(line);
    const again = parsePerlbalConfig(dumpConfig(t.config()).join('\n'), { file: '/etc/perlbal.conf' });
    expect(dumpConfig(again)).toEqual(dumpConfig(t.config()));
  });

  test('consoleError keeps other reload errors without their file:line', () => {
    expect(consoleError("management:4: service web: uses pool 'x', which does not exist", parsePerlbalConfig(CONF, { file: 'f' }))).toBe("service web: uses pool 'x', which does not exist");
  });
});
