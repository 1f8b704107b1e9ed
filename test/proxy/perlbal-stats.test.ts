// Stats and Highpri, differentially: the same requests through real Perlbal 1.80 and `tsbal run`, then the console's
// `stats`, `recent` and `patterns` compared (lines sorted where Perlbal walks a hash; `recent`'s seconds masked).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOOPBACK } from '../harness/ports.ts';
import { exchange } from '../harness/rawclient.ts';
import { rawRequest } from './helpers.ts';
import { type MultiRig, type ProxyKind, startMultiRig, testFor } from './diffkit.ts';

const HAVE_PERLBAL = await Bun.file('/usr/share/perl5/Perlbal.pm').exists();
let docroot = '';

const conf = ([proxy, web, mgmt]: number[], backend: number): string => `LOAD Stats
LOAD Highpri
CREATE POOL p
  POOL p ADD ${LOOPBACK}:${backend}
CREATE SERVICE proxy
  SET listen = ${LOOPBACK}:${proxy}
  SET role = reverse_proxy
  SET pool = p
  SET plugins = stats, highpri
  SET proxy.highpri.host_pattern = ^vip\\.
ENABLE proxy
CREATE SERVICE web
  SET listen = ${LOOPBACK}:${web}
  SET role = web_server
  SET docroot = ${docroot}
  SET plugins = stats
ENABLE web
CREATE SERVICE mgmt
  SET listen = ${LOOPBACK}:${mgmt}
  SET role = management
ENABLE mgmt
`;

async function run(kind: ProxyKind): Promise<string[]> {
  const rig: MultiRig = await startMultiRig(kind, 3, (ports, [backend]) => conf(ports, backend!), [{ name: 'b1' }]);
  try {
    const get = async (port: number, path: string, host = 'x.test') => {
      const { outcome } = await exchange(port, `GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`, { method: 'GET', timeoutMs: 3000 });
      return outcome.kind === 'response' ? outcome.response.head.startLine.split(' ')[1] : outcome.kind;
    };
    const statuses = [
      await get(rig.ports[0]!, '/a'),
      await get(rig.ports[0]!, '/login.bml'),
      await get(rig.ports[0]!, '/b', 'vip.example.com'),
      await get(rig.ports[1]!, '/f.txt'),
      await get(rig.ports[1]!, '/missing'),
    ];
    const r = await rawRequest(rig.ports[2]!, ['stats', 'recent', 'patterns', 'quit'].map((l) => `${l}\r\n`).join(''), { timeoutMs: 3000 });
    const [stats = '', recent = '', patterns = ''] = r.data.split(/^\.\r?\n/m);
    const lines = (t: string) => t.split(/\r?\n/).filter((l) => l !== '');
    return [
      `statuses ${statuses.join(' ')}`,
      ...lines(stats).sort(),
      '--',
      ...lines(recent).map((l) => l.replace(/^(\w+) \d+\.\d{4} /, '$1 <secs> ')).sort(),
      '--',
      ...lines(patterns),
    ];
  } finally {
    await rig.stop();
  }
}

describe('Stats and Highpri match Perlbal 1.80', () => {
  beforeAll(() => {
    docroot = mkdtempSync(join(tmpdir(), 'tsbal-stats-'));
    writeFileSync(join(docroot, 'f.txt'), 'file\n');
  });
  afterAll(() => rmSync(docroot, { recursive: true, force: true }));

  (HAVE_PERLBAL ? testFor('tsbal') : test.skip)('stats counts proxied (normal and high priority) and web requests; recent and patterns list them', async () => {
    const [perlbal, tsbal] = await Promise.all([run('perlbal'), run('tsbal')]);
    expect(perlbal).toContain('proxy           proxy_requests_highpri               2');
    expect(tsbal).toEqual(perlbal);
  }, 30_000);
});
