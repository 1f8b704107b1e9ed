// The pure half of reload: old config + new config → which listeners stay, which are bound or closed, which services
// and backends come and go, and the one-line summary.
import { describe, expect, test } from 'bun:test';
import type { PerlbalConfig } from '../../src/config/model.ts';
import { planReload, serviceShapes, summarizePlan } from '../../src/proxy/reload-plan.ts';
import { configModel, poolModel, serviceModel } from './helpers.ts';

const at = (port: number) => ({ listen: { host: '127.0.0.1', port } });

function conf(services: Parameters<typeof serviceModel>[], pools: Array<[string, number[]]>): PerlbalConfig {
  return configModel(
    services.map((a) => serviceModel(...a)),
    pools.map(([name, ports]) => poolModel(name, ports)),
  );
}

const plan = (a: PerlbalConfig, b: PerlbalConfig) => planReload(serviceShapes(a), serviceShapes(b));

describe('reload plan', () => {
  const base = conf([['web', 'p', {}, at(8080)]], [['p', [81, 82]]]);

  test('the same config again plans nothing and keeps every listener', () => {
    const p = plan(base, base);
    expect(p).toEqual({ added: [], removed: [], changed: [], listeners: [{ kind: 'keep', address: '127.0.0.1:8080', from: 'web', to: 'web' }] });
    expect(summarizePlan(p)).toBe('no changes');
  });

  test('moving a line (a different source location) is not a change', () => {
    const moved = conf([['web', 'p', {}, { ...at(8080), loc: { file: 'x.conf', line: 40 } }]], [['p', [81, 82]]]);
    expect(plan(base, moved).changed).toEqual([]);
  });

  test('pool members added and removed are named per service, the listener is kept', () => {
    const next = conf([['web', 'p', {}, at(8080)]], [['p', [82, 83]]]);
    const p = plan(base, next);
    expect(p.changed).toEqual([{ name: 'web', settings: [], backendsAdded: ['127.0.0.1:83'], backendsRemoved: ['127.0.0.1:81'] }]);
    expect(p.listeners).toEqual([{ kind: 'keep', address: '127.0.0.1:8080', from: 'web', to: 'web' }]);
    expect(summarizePlan(p)).toBe('services ~web (backends +127.0.0.1:83 -127.0.0.1:81); listeners kept 1');
  });

  test('a changed option is named by its Perlbal name', () => {
    const next = conf([['web', 'p', { persist_backend: true, max_retries: 5 }, at(8080)]], [['p', [81, 82]]]);
    expect(plan(base, next).changed).toEqual([{ name: 'web', settings: ['persist_backend', 'max_retries'], backendsAdded: [], backendsRemoved: [] }]);
  });

  test('a moved listen address binds the new one and closes the old one', () => {
    const next = conf([['web', 'p', {}, at(9090)]], [['p', [81, 82]]]);
    const p = plan(base, next);
    expect(p.listeners).toEqual([
      { kind: 'bind', address: '127.0.0.1:9090', service: 'web' },
      { kind: 'close', address: '127.0.0.1:8080', service: 'web' },
    ]);
    expect(p.changed[0]!.settings).toEqual(['listen']);
  });

  test('a renamed service on the same address keeps the socket (never close and re-bind a live port)', () => {
    const next = conf([['www', 'p', {}, at(8080)]], [['p', [81, 82]]]);
    const p = plan(base, next);
    expect([p.added, p.removed]).toEqual([['www'], ['web']]);
    expect(p.listeners).toEqual([{ kind: 'keep', address: '127.0.0.1:8080', from: 'web', to: 'www' }]);
    expect(summarizePlan(p)).toBe('services +www -web; listeners 127.0.0.1:8080 web→www kept 1');
  });

  test('two services swapping addresses both keep their sockets', () => {
    const old = conf([['a', 'p', {}, at(1)], ['b', 'p', {}, at(2)]], [['p', [81]]]);
    const next = conf([['a', 'p', {}, at(2)], ['b', 'p', {}, at(1)]], [['p', [81]]]);
    expect(plan(old, next).listeners).toEqual([
      { kind: 'keep', address: '127.0.0.1:2', from: 'b', to: 'a' },
      { kind: 'keep', address: '127.0.0.1:1', from: 'a', to: 'b' },
    ]);
  });

  test('port 0 is kept only by the same service, since each port-0 listen got its own port', () => {
    const old = conf([['a', 'p', {}, at(0)]], [['p', [81]]]);
    const renamed = conf([['b', 'p', {}, at(0)]], [['p', [81]]]);
    expect(plan(old, old).listeners).toEqual([{ kind: 'keep', address: '127.0.0.1:0', from: 'a', to: 'a' }]);
    expect(plan(old, renamed).listeners).toEqual([
      { kind: 'bind', address: '127.0.0.1:0', service: 'b' },
      { kind: 'close', address: '127.0.0.1:0', service: 'a' },
    ]);
  });

  test('an added and a removed service bind and close their addresses', () => {
    const next = conf([['web', 'p', {}, at(8080)], ['api', 'p', {}, at(8081)]], [['p', [81, 82]]]);
    const p = plan(next, base);
    expect([p.added, p.removed]).toEqual([[], ['api']]);
    expect(p.listeners).toContainEqual({ kind: 'close', address: '127.0.0.1:8081', service: 'api' });
    expect(plan(base, next).listeners).toContainEqual({ kind: 'bind', address: '127.0.0.1:8081', service: 'api' });
  });

  test('a disabled service is not served, so disabling one removes it', () => {
    const next = conf([['web', 'p', {}, { ...at(8080), enabled: false }]], [['p', [81, 82]]]);
    const p = plan(base, next);
    expect([p.removed, p.listeners]).toEqual([['web'], [{ kind: 'close', address: '127.0.0.1:8080', service: 'web' }]]);
  });

  test('HEADER rules, the pool and its balance method count as settings', () => {
    const old = conf([['web', 'p', {}, at(8080)]], [['p', [81]], ['q', [81]]]);
    const next: PerlbalConfig = {
      ...conf([['web', 'q', {}, { ...at(8080), headers: [{ op: 'insert', name: 'x-a', value: '1', loc: { file: 'f', line: 1 } }] }]], [['p', [81]], ['q', [81]]]),
    };
    next.pools[1]!.balance_method = 'roundrobin';
    expect(plan(old, next).changed).toEqual([{ name: 'web', settings: ['pool', 'balance_method', 'HEADER'], backendsAdded: [], backendsRemoved: [] }]);
  });
});
