// Throttle, differentially: one perlbal.conf through real Perlbal 1.80 and `tsbal run`, each client sequence from its
// own source address, statuses and how long each answer took (at once, or held ~initial_delay) compared.
// (whitelist_file / blacklist_file need Net::CIDR::Lite, which Debian's Perlbal lacks: test/proxy/throttle.test.ts.)
import { afterAll, describe, expect, test } from 'bun:test';
import { LOOPBACK } from '../harness/ports.ts';
import { connectRaw } from '../harness/rawclient.ts';
import { defaultReply } from '../harness/rawbackend.ts';
import { KINDS, type MultiRig, type ProxyKind, startMultiRig, testFor } from './diffkit.ts';

const HAVE_PERLBAL = await Bun.file('/usr/share/perl5/Perlbal.pm').exists();

const conf = ([port]: number[], backend: number): string => `LOAD Throttle
CREATE POOL p
  POOL p ADD ${LOOPBACK}:${backend}
CREATE SERVICE t
  SET listen = ${LOOPBACK}:${port}
  SET role = reverse_proxy
  SET pool = p
  SET persist_client = on
  SET plugins = throttle
  SET initial_delay = 1
  SET throttle_threshold_seconds = 30
  SET max_concurrent = 2
  SET log_events = none
ENABLE t
`;

const rigs = new Map<ProxyKind, Promise<MultiRig>>();
const rigFor = (kind: ProxyKind): Promise<MultiRig> => {
  let rig = rigs.get(kind);
  if (!rig) {
    const reply = (req: Parameters<typeof defaultReply>[1], name: string) => (req.target === '/hang' ? ({ hang: true } as const) : defaultReply(name, req));
    rigs.set(kind, (rig = startMultiRig(kind, 1, (ports, [backend]) => conf(ports, backend!), [{ name: 'b1', reply }])));
  }
  return rig;
};

/** One request on its own connection from `from`: `<status> <at once|held>` (held: 0.8 s or more). */
async function timed(kind: ProxyKind, from: string, path: string): Promise<string> {
  const rig = await rigFor(kind);
  const conn = await connectRaw(rig.ports[0]!, LOOPBACK, from);
  try {
    const start = performance.now();
    conn.send(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const outcome = await conn.read({ timeoutMs: 4000 });
    const ms = performance.now() - start;
    const status = outcome.kind === 'response' ? outcome.response.head.startLine.split(' ')[1] : outcome.kind;
    return `${status} ${ms >= 800 ? 'held' : 'at once'}`;
  } finally {
    conn.close();
  }
}

describe('Throttle matches Perlbal 1.80', () => {
  afterAll(async () => {
    const all = await Promise.allSettled(rigs.values());
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
  });

  const run = HAVE_PERLBAL ? testFor('tsbal') : test.skip;

  run('an unseen client goes at once; back within the threshold it is held initial_delay; after the hold its entry has expired (it lives as long as the delay), so the next goes at once', async () => {
    const seq = async (kind: ProxyKind, from: string) => [await timed(kind, from, '/a'), await timed(kind, from, '/b'), await timed(kind, from, '/c')];
    const [perlbal, tsbal] = await Promise.all([seq('perlbal', '127.0.0.31'), seq('tsbal', '127.0.0.32')]);
    expect(perlbal).toEqual(['200 at once', '200 held', '200 at once']);
    expect(tsbal).toEqual(perlbal!);
  }, 20_000);

  run('a third request in progress from one address (max_concurrent 2) is refused 403 Forbidden at once', async () => {
    const answers = await Promise.all(
      KINDS.map(async (kind, i) => {
        const rig = await rigFor(kind);
        const from = `127.0.0.${41 + i}`;
        // Two requests the backend never answers stay in progress.
        const held = await Promise.all([0, 1].map(() => connectRaw(rig.ports[0]!, LOOPBACK, from)));
        try {
          for (const h of held) {
            h.send('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
            await Bun.sleep(100);
          }
          const conn = await connectRaw(rig.ports[0]!, LOOPBACK, from);
          try {
            conn.send('GET /third HTTP/1.1\r\nHost: x\r\n\r\n');
            const outcome = await conn.read({ timeoutMs: 3000 });
            if (outcome.kind !== 'response') return [outcome.kind];
            return [outcome.response.head.startLine.replace(/^HTTP\/1\.[01] /, ''), outcome.response.body.toString('latin1')];
          } finally {
            conn.close();
          }
        } finally {
          for (const h of held) h.close();
        }
      }),
    );
    expect(answers[0]![0]).toStartWith('403');
    expect(answers[0]![1]).toBe('<h1>403 - Forbidden</h1>\nForbidden.\n');
    expect(answers[1]![1]).toBe(answers[0]![1]);
  }, 20_000);
});
