// The management console differentially against Perlbal 1.80: the same config, the same two requests through the
// proxy, then the same console session on both; the transcripts must be equal byte for byte after normalising only
// what must differ (ports chosen at run time, epoch times and uptimes, the figures of `proc` and `fd`, and the hash
// order of `nodes` and `queues` lines).
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { LOOPBACK } from '../harness/ports.ts';
import { exchange } from '../harness/rawclient.ts';
import { rawRequest } from './helpers.ts';
import { KINDS, type MultiRig, type ProxyKind, startMultiRig, testFor } from './diffkit.ts';

const HAVE_PERLBAL = existsSync('/usr/share/perl5/Perlbal.pm');

function conf([listen, mgmt]: number[], [b1, b2]: number[]): string {
  return `LOAD AccessControl
CREATE POOL backends
  POOL backends ADD ${LOOPBACK}:${b1}
CREATE POOL spare
  POOL spare ADD ${LOOPBACK}:${b2}
CREATE SERVICE balancer
  SET role = reverse_proxy
  SET listen = ${LOOPBACK}:${listen}
  SET pool = backends
  SET persist_backend = on
ENABLE balancer
CREATE SERVICE idle
  SET role = reverse_proxy
  SET pool = spare
  SET plugins = AccessControl
CREATE SERVICE mgmt
  SET role = management
  SET listen = ${LOOPBACK}:${mgmt}
ENABLE mgmt
`;
}

const rigs = new Map<ProxyKind, Promise<MultiRig>>();
const rigFor = (kind: ProxyKind): Promise<MultiRig> => {
  let rig = rigs.get(kind);
  if (!rig) {
    rig = startMultiRig(kind, 2, conf, [{ name: 'b1' }, { name: 'b2' }]).then(async (r) => {
      // Two requests on one kept-alive backend connection, each on its own client connection.
      for (let i = 0; i < 2; i++) await exchange(r.ports[0]!, `GET /${i} HTTP/1.0\r\n\r\n`, { method: 'GET', timeoutMs: 3000 });
      return r;
    });
    rigs.set(kind, rig);
  }
  return rig;
};

/** Run-time ports → fixed five-character names (both runs use five-digit ports, so column widths stay true). */
function normalise(rig: MultiRig, text: string): string {
  const names: Array<[number, string]> = [
    [rig.ports[0]!, 'LSTEN'],
    [rig.ports[1]!, 'MGMT_'],
    [rig.backends[0]!.port, 'BACK1'],
    [rig.backends[1]!.port, 'BACK2'],
  ];
  let out = text;
  for (const [port, name] of names) out = out.replaceAll(`:${port}`, `:${name.slice(0, String(port).length)}`);
  return out
    .replace(/^(starttime|uptime) \d+/gm, '$1 N')
    .replace(/^(\S+ last\w+) \d+/gm, '$1 N')
    .replace(/^(time|pid): \d+/gm, '$1: N')
    .replace(/^(max|cur) \d+/gm, '$1 N')
    .replace(/^(utime|stime|reqs): [\d.e-]+ \(\+[\d.e-]+\)/gm, '$1: N (+N)');
}

async function session(kind: ProxyKind, lines: readonly string[]): Promise<string> {
  const rig = await rigFor(kind);
  const r = await rawRequest(rig.ports[1]!, [...lines, 'quit'].map((l) => `${l}\r\n`).join(''), { timeoutMs: 3000 });
  if (!r.closed) throw new Error(`${kind}: the console did not close after quit; got ${JSON.stringify(r.data)}`);
  return normalise(rig, r.data);
}

/** [what it pins, the lines sent, sort the output lines (Perlbal prints a hash)]. */
const CASES: Array<[string, string[], boolean]> = [
  ['show service lists services by name with listen address or not_listening', ['show service'], false],
  ['show service <name> for a reverse_proxy (node use counts), an idle one, and the management service', ['show service balancer', 'show service idle', 'show service mgmt'], false],
  ['show pool and show pool <name>', ['show pool', 'show pool backends', 'show pool spare'], false],
  ['nodes and node ip:port after two requests on one backend connection', ['nodes'], true],
  ['states', ['states', 'states balancer', 'states nosuch'], false],
  // Perlbal walks both its services and each service's queues in hash order.
  ['queues', ['queues'], true],
  ['uptime and version', ['uptime', 'version'], false],
  ['help lists the commands', ['help'], false],
  ['pending (none) and plugins', ['pending', 'plugins'], false],
  // Figures differ (CPU, descriptors, request count: Perlbal's stays 0); the layout must not.
  ['proc and fd', ['proc', 'fd'], false],
  [
    'error texts',
    ['frobnicate', 'show', 'show service nosuch', 'show pool nosuch', 'backends now', 'disable mgmt', 'enable balancer', 'set balancer bogus = 1',
      'set nosuch.x = 1', 'use nosuch', 'enable nosuch', 'pool spare frob 127.0.0.1', 'pool nosuch add 127.0.0.1', 'verbose maybe', 'nodes 1.2'],
    false,
  ],
  // Run by the config executor on the console, as in a file. Left out: the documented stricter checks (docs/compat.md:
  // max_backend_uses must be an integer, sizes also take `g`).
  [
    'config command errors',
    ['create service balancer', 'create pool backends', 'create service bad-name', 'create frob x', 'use nosuch', 'header nosuch insert x: y',
      'header balancer insert X-A', 'header balancer frob x', 'set balancer.role = frob', 'set balancer.pool = nosuch', 'set backends.balance_method = rr',
      'set balancer.listen = nowhere', 'set balancer.persist_backend = maybe', 'set balancer.buffer_size = 1t',
      'set idle.dirindexing = on', 'enable', 'disable nosuch', 'vhost balancer z.com = balancer', 'default persist_client = on', 'server max_connections = x',
      'server crash_backtrace = 2', 'server aio_mode = frob', 'server pidfile = /nonexistent/x.pid', 'unload nosuch', 'reload vhosts'],
    false,
  ],
  ['SET with a bad boolean, VERBOSE off and on', ['set balancer persist_client = maybe', 'verbose off', 'set balancer persist_client = on', 'verbose on', 'set balancer persist_client = off'], false],
  [
    'POOL ADD and REMOVE in either order, port defaulting to 80, duplicates replaced',
    ['pool spare add 127.0.0.1:9', 'pool add spare 127.0.0.1', 'pool spare add 127.0.0.1:9', 'show pool spare', 'pool remove spare 127.0.0.1:9', 'pool spare remove 127.0.0.1:80', 'show pool spare', 'show pool'],
    false,
  ],
];

describe('management console matches Perlbal 1.80', () => {
  afterAll(async () => {
    const all = await Promise.allSettled(rigs.values());
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
  });

  const run = HAVE_PERLBAL ? testFor('tsbal') : test.skip;
  for (const [name, lines, sorted] of CASES) {
    run(name, async () => {
      // One after the other: a case may change what the next one sees, on both proxies alike.
      const perlbal = await session('perlbal', lines);
      const tsbal = await session('tsbal', lines);
      const shape = (t: string): string[] => (sorted ? t.split('\r\n').sort() : t.split('\r\n'));
      expect(shape(perlbal).length).toBeGreaterThan(1);
      expect(shape(tsbal)).toEqual(shape(perlbal));
    });
  }

  for (const path of ['/', '/service?balancer', '/service?nosuch', '/nosuch']) {
    run(`HTTP GET ${path} answers Perlbal's page`, async () => {
      const [perlbal, tsbal] = await Promise.all(
        KINDS.map(async (kind) => {
          const rig = await rigFor(kind);
          const r = await rawRequest(rig.ports[1]!, `GET ${path} HTTP/1.0\r\n\r\n`, { timeoutMs: 3000 });
          if (!r.closed) throw new Error(`${kind}: the connection stayed open after the page`);
          return normalise(rig, r.data);
        }),
      );
      expect(perlbal).toStartWith('HTTP/1.0 ');
      expect(tsbal).toBe(perlbal!);
    });
  }

  run('dumpconfig prints the same lines as Perlbal (in creation order, Perlbal: hash order), plus the lines a replay needs', async () => {
    const perlbal = (await session('perlbal', ['dumpconfig'])).split('\r\n');
    const tsbal = (await session('tsbal', ['dumpconfig'])).split('\r\n');
    // tsbal's additions (docs/compat.md): LOAD and SERVER lines first, then a blank line; SET plugins in the services.
    const extra = tsbal.filter((l) => /^(LOAD|SERVER) /.test(l) || /^  SET plugins = /.test(l));
    expect(extra).toEqual(['LOAD AccessControl', '  SET plugins = accesscontrol']);
    const rest = tsbal.filter((l) => !extra.includes(l)).slice(1);
    expect(rest.at(-2)).toBe('OK');
    expect([...rest].sort()).toEqual([...perlbal].sort());
  });

  run('DISABLE as Perlbal; documented difference: ENABLE after DISABLE listens again (Perlbal 1.80: Address already in use)', async () => {
    const lines = ['disable balancer', 'show service', 'disable balancer', 'enable balancer'];
    const perlbal = (await session('perlbal', lines)).split('\r\n');
    const tsbal = (await session('tsbal', lines)).split('\r\n');
    expect(tsbal.slice(0, 6)).toEqual(perlbal.slice(0, 6));
    expect(perlbal.slice(6)).toEqual([
      "ERROR: Can't start service 'balancer' on 127.0.0.1:LSTEN: Error creating listening socket: IO::Socket::INET: Address already in use",
      '',
    ]);
    expect(tsbal.slice(6)).toEqual(['OK', '']);
    const rig = await rigFor('tsbal');
    const { outcome } = await exchange(rig.ports[0]!, 'GET / HTTP/1.0\r\n\r\n', { method: 'GET', timeoutMs: 3000 });
    expect(outcome.kind).toBe('response');
  });
});

describe('SHUTDOWN matches Perlbal 1.80', () => {
  const run = HAVE_PERLBAL ? testFor('tsbal') : test.skip;
  for (const [line, answer] of [['shutdown graceful', 'OK\r\n'], ['shutdown', '']] as const) {
    run(`${line}: answers ${JSON.stringify(answer)}, closes the console, and the process exits 0`, async () => {
      const started = await Promise.all(KINDS.map((k) => startMultiRig(k, 2, conf, [{ name: 'b1' }, { name: 'b2' }])));
      try {
        for (const rig of started) {
          const r = await rawRequest(rig.ports[1]!, `${line}\r\n`, { timeoutMs: 3000 });
          expect({ kind: rig.kind, data: r.data, closed: r.closed }).toEqual({ kind: rig.kind, data: answer, closed: true });
          expect(await rig.proxy.waitGone(5000)).toBe(true);
          expect({ kind: rig.kind, exit: rig.proxy.exitStatus() }).toEqual({ kind: rig.kind, exit: { code: 0, signal: null } });
        }
      } finally {
        await Promise.all(started.map((r) => r.stop()));
      }
    });
  }
});
