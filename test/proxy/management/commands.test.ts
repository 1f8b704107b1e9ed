// Line handling of the console without sockets: Perlbal's line preparation, the quit rule, argument regexes and
// error texts, and which calls reach the running proxy. The target is a record of calls, not a proxy.
import { describe, expect, test } from 'bun:test';
import { isQuit, newSession, prepare, runLine, type ManagementTarget } from '../../../src/proxy/management/commands.ts';

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
    configure: async (line, ctx) => {
      calls.push(`configure ${line} (context ${ctx.lastCreated})`);
      if (/nope/.test(line)) return { kind: 'error', messages: ['nope', 'twice'] };
      if (/^use /i.test(line)) ctx.lastCreated = line.slice(4);
      return { kind: 'ok' };
    },
    dumpconfig: () => ['CREATE SERVICE web', 'ENABLE web', ''],
    status: () => ({ version: 'test', pid: 1, startedEpochSec: 0, uptimeSec: 0, services: [] }),
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

  test('config commands go to the configurer as written, with the connection’s context; its errors print as ERROR lines', async () => {
    const r = await run('USE web', 'SET Persist_Client = On', 'enable nope', 'vhost a = b', 'REDIRECT HOST a b');
    expect(r.calls).toEqual([
      'configure USE web (context null)',
      'configure SET Persist_Client = On (context web)',
      'configure enable nope (context web)',
      'configure vhost a = b (context web)',
      'configure REDIRECT HOST a b (context web)',
    ]);
    // Perlbal's Redirect plugin prints nothing, not even OK.
    expect(r.out).toEqual(['OK', 'OK', 'ERROR: nope', 'ERROR: twice', 'OK']);
  });

  test('dumpconfig ends with OK, not a dot, and takes no arguments', async () => {
    const r = await run('dumpconfig', 'dumpconfig x');
    expect(r.out).toEqual(['CREATE SERVICE web', 'ENABLE web', '', 'OK', "ERROR: The 'dumpconfig' command takes no arguments"]);
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
    const r = await run('mime list', 'socks', 'crash', '!!');
    expect(r.out).toEqual([
      "ERROR: tsbal does not take 'mime' on the management port",
      "ERROR: 'socks' reports Perlbal internals that tsbal does not have",
      'ERROR: unknown command: crash',
      'ERROR: invalid command',
    ]);
  });
});

