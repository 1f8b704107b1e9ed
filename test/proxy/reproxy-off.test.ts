// With enable_reproxy off, a backend's X-Reproxy-* instructions must not reach a client (Perlbal with reproxy off
// passes them on, internal paths included: a deliberate difference, docs/compat.md).
import { afterAll, describe, expect, test } from 'bun:test';
import { LOOPBACK } from '../harness/ports.ts';
import { type Rig, observe, startRigWithConf, TSBAL_RUNS } from './diffkit.ts';
import { parsePerlbalConfig } from '../../src/config/perlbal.ts';
import { runRefusals } from '../../src/proxy/roles.ts';

let rig: Rig | null = null;
const body = 'primary';
const reply = () => ({
  bytes:
    'HTTP/1.1 200 OK\r\nX-Reproxy-URL: http://10.0.0.9/secret/a.jpg\r\nX-REPROXY-FILE: /var/data/a.jpg\r\n' +
    'x-reproxy-cache-for: 60; Content-Type\r\nX-Reproxy-Expected-Size: 7\r\nX-Reproxy-Service: files\r\nX-Other: kept\r\n' +
    `Content-Length: ${body.length}\r\n\r\n${body}`,
});

describe('with reproxy off', () => {
  afterAll(async () => {
    await rig?.stop();
  });
  (TSBAL_RUNS ? test : test.todo)('no X-Reproxy-* field of a backend response reaches the client; the rest does', async () => {
    rig = await startRigWithConf(
      'tsbal',
      (port, [backend]) => `CREATE POOL p\n  POOL p ADD ${LOOPBACK}:${backend}\nCREATE SERVICE s\n  SET listen = ${LOOPBACK}:${port}\n  SET role = reverse_proxy\n  SET pool = p\nENABLE s\n`,
      [{ name: 'b1', reply }],
    );
    const { outcome } = await observe(rig, 'GET /a.jpg HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(outcome.kind).toBe('response');
    if (outcome.kind !== 'response') return;
    const names = outcome.response.head.headers.map(([n]) => n.toLowerCase());
    expect(names.filter((n) => n.startsWith('x-reproxy'))).toEqual([]);
    expect(names).toContain('x-other');
    expect(outcome.response.body.toString()).toBe(body);
  });
});

describe('enable_reproxy = on', () => {
  test('is accepted by check and run alike (the refusal is gone)', () => {
    const cfg = parsePerlbalConfig('CREATE POOL p\nCREATE SERVICE s\n  SET role = reverse_proxy\n  SET listen = 127.0.0.1:8080\n  SET pool = p\n  SET enable_reproxy = on\nENABLE s\n', { file: '/r.conf' });
    expect(runRefusals(cfg.services)).toEqual([]);
  });
});
