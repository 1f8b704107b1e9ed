// SERVER workers = auto|N: how many worker processes, from the setting, the cores and the runtime (pure).
import { describe, expect, test } from 'bun:test';
import { hasReusePort, perProcessLimits, planWorkers, portZeroServices, workersChangeNote, workersEnvProblem, workersSetting } from '../../../src/proxy/workers/count.ts';
import { memoryConfigFs, readPerlbalConfig } from '../../../src/config/perlbal.ts';

const NODE22 = { node: '22.23.3' };
const facts = (over: Partial<Parameters<typeof planWorkers>[1]> = {}) => ({ cores: 4, versions: NODE22, portZero: [], ...over });

describe('planWorkers', () => {
  test('auto is one worker per core; a number is that many; 1 is the single process with nothing to say', () => {
    expect(planWorkers(workersSetting(undefined), facts())).toEqual({ count: 4, note: null });
    expect(planWorkers(workersSetting('auto'), facts({ cores: 2 }))).toEqual({ count: 2, note: null });
    expect(planWorkers(workersSetting(3), facts())).toEqual({ count: 3, note: null });
    expect(planWorkers(workersSetting(1), facts())).toEqual({ count: 1, note: null });
    expect(planWorkers(workersSetting('auto'), facts({ cores: 1 }))).toEqual({ count: 1, note: null });
  });

  test('TSBAL_WORKERS is the default where perlbal.conf has no SERVER workers line; the line wins', () => {
    expect(workersSetting(undefined, '1')).toEqual({ kind: 'count', n: 1 });
    expect(workersSetting(undefined, 'auto')).toEqual({ kind: 'auto' });
    expect(workersSetting(undefined, 'lots')).toEqual({ kind: 'auto' });
    expect(workersSetting(2, '1')).toEqual({ kind: 'count', n: 2 });
    expect(workersSetting('auto', '1')).toEqual({ kind: 'auto' });
  });

  test('a runtime without SO_REUSEPORT listeners (Node 20) runs one process and says why', () => {
    const plan = planWorkers(workersSetting('auto'), facts({ versions: { node: '20.20.2' } }));
    expect(plan.count).toBe(1);
    expect(plan.note).toBe('workers = auto (4 cores): Node 20.20.2 has no SO_REUSEPORT listeners (Node >= 22.12 or Bun do); running in one process');
  });

  test('a service on port 0 runs one process (each worker would bind another port)', () => {
    const plan = planWorkers(workersSetting(2), facts({ portZero: ['web'] }));
    expect(plan).toEqual({ count: 1, note: 'workers = 2: service web listens on port 0 (each worker would get another port); running in one process' });
  });
});

describe('hasReusePort', () => {
  test('Node 22.12+, 23.1+ and Bun have it; Node 20, 22.11, 23.0 and Deno do not', () => {
    expect([
      hasReusePort({ node: '22.12.0' }),
      hasReusePort({ node: '22.23.3' }),
      hasReusePort({ node: '23.1.0' }),
      hasReusePort({ node: '24.0.0' }),
      hasReusePort({ node: '1.4.5', bun: '1.4.5' }),
    ]).toEqual([true, true, true, true, true]);
    expect([hasReusePort({ node: '20.20.2' }), hasReusePort({ node: '22.11.0' }), hasReusePort({ node: '23.0.0' }), hasReusePort({ deno: '2.0.0' })]).toEqual([false, false, false, false]);
  });
});

describe('SERVER workers in perlbal.conf', () => {
  const read = (text: string) => readPerlbalConfig(text, { file: 'p.conf', fs: memoryConfigFs({}, ['/tmp']) });
  test('auto and a number are kept in the model; port-0 services are named', () => {
    const conf = read('SERVER workers = 2\nCREATE POOL p\nCREATE SERVICE web\n  SET role = reverse_proxy\n  SET listen = 127.0.0.1:0\n  SET pool = p\nENABLE web\n');
    expect(conf.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(conf.value?.server.workers).toBe(2);
    expect(read('SERVER workers = AUTO\n').value?.server.workers).toBe('auto');
    expect(portZeroServices(conf.value!)).toEqual(['web']);
  });
});

describe('limits one process keeps', () => {
  const read = (text: string) => readPerlbalConfig(text, { file: 'p.conf', fs: memoryConfigFs({}, ['/tmp']) }).value!;
  test("a pool's max_conns and the Throttle plugin keep auto in one process; a number of workers is honoured with a warning", () => {
    const conf = read(
      'LOAD Throttle\nCREATE POOL p\n  SET max_conns = 4\nCREATE POOL q\nCREATE SERVICE web\n  SET role = reverse_proxy\n  SET listen = 127.0.0.1:8080\n  SET pool = p\n  SET plugins = Throttle\nENABLE web\n',
    );
    const limits = perProcessLimits(conf);
    expect(limits).toEqual(['pool p max_conns', 'service web plugin throttle']);
    expect(planWorkers(workersSetting('auto'), facts({ perProcess: limits }))).toEqual({
      count: 1,
      note: 'workers = auto (4 cores): pool p max_conns, service web plugin throttle would hold per worker process; running in one process (SERVER workers = N splits them)',
    });
    expect(planWorkers(workersSetting(2), facts({ perProcess: limits }))).toEqual({
      count: 2,
      note: null,
      warning: 'workers = 2: pool p max_conns, service web plugin throttle hold per worker process (up to 2× in all)',
    });
    expect(perProcessLimits(read('CREATE POOL p\n'))).toEqual([]);
  });
});

describe('workersChangeNote', () => {
  test('a reload that changes SERVER workers says the running count stays until a restart; unchanged says nothing', () => {
    expect(workersChangeNote(workersSetting(2), workersSetting(3), 2)).toBe(
      'reload: SERVER workers changed (2 -> 3); the process runs on with 2 worker processes: restart tsbal to apply it',
    );
    expect(workersChangeNote(workersSetting('auto'), workersSetting(1), 4)).toBe(
      'reload: SERVER workers changed (auto -> 1); the process runs on with 4 worker processes: restart tsbal to apply it',
    );
    expect(workersChangeNote(workersSetting(1), workersSetting('auto'), 1)).toContain('runs on with one process');
    expect(workersChangeNote(workersSetting('auto'), workersSetting(undefined), 2)).toBeNull();
    expect(workersChangeNote(workersSetting(2), workersSetting(2), 2)).toBeNull();
  });
});

describe('workersEnvProblem', () => {
  test('TSBAL_WORKERS that is not auto or 1..256 is named as ignored; unset and valid values say nothing', () => {
    expect(workersEnvProblem('0')).toBe('TSBAL_WORKERS=0 is not auto or 1..256: ignored (workers = auto unless SERVER workers says otherwise)');
    expect(workersEnvProblem('two')).toContain('TSBAL_WORKERS=two is not auto');
    expect(workersEnvProblem('257')).not.toBeNull();
    for (const ok of [undefined, 'auto', '1', '256']) expect(workersEnvProblem(ok)).toBeNull();
  });
});
