// Line handling of the console without sockets: Perlbal's line preparation, the quit rule, argument regexes and
// error texts, and which calls reach the running proxy. The target is a record of calls, not a proxy.
import { describe, expect, test } from 'bun:test';
import { isQuit, newSession, prepare, runLine, type ManagementTarget } from '../../../src/proxy/management/commands.ts';
import { setLiveOption } from '../../../src/proxy/management/live-options.ts';
import { reverseProxyOptions } from '../../../src/proxy/options.ts';
import { poolModel, serviceModel } from '../helpers.ts';

function recordingTarget(calls: string[]): ManagementTarget {
  return {
    services: () => [],
    service: () => null,
    pools: () => [],
    pool: () => null,
    nodes: () => [],
    node: (key) => (calls.push(`node ${key}`), null),
    states: () => new Map(),
    queues: () => [],
    backends: () => [['127.0.0.1:2', 1], ['127.0.0.1:1', 3]],
    noVerify: () => [],
    pending: () => [{ service: 'web', key: '10.0.0.2:80', ageSec: 3 }, { service: 'api', key: '10.0.0.9:80', ageSec: 1 }],
    plugins: () => [['web', ['Vhosts', 'AccessControl']]],
    proc: () => ({ nowEpochSec: 160, pid: 42, utime: 1.25, utimeDelta: 0.5, stime: 0.125, stimeDelta: 0, requests: 7, requestsDelta: 2 }),
    fds: () => null,
    startEpochSec: () => 100,
    nowEpochSec: () => 160,
    hasService: (n) => n === 'web',
    hasPool: (n) => n === 'p',
    changePool: (pool, op, host, port, weight) => (calls.push(`${op} ${pool} ${host}:${port}${weight === undefined ? '' : ` weight=${weight}`}`), null),
    setMember: (pool, key, change) => (calls.push(`member ${pool} ${key} ${JSON.stringify(change)}`), null),
    set: (name, key, value) => (calls.push(`set ${name} ${key}=${value}`), null),
    enable: async (name) => (calls.push(`enable ${name}`), null),
    disable: (name) => (calls.push(`disable ${name}`), 'nope'),
    shutdown: (graceful, timeoutSec) => (calls.push(`shutdown ${graceful} ${timeoutSec}`), null),
  };
}

async function run(...lines: string[]): Promise<{ out: string[]; calls: string[] }> {
  const calls: string[] = [];
  const target = recordingTarget(calls);
  const session = newSession();
  const out: string[] = [];
  for (const l of lines) out.push(...(await runLine(target, session, l)).lines);
  return { out, calls };
}

describe('console lines', () => {
  test("prepare strips comments, squeezes blanks and lowercases up to the first '=' only", () => {
    expect(prepare('  SET  Web.Verify_Backend_Path =  /Ping  # why ')).toBe('set web.verify_backend_path = /Ping');
    expect(prepare('# only a comment')).toBe('');
  });

  test('POOL ADD takes weight=N (0..256) and refuses it with REMOVE or out of range', async () => {
    const r = await run('POOL p ADD 10.0.0.1:81 weight=3', 'pool p add 10.0.0.1 WEIGHT=0', 'pool p add 10.0.0.1 weight=257', 'pool p remove 10.0.0.1 weight=2');
    expect(r.calls).toEqual(['add p 10.0.0.1:81 weight=3', 'add p 10.0.0.1:80 weight=0']);
    expect(r.out).toEqual(['OK', 'OK', "ERROR: weight must be an integer from 0 to 256, not '257'", 'ERROR: weight= goes with POOL ADD only']);
  });

  test('pool <p> drain|maint|ready <ip:port> and pool <p> weight <ip:port> <N> reach the proxy; bad forms get usage', async () => {
    const r = await run('pool p drain 10.0.0.1:81', 'POOL p MAINT 10.0.0.1', 'pool p ready 10.0.0.1:81', 'pool p weight 10.0.0.1:81 5',
      'pool p weight 10.0.0.1:81', 'pool p drain', 'pool q drain 10.0.0.1', 'pool p weight 10.0.0.1 x');
    expect(r.calls).toEqual([
      'member p 10.0.0.1:81 {"admin":"drain"}',
      'member p 10.0.0.1:80 {"admin":"maint"}',
      'member p 10.0.0.1:81 {"admin":"ready"}',
      'member p 10.0.0.1:81 {"weight":5}',
    ]);
    expect(r.out).toEqual([
      'OK', 'OK', 'OK', 'OK',
      'ERROR: usage: POOL <pool> WEIGHT <ip>[:<port>] <0..256>',
      'ERROR: usage: POOL <pool> DRAIN <ip>[:<port>]',
      "ERROR: Pool 'q' not found",
      "ERROR: weight must be an integer from 0 to 256, not 'x'",
    ]);
  });

  test("the quit rule is Perlbal's unanchored regex: starts with quit or ends with exit, case-sensitive", () => {
    expect([isQuit('quit'), isQuit('quitting'), isQuit('show service exit'), isQuit('EXIT'), isQuit(' quit')]).toEqual([true, true, true, false, false]);
  });

  test('POOL takes add/remove on either side, defaults the port to 80, and refuses what is not an IPv4 address', async () => {
    const r = await run('POOL p ADD 10.0.0.1', 'pool remove p 10.0.0.2:8080', 'pool p add 10.0.0.1:0', 'pool p add 10.0.0.300', 'pool p add host.example');
    expect(r.calls).toEqual(['add p 10.0.0.1:80', 'remove p 10.0.0.2:8080', 'add p 10.0.0.1:80']);
    expect(r.out).toEqual(['OK', 'OK', 'OK', "ERROR: Invalid syntax to 'pool' command", "ERROR: Invalid syntax to 'pool' command"]);
  });

  test('SET names the service by argument or by USE; values keep their case', async () => {
    const r = await run('set x = 1', 'use web', 'set persist_client = On', 'SET web.Verify_Backend_Path = /Up', 'set nosuch x = 1', 'set web');
    expect(r.calls).toEqual(['set web persist_client=On', 'set web verify_backend_path=/Up']);
    expect(r.out).toEqual([
      'ERROR: omitted service/pool name not implied from context',
      'OK',
      'OK',
      'OK',
      "ERROR: service/pool 'nosuch' does not exist",
      'ERROR: usage: SET [<service>] <param> = <value>',
    ]);
  });

  test('ENABLE and DISABLE pass the name on; the target’s refusal is printed as an ERROR', async () => {
    const r = await run('enable web', 'disable web', 'enable', 'enable other');
    expect(r.calls).toEqual(['enable web', 'disable web']);
    expect(r.out).toEqual(['OK', 'ERROR: nope', 'ERROR: Usage: {ENABLE|DISABLE} <service>', "ERROR: service 'other' does not exist"]);
  });

  test("SHUTDOWN: immediate without a word, graceful with OK (and an optional timeout); both close the connection", async () => {
    const calls: string[] = [];
    const target = recordingTarget(calls);
    const session = newSession();
    expect(await runLine(target, session, 'shutdown')).toEqual({ lines: [], close: true });
    expect(await runLine(target, session, 'SHUTDOWN GRACEFUL 30')).toEqual({ lines: ['OK'], close: true });
    expect(await runLine(target, session, 'shutdown now')).toEqual({ lines: ["ERROR: Invalid syntax to 'shutdown' command"] });
    expect(calls).toEqual(['shutdown false null', 'shutdown true 30']);
  });

  test('reports end with a dot line; backends are sorted; node defaults to port 80', async () => {
    const r = await run('backends', 'uptime', 'node 10.0.0.1');
    expect(r.out).toEqual(['127.0.0.1:1 3', '127.0.0.1:2 1', '.', 'starttime 100', 'uptime 60', 'version 1.80', '.', '.']);
    expect(r.calls).toEqual(['node 10.0.0.1:80']);
  });

  test('pending, plugins, proc and fd print as Perlbal lays them out', async () => {
    const r = await run('pending', 'plugins', 'proc', 'fd', 'proc now');
    expect(r.out).toEqual([
      'api 10.0.0.9:80 1',
      'web 10.0.0.2:80 3',
      '.',
      'web Vhosts AccessControl',
      '.',
      'time: 160',
      'pid: 42',
      'utime: 1.25 (+0.5)',
      'stime: 0.125 (+0)',
      'reqs: 7 (+2)',
      '.',
      'ERROR: This command is not available unless BSD::Resource is installed',
      "ERROR: The 'proc' command takes no arguments",
    ]);
  });

  test('Perlbal commands tsbal does not run live, and internals it lacks, say so; unknown words get Perlbal’s text', async () => {
    const r = await run('create service x', 'socks', 'crash', '!!');
    expect(r.out).toEqual([
      "ERROR: tsbal does not take 'create' on the management port; change perlbal.conf and restart",
      "ERROR: 'socks' reports Perlbal internals that tsbal does not have",
      'ERROR: unknown command: crash',
      'ERROR: invalid command',
    ]);
  });
});

describe('SET on a running service', () => {
  const opts = reverseProxyOptions(serviceModel('web', 'p'), [poolModel('p', [8080])]);

  test('a live key takes its typed value', () => {
    const r = setLiveOption('reverse_proxy', opts, 'connect_timeout', '250ms');
    expect(r.kind === 'ok' && r.opts.connectTimeoutMs).toBe(250);
    const b = setLiveOption('reverse_proxy', opts, 'persist_backend', 'yes');
    expect(b.kind === 'ok' && b.opts.persistBackend).toBe(true);
  });

  test("Perlbal's texts for unknown keys, bad values and keys of another role; tsbal's for keys that need a restart", () => {
    expect(setLiveOption('reverse_proxy', opts, 'bogus', '1')).toEqual({ kind: 'error', message: "Unknown service parameter 'bogus'" });
    expect(setLiveOption('reverse_proxy', opts, 'max_backend_uses', 'x')).toEqual({ kind: 'error', message: "Expecting integer value for parameter 'max_backend_uses'" });
    expect(setLiveOption('selector', opts, 'persist_backend', 'on')).toEqual({ kind: 'error', message: "The 'persist_backend' option can only be set on a 'reverse_proxy' service" });
    const listen = setLiveOption('reverse_proxy', opts, 'listen', '127.0.0.1:1');
    expect(listen.kind === 'error' && listen.message).toStartWith("tsbal cannot change 'listen' on a running service");
  });
});
