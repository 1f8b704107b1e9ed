// With enable_reproxy off, a backend's X-Reproxy-* instructions must not reach a client (Perlbal with reproxy off
// passes them on, internal paths included: a deliberate difference, docs/compat.md).
import { afterAll, describe, expect, test } from 'bun:test';
import { LOOPBACK } from '../harness/ports.ts';
import { type MultiRig, type Rig, observe, startMultiRig, startRigWithConf, TSBAL_RUNS } from './diffkit.ts';
import { rawRequest } from './helpers.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

describe('enable_reproxy set on the management console', () => {
  let multi: MultiRig | null = null;
  const dir = mkdtempSync(join(tmpdir(), 'tsbal-reproxy-live-'));
  const file = join(dir, 'f.txt');
  writeFileSync(file, 'from the file\n');
  afterAll(async () => {
    await multi?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  (TSBAL_RUNS ? test : test.todo)('takes effect for the next request, and off again drops the fields without acting', async () => {
    multi = await startMultiRig(
      'tsbal',
      2,
      ([port, mgmt], [backend]) =>
        `CREATE POOL p\n  POOL p ADD ${LOOPBACK}:${backend}\nCREATE SERVICE s\n  SET listen = ${LOOPBACK}:${port}\n  SET role = reverse_proxy\n  SET pool = p\nENABLE s\n` +
        `CREATE SERVICE mgmt\n  SET role = management\n  SET listen = ${LOOPBACK}:${mgmt}\nENABLE mgmt\n`,
      [{ name: 'b1', reply: () => ({ bytes: `HTTP/1.1 200 OK\r\nX-Reproxy-File: ${file}\r\nContent-Length: ${body.length}\r\n\r\n${body}` }) }],
    );
    const rig: Rig = { kind: 'tsbal', proxy: { ...multi.proxy, port: multi.ports[0]! }, backends: multi.backends, stop: multi.stop };
    const get = async (): Promise<string> => {
      const { outcome } = await observe(rig, 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
      if (outcome.kind !== 'response') return outcome.kind;
      const names = outcome.response.head.headers.map(([n]) => n.toLowerCase()).filter((n) => n.startsWith('x-reproxy'));
      return `${outcome.response.status} ${outcome.response.body.toString()} ${names.join(',')}`.trim();
    };
    const say = (line: string) => rawRequest(multi!.ports[1]!, `${line}\r\nquit\r\n`, { timeoutMs: 5000 });
    expect(await get()).toBe('200 primary');
    expect((await say('SET s.enable_reproxy = on')).data).toContain('OK');
    expect(await get()).toBe('200 from the file');
    expect((await say('SET s.enable_reproxy = off')).data).toContain('OK');
    expect(await get()).toBe('200 primary');
  });
});
