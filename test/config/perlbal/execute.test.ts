// The executor as the management port will drive it: one state for the process, one context per connection.
import { describe, expect, test } from 'bun:test';
import {
  createCommandContext, createPerlbalState, executeCommand, memoryConfigFs, perlbalSnapshot, runPerlbalConfig,
  type CommandEnv, type CommandHandler, type CommandResult, type PerlbalState,
} from '../../../src/config/perlbal.ts';

const env: CommandEnv = { env: {}, fs: memoryConfigFs({}), cwd: '/', interfaceAddress: () => null, includeStack: [] };

function session(state: PerlbalState, extraCommands?: Record<string, CommandHandler>) {
  const ctx = createCommandContext('management');
  let n = 0;
  return (line: string): CommandResult => executeCommand(state, line, ctx, { env, loc: { file: 'management', line: ++n }, ...(extraCommands ? { extraCommands } : {}) });
}

describe('executeCommand on the management port', () => {
  test('mutations change the running state the config file built', () => {
    const config = 'CREATE POOL backends\nPOOL backends ADD 127.0.0.1:18081\nCREATE SERVICE balancer\nSET role = reverse_proxy\nSET pool = backends\nSET listen = 127.0.0.1:0\nENABLE balancer\n';
    const { state, diagnostics } = runPerlbalConfig(config, { file: 'p.conf' });
    expect(diagnostics).toEqual([]);
    const run = session(state);
    expect(run('pool backends add 127.0.0.1:18082')).toEqual({ kind: 'ok' });
    expect(run('pool add backends 127.0.0.1')).toEqual({ kind: 'ok' });
    expect(run('set balancer.connect_ahead = 2')).toEqual({ kind: 'ok' });
    expect(state.pools.get('backends')!.nodes.map((n) => `${n.host}:${n.port}`)).toEqual(['127.0.0.1:18081', '127.0.0.1:18082', '127.0.0.1:80']);
    expect(state.services.get('balancer')!.options.connect_ahead).toBe(2);
    const snap = perlbalSnapshot(state, env, 'p.conf', []);
    expect(snap.pools[0]!.nodes).toHaveLength(3);
    state.pools.get('backends')!.nodes.pop();
    expect(snap.pools[0]!.nodes).toHaveLength(3);
  });

  test("errors come back as Perlbal's ERROR text; blank and comment lines print nothing", () => {
    const run = session(createPerlbalState());
    expect(run('frobnicate')).toMatchObject({ kind: 'error', message: 'unknown command: frobnicate' });
    expect(run('set balancer bogus = 1')).toMatchObject({ kind: 'error', message: "service/pool 'balancer' does not exist" });
    expect(run('')).toEqual({ kind: 'output', lines: [] });
    expect(run('# just a comment')).toEqual({ kind: 'output', lines: [] });
  });

  test('VERBOSE and the context belong to the connection', () => {
    const state = createPerlbalState();
    const a = createCommandContext('management');
    const b = createCommandContext('management');
    const exec = (ctx: typeof a, line: string) => executeCommand(state, line, ctx, { env, loc: { file: 'management', line: 1 } });
    expect(a.verbose).toBe(true);
    exec(a, 'verbose off');
    expect([a.verbose, b.verbose]).toEqual([false, true]);
    exec(a, 'create service s');
    expect(exec(b, 'set role = web_server')).toMatchObject({ kind: 'error', message: 'omitted service/pool name not implied from context' });
    expect(exec(a, 'set role = management')).toEqual({ kind: 'ok' });
  });

  test('report commands go to the handlers the management port supplies', () => {
    const { state } = runPerlbalConfig('CREATE SERVICE mgmt\nSET role = management\nSET listen = 127.0.0.1:0\nENABLE mgmt\n', { file: 'p.conf' });
    const show: CommandHandler = (x) => ({ kind: 'output', lines: [...x.state.services.values()].map((s) => `${s.name} ${s.enabled ? 'ENABLED' : 'DISABLED'}`) });
    const run = session(state, { show });
    expect(run('SHOW SERVICE')).toEqual({ kind: 'output', lines: ['mgmt ENABLED'] });
    expect(run('nodes')).toMatchObject({ kind: 'error', message: 'nodes is not available' });
    expect(run('shutdown')).toMatchObject({ kind: 'error' });
  });
});
