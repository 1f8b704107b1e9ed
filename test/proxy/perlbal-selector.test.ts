// The selector role beyond the vhosts table, differentially against Perlbal 1.80: what the backend receives through
// a selector (both services' HEADER rules, XFF), whose settings decide keep-alive (the selector's persist_client, the
// target's Keep-Alive timeout), targets that are neither enabled nor listening, vpaths with default_service, the
// selector's own 404 pages, and AccessControl on a selector and on its target.
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { LOOPBACK } from '../harness/ports.ts';
import { exchange } from '../harness/rawclient.ts';
import { KINDS, type MultiRig, type ProxyKind, comparableAnswer, comparableRequest, startMultiRig, testFor } from './diffkit.ts';

const HAVE_PERLBAL = existsSync('/usr/share/perl5/Perlbal.pm');

function conf([vh, vp, vpNoDefault]: number[], [b1, b2]: number[]): string {
  return `LOAD vhosts
LOAD vpaths
LOAD AccessControl
CREATE POOL p1
  POOL p1 ADD ${LOOPBACK}:${b1}
CREATE POOL p2
  POOL p2 ADD ${LOOPBACK}:${b2}
CREATE SERVICE web1
  SET role = reverse_proxy
  SET pool = p1
  SET persist_client_idle_timeout = 7
HEADER web1 INSERT X-Target: web1
CREATE SERVICE web2
  SET role = reverse_proxy
  SET pool = p2
  SET persist_client = on
  SET plugins = accesscontrol
  ACCESS DENY ip 127.0.0.4
ENABLE web2
CREATE SERVICE vh
  SET listen = ${LOOPBACK}:${vh}
  SET role = selector
  SET persist_client = on
  SET plugins = vhosts
  VHOST a.test = web1
  VHOST *.b.test = web2
  VHOST missing.test = nosuch
  VHOST c.test;using:a.test = web1
HEADER vh INSERT X-Selector: vh
HEADER vh REMOVE X-Drop
ENABLE vh
CREATE SERVICE vp
  SET listen = ${LOOPBACK}:${vp}
  SET role = selector
  SET plugins = accesscontrol, vpaths
  SET default_service = web2
  ACCESS DENY ip 127.0.0.3
  VPATH ^/one = web1
  VPATH ^/two\\?x = web1
  VPATH ^/gone = nosuch
ENABLE vp
CREATE SERVICE vpnodefault
  SET listen = ${LOOPBACK}:${vpNoDefault}
  SET role = selector
  SET plugins = vpaths
  VPATH ^/one = web1
ENABLE vpnodefault
`;
}

const rigs = new Map<ProxyKind, Promise<MultiRig>>();
const rigFor = (kind: ProxyKind): Promise<MultiRig> => {
  let rig = rigs.get(kind);
  if (!rig) rigs.set(kind, (rig = startMultiRig(kind, 3, conf, [{ name: 'b1' }, { name: 'b2' }])));
  return rig;
};

/** The answer, with connection handling, then what each backend received (reduced to what both must send). */
async function ask(kind: ProxyKind, service: number, request: string, from = LOOPBACK): Promise<string[]> {
  const rig = await rigFor(kind);
  const before = rig.backends.map((b) => b.proxied().length);
  const method = request.slice(0, request.indexOf(' '));
  const { outcome, closedAfter } = await exchange(rig.ports[service]!, request, { method, localAddress: from, timeoutMs: 3000 });
  const seen = rig.backends.flatMap((b, i) => b.proxied().slice(before[i]).map((r) => `${b.name}: ${comparableRequest(r).join(' | ')}`));
  return [...comparableAnswer(outcome, closedAfter), ...seen];
}

const get = (host: string, path = '/p', extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;

/** [what it pins, service (0 vh, 1 vp, 2 vpnodefault), request, source address, expected status]. */
const CASES: Array<[string, number, string, string, number]> = [
  [
    "a target that is neither enabled nor listening serves; both services' HEADER rules apply; the selector's persist_client and the target's Keep-Alive timeout",
    0, get('a.test', '/p?q=1', 'X-Drop: 1\r\nX-Forwarded-For: 9.9.9.9\r\n'), LOOPBACK, 200,
  ],
  ['a wildcard vhost to another pool', 0, get('www.b.test'), LOOPBACK, 200],
  ["the selector's 404 page when no vhost matches, kept alive", 0, get('nowhere.test'), LOOPBACK, 404],
  ['a vhost whose target does not exist falls through to the 404', 0, get('missing.test'), LOOPBACK, 404],
  ['an HTTP/1.0 request without Host: the 404, closed', 0, 'GET / HTTP/1.0\r\n\r\n', LOOPBACK, 404],
  ['/__using/<host>/<word> twiddle hands over with Host rewritten', 0, get('c.test', '/__using/a.test/x'), LOOPBACK, 200],
  ['the twiddle without a configured pair is a 404', 0, get('b.test', '/__using/a.test/x'), LOOPBACK, 404],
  ["AccessControl on the target denies after the selector chose it", 0, get('b.test'), '127.0.0.4', 403],
  ['vpaths: the first matching regex', 1, get('x', '/one/two'), LOOPBACK, 200],
  ['vpaths match the query string too', 1, get('x', '/two?x=1'), LOOPBACK, 200],
  ['vpaths: no match goes to default_service', 1, get('x', '/elsewhere'), LOOPBACK, 200],
  ['vpaths: a target that does not exist is a 404 naming it', 1, get('x', '/gone'), LOOPBACK, 404],
  ["AccessControl on the selector denies before selection", 1, get('x', '/one'), '127.0.0.3', 403],
  ['a selector without persist_client closes after the response', 1, get('x', '/one'), LOOPBACK, 200],
];

describe('selector role matches Perlbal 1.80', () => {
  afterAll(async () => {
    const all = await Promise.allSettled(rigs.values());
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
  });

  const run = HAVE_PERLBAL ? testFor('tsbal') : test.skip;
  for (const [name, service, request, from, status] of CASES) {
    run(name, async () => {
      const [perlbal, tsbal] = await Promise.all(KINDS.map((k) => ask(k, service, request, from)));
      expect(perlbal![0]).toStartWith(`${status} `);
      expect(tsbal).toEqual(perlbal!);
    });
  }

  run('documented difference: vpaths with no match and no default_service answers 404 at once (Perlbal leaves the client hanging)', async () => {
    const request = get('x', '/nomatch');
    const [perlbal, tsbal] = await Promise.all(
      KINDS.map(async (kind) => {
        const rig = await rigFor(kind);
        return (await exchange(rig.ports[2]!, request, { timeoutMs: kind === 'perlbal' ? 1000 : 3000 })).outcome;
      }),
    );
    expect(perlbal!.kind).toBe('timeout');
    expect(comparableAnswer(tsbal!, false).slice(0, 5)).toEqual([
      '404 Not Found',
      'Content-Type: text/html',
      'Content-Length: 56',
      'Server: <proxy>',
      'body="<h1>404 - Not Found</h1>\\nNot Found (no configured vpath)"',
    ]);
  });
});
