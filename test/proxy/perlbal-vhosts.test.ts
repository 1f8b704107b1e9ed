// Vhost selection, differentially: the reference's vhosts table (4.2) through real Perlbal 1.80 and tsbal.
// tsbal matches Host case-insensitively (docs/compat.md: Perlbal's case-sensitive match is a bug); every other
// row must route the same way.
import { afterAll, describe, expect } from 'bun:test';
import { header } from '../harness/httpwire.ts';
import { LOOPBACK } from '../harness/ports.ts';
import { connectRaw, describeOutcome } from '../harness/rawclient.ts';
import { KINDS, type ProxyKind, type Rig, lazyRigs, observe, startRigWithConf, testFor } from './diffkit.ts';

function vhostsConf(listenPort: number, [b1, b2]: number[]): string {
  const service = (name: string, pool: string): string =>
    `CREATE SERVICE ${name}\n  SET role = reverse_proxy\n  SET pool = ${pool}\n  SET persist_client = on\n` +
    `  SET persist_backend = on\n  SET verify_backend = on\nENABLE ${name}\n`;
  return `LOAD vhosts
CREATE POOL p1
  POOL p1 ADD ${LOOPBACK}:${b1}
CREATE POOL p2
  POOL p2 ADD ${LOOPBACK}:${b2}
${service('balancer1', 'p1')}
${service('balancer2', 'p2')}
CREATE SERVICE selector
  SET listen = ${LOOPBACK}:${listenPort}
  SET role = selector
  SET plugins = vhosts
  SET persist_client = on
  VHOST *.site.com = balancer1
  VHOST othersite.com = balancer2
  VHOST default = balancer2
ENABLE selector
`;
}

type Route = 'b1' | 'b2' | '404';

/** Reference 4.2, observed with Perlbal; `tsbal` overrides where tsbal deliberately differs. */
const TABLE: Array<{ host: string | null; perlbal: Route; tsbal?: Route | 'skip' }> = [
  { host: 'site.com', perlbal: 'b1' },
  { host: 'www.site.com', perlbal: 'b1' },
  { host: 'a.b.site.com', perlbal: 'b1' },
  { host: 'www.site.com:8080', perlbal: 'b1' },
  { host: 'www.site.com.', perlbal: 'b1' },
  { host: 'WWW.SITE.COM', perlbal: '404', tsbal: 'b1' },
  { host: 'Site.com', perlbal: '404', tsbal: 'b1' },
  // Perlbal strips the trailing dot before the port, so the dot survives; not a behaviour anyone relies on.
  { host: 'www.site.com.:8080', perlbal: '404', tsbal: 'skip' },
  { host: 'othersite.com', perlbal: 'b2' },
  { host: 'www.othersite.com', perlbal: '404' },
  { host: 'default', perlbal: 'b2' },
  { host: 'unknown.com', perlbal: '404' },
  { host: '127.0.0.1:18080', perlbal: '404' },
  { host: 'site.com.evil.com', perlbal: '404' },
  { host: 'evilsite.com', perlbal: '404' },
  { host: null, perlbal: '404' },
];

const NOT_FOUND_BODY = '<h1>404 - Not Found</h1>\nNot Found (no configured vhost)';

async function route(rig: Rig, host: string | null): Promise<string> {
  const request = host === null ? 'GET / HTTP/1.0\r\n\r\n' : `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
  const { outcome } = await observe(rig, request, { timeoutMs: 3000 });
  if (outcome.kind !== 'response') return describeOutcome(outcome);
  const { status, headers } = { status: outcome.response.status, headers: outcome.response.head.headers };
  if (status === 404) {
    if (outcome.response.body.toString() !== NOT_FOUND_BODY) return `404 with body ${outcome.response.body}`;
    return '404';
  }
  return status === 200 ? header(headers, 'x-backend') ?? 'no X-Backend' : `status ${status}`;
}

const startVhostsRig = (kind: ProxyKind): Promise<Rig> => startRigWithConf(kind, vhostsConf, [{ name: 'b1' }, { name: 'b2' }]);

describe('vhosts selector (reference 4.2)', () => {
  const rigs = lazyRigs(startVhostsRig);
  afterAll(() => rigs.stopAll());

  for (const kind of KINDS) {
    const testKind = testFor(kind);
    testKind(`${kind}: routes each Host as the table says (wildcards cover the bare domain and any depth; port and one trailing dot ignored)`, async () => {
      const rig = await rigs.get(kind);
      const rows = TABLE.filter((row) => kind === 'perlbal' || row.tsbal !== 'skip');
      const expected = rows.map((row) => `${row.host ?? '(no Host)'} -> ${kind === 'tsbal' ? row.tsbal ?? row.perlbal : row.perlbal}`);
      const actual: string[] = [];
      for (const row of rows) actual.push(`${row.host ?? '(no Host)'} -> ${await route(rig, row.host)}`);
      expect(actual).toEqual(expected);
    });

    testKind(`${kind}: each request on a kept-alive client connection is routed again`, async () => {
      const rig: Rig = await rigs.get(kind as ProxyKind);
      const conn = await connectRaw(rig.proxy.port);
      try {
        const routes: string[] = [];
        for (const host of ['www.site.com', 'othersite.com', 'www.site.com']) {
          conn.send(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
          const outcome = await conn.read({ timeoutMs: 3000 });
          routes.push(outcome.kind === 'response' ? header(outcome.response.head.headers, 'x-backend') ?? '?' : describeOutcome(outcome));
        }
        expect(routes).toEqual(['b1', 'b2', 'b1']);
      } finally {
        conn.close();
      }
    });
  }
});
