// The announce decision, without sockets: every reason, both `anycast_require` settings, drain and hold first.
import { describe, expect, test } from 'bun:test';
import { decideAnnounce, reasonWords, type ServiceOnVip } from '../../src/anycast/decide.ts';

const svc = (name: string, over: Partial<ServiceOnVip> = {}): ServiceOnVip => ({ name, listening: true, needsBackends: true, healthy: 2, total: 2, ...over });
const decide = (services: ServiceOnVip[], require: 'all' | 'any' = 'all', extra: { draining?: boolean; heldBy?: string | null } = {}) =>
  decideAnnounce({ services, require, draining: extra.draining ?? false, heldBy: extra.heldBy ?? null });

describe('decideAnnounce', () => {
  test('announces while every service on the VIP listens and has a healthy backend', () => {
    const d = decide([svc('web'), svc('api')]);
    expect(d.announce).toBe(true);
    expect(reasonWords(d.reason)).toBe('services web, api serving');
  });

  test('all: one service without a healthy backend withdraws, naming it and the count', () => {
    const d = decide([svc('web'), svc('api', { healthy: 0, total: 3 })]);
    expect(d.announce).toBe(false);
    expect(reasonWords(d.reason)).toBe('service api has no healthy backend (0 of 3)');
  });

  test('all: a service whose listener is not bound withdraws', () => {
    expect(reasonWords(decide([svc('web', { listening: false })]).reason)).toBe('service web is not listening');
  });

  test('a service with an empty pool says so', () => {
    expect(reasonWords(decide([svc('web', { healthy: 0, total: 0 })]).reason)).toBe('service web has no backends');
  });

  test('a web_server or management service needs no backends', () => {
    expect(decide([svc('static', { needsBackends: false, healthy: 0, total: 0 })]).announce).toBe(true);
  });

  test('any: one serving service is enough, and only the serving ones are named', () => {
    const d = decide([svc('web', { healthy: 0 }), svc('api')], 'any');
    expect(d.announce).toBe(true);
    expect(reasonWords(d.reason)).toBe('service api serving');
  });

  test('any: none serving withdraws; with one service the reason is that service\'s', () => {
    expect(reasonWords(decide([svc('web', { healthy: 0 }), svc('api', { listening: false })], 'any').reason)).toBe('no service on the VIP can serve (web, api)');
    expect(reasonWords(decide([svc('web', { healthy: 0, total: 1 })], 'any').reason)).toBe('service web has no healthy backend (0 of 1)');
  });

  test('no service on the VIP: never announced', () => {
    expect(decide([])).toEqual({ announce: false, reason: { kind: 'no-service' } });
  });

  test('a planned stop withdraws a healthy node, before an operator hold', () => {
    expect(decide([svc('web')], 'all', { draining: true, heldBy: 'tsbal anycast drain' }).reason.kind).toBe('draining');
  });

  test('an operator hold withdraws a healthy node until resumed', () => {
    const d = decide([svc('web')], 'all', { heldBy: 'tsbal anycast drain' });
    expect(d.announce).toBe(false);
    expect(reasonWords(d.reason)).toBe('drained by tsbal anycast drain; tsbal anycast resume announces again');
  });
});
