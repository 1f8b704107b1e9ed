// AccessControl and Redirect, differentially: one perlbal.conf through real Perlbal 1.80 and `tsbal run`, requests
// from different 127.0.0.x source addresses, and the answers compared byte for byte after removing only what
// docs/compat.md declares (the HTTP/1.1 status line, `Server: tsbal`, the 301 reason phrase).
// Perlbal's netmask rules need Net::Netmask, which Debian does not install: scripts/setup.sh unpacks it into
// node_modules/.cache/perl5 and only this test's Perlbal gets it (on PERL5LIB).
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { REPO_ROOT } from '../harness/cli.ts';
import { LOOPBACK } from '../harness/ports.ts';
import { connectRaw, exchange } from '../harness/rawclient.ts';
import { KINDS, type MultiRig, type ProxyKind, comparableAnswer, startMultiRig, testFor } from './diffkit.ts';

const HAVE_PERLBAL = existsSync('/usr/share/perl5/Perlbal.pm');
const NETMASK_LIB = `${REPO_ROOT}node_modules/.cache/perl5`;
const HAVE_NETMASK = existsSync(`${NETMASK_LIB}/Net/Netmask.pm`) || existsSync('/usr/share/perl5/Net/Netmask.pm');
if (HAVE_PERLBAL && !HAVE_NETMASK) console.warn('perlbal-access: no Net::Netmask (run scripts/setup.sh); Perlbal cases skipped');

/** Three services: address rules, redirects ahead of a deny-all policy, and rules on a trusted proxy's XFF. */
function conf([acl, redir, observed]: number[], backend: number): string {
  const service = (name: string, port: number, plugins: string, extra: string): string =>
    `CREATE SERVICE ${name}\n  SET listen = ${LOOPBACK}:${port}\n  SET role = reverse_proxy\n  SET pool = p\n` +
    `  SET persist_client = on\n  SET plugins = ${plugins}\n${extra}ENABLE ${name}\n`;
  return `LOAD AccessControl
LOAD Redirect
CREATE POOL p
  POOL p ADD ${LOOPBACK}:${backend}
${service('acl', acl!, 'accesscontrol', `  ACCESS POLICY deny
  ACCESS DENY ip 127.0.0.3
  ACCESS ALLOW netmask 127.0.0.0/30
  ACCESS QUEUE_LOW ip 127.0.0.9
  ACCESS ALLOW netmask 127.0.0.16/255.255.255.240
  ACCESS ALLOW ip 127.0.0.5
`)}
${service('redir', redir!, 'redirect, accesscontrol', `  REDIRECT HOST old.com new.example
  REDIRECT HOST *.wild.com www.wild.com
  ACCESS POLICY deny
`)}
${service('observed', observed!, 'accesscontrol', `  SET always_trusted = on
  SET observed.accesscontrol.use_observed_ip = 1
  ACCESS POLICY deny
  ACCESS ALLOW ip 10.1.2.3
`)}`;
}

const rigs = new Map<ProxyKind, Promise<MultiRig>>();
const rigFor = (kind: ProxyKind): Promise<MultiRig> => {
  let rig = rigs.get(kind);
  if (!rig) rigs.set(kind, (rig = startMultiRig(kind, 3, (ports, [backend]) => conf(ports, backend!), [{ name: 'b1' }], { perl5lib: NETMASK_LIB })));
  return rig;
};

async function ask(kind: ProxyKind, service: number, request: string, from = LOOPBACK): Promise<string[]> {
  const rig = await rigFor(kind);
  const backend = rig.backends[0]!;
  const before = backend.proxied().length;
  const method = request.slice(0, request.indexOf(' '));
  const { outcome, closedAfter } = await exchange(rig.ports[service]!, request, { method, localAddress: from, timeoutMs: 3000 });
  const forwarded = backend.proxied().length - before;
  return [...comparableAnswer(outcome, closedAfter), `backend got ${forwarded}`];
}

const GET11 = (host = 'x.test', path = '/p?q=1'): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
const GET10 = 'GET /p HTTP/1.0\r\n\r\n';

/** [what it pins, service index, request, source address, the status Perlbal answers]. */
const CASES: Array<[string, number, string, string, 200 | 301 | 403]> = [
  ['netmask /30 allows 127.0.0.1', 0, GET11(), '127.0.0.1', 200],
  ['netmask /30 allows 127.0.0.2', 0, GET11(), '127.0.0.2', 200],
  ['the first matching rule decides: deny ip 127.0.0.3 before the /30 that allows it', 0, GET11(), '127.0.0.3', 403],
  ['allow ip 127.0.0.5', 0, GET11(), '127.0.0.5', 200],
  ['no rule matches 127.0.0.7: policy deny, 403 kept alive', 0, GET11(), '127.0.0.7', 403],
  ['queue_low lets 127.0.0.9 through', 0, GET11(), '127.0.0.9', 200],
  ['a dotted-mask netmask allows 127.0.0.20', 0, GET11(), '127.0.0.20', 200],
  ['outside every netmask (127.0.0.40): denied', 0, GET11(), '127.0.0.40', 403],
  ['a denied HTTP/1.0 client gets the 403 and a close', 0, GET10, '127.0.0.7', 403],
  ['a denied HEAD gets the 403 head without a body', 0, 'HEAD / HTTP/1.1\r\nHost: x\r\n\r\n', '127.0.0.7', 403],
  ['a denied Connection: close request is closed', 0, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', '127.0.0.7', 403],
  ['REDIRECT HOST: 301 to http://<to><path>, query kept', 1, GET11('old.com'), '127.0.0.1', 301],
  ['redirect hosts match without case and without the port', 1, GET11('OLD.com:8080', '/a/b'), '127.0.0.1', 301],
  ['*.wild.com covers a deeper subdomain', 1, GET11('a.b.wild.com', '/'), '127.0.0.1', 301],
  ['*.wild.com covers the bare domain', 1, GET11('wild.com', '/x'), '127.0.0.1', 301],
  ['an absolute-form target redirects on its host and path', 1, 'GET http://old.com/abs?z HTTP/1.1\r\nHost: other\r\n\r\n', '127.0.0.1', 301],
  ['a HEAD redirect', 1, 'HEAD /h HTTP/1.1\r\nHost: old.com\r\n\r\n', '127.0.0.1', 301],
  ['an HTTP/1.0 redirect closes', 1, 'GET /old HTTP/1.0\r\nHost: old.com\r\n\r\n', '127.0.0.1', 301],
  ['no redirect for the host: the next plugin (AccessControl, policy deny) answers 403', 1, GET11('other.com'), '127.0.0.1', 403],
  ['no Host: no redirect, 403', 1, GET10, '127.0.0.1', 403],
  ['use_observed_ip: a trusted proxy\'s first XFF entry is matched (allowed)', 2, 'GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.1.2.3, 127.0.0.1\r\n\r\n', '127.0.0.1', 200],
  ['use_observed_ip: another XFF address is denied', 2, 'GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n', '127.0.0.1', 403],
  ['use_observed_ip without XFF falls back to the peer address (denied)', 2, GET11(), '127.0.0.1', 403],
];

describe('AccessControl and Redirect match Perlbal 1.80', () => {
  afterAll(async () => {
    const all = await Promise.allSettled(rigs.values());
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
  });

  // Perlbal's answers are the expectation: one test per case runs both and compares.
  const run = HAVE_PERLBAL && HAVE_NETMASK ? testFor('tsbal') : test.skip;
  for (const [name, service, request, from, status] of CASES) {
    run(name, async () => {
      const [perlbal, tsbal] = await Promise.all(KINDS.map((k) => ask(k, service, request, from)));
      expect(perlbal![0]).toStartWith(`${status} `);
      expect(tsbal).toEqual(perlbal!);
    });
  }

  run('two denied requests on one kept-alive connection: two 403s, still open, nothing reaches the backend', async () => {
    const answers = await Promise.all(
      KINDS.map(async (kind) => {
        const rig = await rigFor(kind);
        const backend = rig.backends[0]!;
        const before = backend.proxied().length;
        const conn = await connectRaw(rig.ports[0]!, LOOPBACK, '127.0.0.7');
        try {
          const out: string[] = [];
          for (let i = 0; i < 2; i++) {
            conn.send(GET11());
            const outcome = await conn.read({ timeoutMs: 3000 });
            out.push(...comparableAnswer(outcome, false));
          }
          out.push(conn.isClosed() ? 'closed' : 'open', `backend got ${backend.proxied().length - before}`);
          return out;
        } finally {
          conn.close();
        }
      }),
    );
    expect(answers[1]).toEqual(answers[0]!);
    expect(answers[0]!.filter((l) => l.startsWith('403'))).toHaveLength(2);
  });

  run('documented difference: a denied request with a body gets its 403 and a close (Perlbal keeps the connection)', async () => {
    const post = 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello';
    const [perlbal, tsbal] = await Promise.all(KINDS.map((k) => ask(k, 0, post, '127.0.0.7')));
    expect(perlbal).toContain('(kept open)');
    expect(tsbal).toEqual(perlbal!.map((l) => (l === '(kept open)' ? '(closed)' : l)).filter((l) => !l.startsWith('Keep-Alive')).map((l) => (l === 'Connection: keep-alive' ? 'Connection: close' : l)));
  });
});
